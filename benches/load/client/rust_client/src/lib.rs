//! A Rust upstream client for the load bench: hyper's pooled HTTP/1.1 client on a tokio
//! runtime with one worker thread, reachable from asyncio through two bridges.
//!
//! * [`awaitable::Client`] hands each request to `pyo3-async-runtimes`, which resolves an
//!   asyncio future with `loop.call_soon_threadsafe` (the tokio thread takes the GIL for it).
//! * [`pipe::PipeClient`] never takes the GIL on the tokio thread: finished requests wait in a
//!   queue and one byte on a socket pair wakes the event loop, which drains them all at once.
//!
//! Both exist because the bridge, not hyper, is what decides the cost of one call.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pyo3::exceptions::{PyConnectionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

mod awaitable;
mod pipe;

type Http = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// Built on first use, inside the granian worker: a runtime must not cross a fork.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // One worker: the machine has two cores and the event loop needs one of them.
            .worker_threads(1)
            .thread_name("floopy-bench-tokio")
            .enable_all()
            .build()
            .expect("cannot build the tokio runtime")
    })
}

/// The shared part of both clients: the pool and the upstream origin.
struct Upstream {
    http: Http,
    origin: String,
}

impl Upstream {
    fn new(base_url: &str, pool_size: usize) -> PyResult<Self> {
        let origin = base_url.trim_end_matches('/').to_owned();
        origin
            .parse::<Uri>()
            .map_err(|e| PyValueError::new_err(format!("bad upstream url {base_url:?}: {e}")))?;
        let mut connector = HttpConnector::new();
        // Small request bodies: Nagle would hold them back waiting for an ACK.
        connector.set_nodelay(true);
        // The pool spawns its connection tasks, so the runtime must exist before this.
        let _guard = runtime().enter();
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool_size)
            .build(connector);
        Ok(Self { http, origin })
    }

    fn post(&self, path: &str, body: &[u8]) -> PyResult<Request<Full<Bytes>>> {
        let uri: Uri = format!("{}{}", self.origin, path)
            .parse()
            .map_err(|e| PyValueError::new_err(format!("bad path {path:?}: {e}")))?;
        Request::post(uri)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

fn unreachable_error(err: impl std::fmt::Display) -> PyErr {
    PyConnectionError::new_err(format!("upstream failed: {err}"))
}

/// Response bytes that become a Python `bytes` only when they reach Python.
struct Body(Bytes);

impl<'py> IntoPyObject<'py> for Body {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

#[pymodule]
fn floopy_bench_client(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<awaitable::Client>()?;
    m.add_class::<awaitable::Stream>()?;
    m.add_class::<pipe::PipeClient>()?;
    m.add("RESPONSE", pipe::RESPONSE)?;
    m.add("HEAD", pipe::HEAD)?;
    m.add("CHUNK", pipe::CHUNK)?;
    m.add("END", pipe::END)?;
    m.add("ERROR", pipe::ERROR)?;
    Ok(())
}
