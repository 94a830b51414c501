//! `floopy-upstream`: the gateway's HTTP client to its providers, in pure Rust.
//!
//! hyper 1 with hyper-util's keep-alive pool, HTTPS through rustls (`ring` provider, system
//! roots), HTTP/2 where the provider offers it; per-call connect, first-byte and total time
//! limits; whole answers or streamed bodies with bounded buffering; cancellation that closes
//! the connection. Calls run on one tokio thread per worker process ([`IoThread`]) and reach
//! the event loop through a completion queue and one wake-up byte ([`Bridge`]), so that
//! thread never needs Python's GIL. The PyO3 bindings (`rust/py/src/upstream.rs`) only turn
//! [`Event`]s into Python objects.
//!
//! It is a crate of its own, beside `floopy-core`, so that core (parsing, cache keys, SSE,
//! JSONL) stays free of tokio, hyper and rustls: those are large builds, and core's other
//! users (its benches, tools reading the JSONL spool) need none of them.

mod bridge;
mod client;
mod completions;
mod error;
mod io_thread;
mod tls;

pub use bridge::{Bridge, CallId, Event, Relay, Translate};
pub use client::{Client, Config, Head, Prepared, Response, Streaming, Timeouts};
pub use completions::Completions;
pub use error::{Error, Phase, Result};
pub use io_thread::IoThread;
