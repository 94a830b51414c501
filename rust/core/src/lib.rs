//! Floopy's native hot path. Pure Rust, no Python: the `floopy-py` crate wraps it.
//!
//! One module per concern, each usable alone:
//! - [`parse`]: a chat-completions body into the few facts the pipeline needs.
//! - [`headers`]: `floopy-*` request headers into one typed value.
//! - [`cache_key`]: the exact-cache key, xxh3-128 over a canonical form of the request.
//! - [`sse`]: an incremental server-sent-events parser and the OpenAI stream relay.
//! - [`jsonl`]: an appending JSONL writer with size-capped rotation, and its reader.
//! - [`otlp`]: request rows to an OpenTelemetry (OTLP) trace export request, protobuf.
//! - [`scan`]: whether a text needs scrubbing at all, in one multi-pattern pass.
//! - [`trace`]: span ids of a request's trace.

pub mod cache_key;
pub mod error;
pub mod headers;
pub mod jsonl;
pub mod otlp;
pub mod parse;
pub mod scan;
pub mod sse;
pub mod trace;

pub use error::{Error, Result};
