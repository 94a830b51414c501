//! The `pyo3-async-runtimes` bridge: every call returns an asyncio future.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use pyo3::prelude::*;
use tokio::sync::Mutex;

use crate::{runtime, unreachable_error, Body, Upstream};

#[pyclass(frozen)]
pub struct Client {
    upstream: Arc<Upstream>,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (base_url, pool_size = 64))]
    fn new(base_url: &str, pool_size: usize) -> PyResult<Self> {
        // Share our one-worker runtime instead of the crate's default (one thread per core).
        let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime());
        Ok(Self {
            upstream: Arc::new(Upstream::new(base_url, pool_size)?),
        })
    }

    /// POSTs `body` to `path` and resolves to `(status, body)` once the body is complete.
    fn post<'py>(&self, py: Python<'py>, path: &str, body: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let request = self.upstream.post(path, body)?;
        let upstream = Arc::clone(&self.upstream);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let response = upstream
                .http
                .request(request)
                .await
                .map_err(unreachable_error)?;
            let status = response.status().as_u16();
            let collected = response
                .into_body()
                .collect()
                .await
                .map_err(unreachable_error)?;
            Ok((status, Body(collected.to_bytes())))
        })
    }

    /// POSTs `body` to `path` and resolves to a [`Stream`] once the head has arrived.
    fn stream<'py>(&self, py: Python<'py>, path: &str, body: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let request = self.upstream.post(path, body)?;
        let upstream = Arc::clone(&self.upstream);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let response = upstream
                .http
                .request(request)
                .await
                .map_err(unreachable_error)?;
            Ok(Stream {
                status: response.status().as_u16(),
                body: Arc::new(Mutex::new(response.into_body())),
            })
        })
    }
}

/// An upstream body read frame by frame: one Python await per frame, as a relay would.
#[pyclass(frozen)]
pub struct Stream {
    #[pyo3(get)]
    status: u16,
    body: Arc<Mutex<Incoming>>,
}

#[pymethods]
impl Stream {
    /// Resolves to the next data frame, or `None` at the end of the body.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let body = Arc::clone(&self.body);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut body = body.lock().await;
            while let Some(frame) = body.frame().await {
                // Trailers carry no bytes for the client; skip them.
                if let Ok(data) = frame.map_err(unreachable_error)?.into_data() {
                    return Ok(Some(Body(data)));
                }
            }
            Ok(None)
        })
    }
}
