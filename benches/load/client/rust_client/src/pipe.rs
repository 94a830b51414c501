//! The pipe bridge: the tokio thread never takes the GIL.
//!
//! Python numbers each call and keeps its future; a finished call becomes an event in a
//! queue, and the first event after a drain writes one byte to a socket pair whose other end
//! the event loop watches (`loop.add_reader`). One wake-up then resolves every call that
//! finished meanwhile, so under load the cost of crossing threads is shared by many requests.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::{runtime, Upstream};

/// Event kinds, as the first element of the value of each drained `(id, kind, value)`.
pub const RESPONSE: u8 = 0; // value: (status, body)
pub const HEAD: u8 = 1; // value: status; a stream's chunks follow
pub const CHUNK: u8 = 2; // value: bytes
pub const END: u8 = 3; // value: None
pub const ERROR: u8 = 4; // value: message

enum Event {
    Response(u16, Bytes),
    Head(u16),
    Chunk(Bytes),
    End,
    Error(String),
}

struct Finished {
    events: Mutex<Vec<(u64, Event)>>,
    signalled: AtomicBool,
    wake: UnixStream,
    woken: UnixStream,
}

impl Finished {
    fn new() -> std::io::Result<Self> {
        let (wake, woken) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        woken.set_nonblocking(true)?;
        Ok(Self {
            events: Mutex::new(Vec::new()),
            signalled: AtomicBool::new(false),
            wake,
            woken,
        })
    }

    fn push(&self, id: u64, event: Event) {
        self.events.lock().unwrap().push((id, event));
        if !self.signalled.swap(true, Ordering::SeqCst) {
            // At most one byte is ever unread, so this cannot fill the buffer.
            let _ = (&self.wake).write(&[1]);
        }
    }

    /// Order matters: empty the socket, then clear the flag, then take the queue. An event
    /// pushed after the take either sees the flag clear and writes a fresh byte, or sees it
    /// set by a push that came after the clear, whose byte is still unread.
    fn take(&self) -> Vec<(u64, Event)> {
        let mut sink = [0u8; 64];
        loop {
            match (&self.woken).read(&mut sink) {
                Ok(n) if n == sink.len() => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        self.signalled.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

#[pyclass(frozen)]
pub struct PipeClient {
    upstream: Arc<Upstream>,
    finished: Arc<Finished>,
}

#[pymethods]
impl PipeClient {
    #[new]
    #[pyo3(signature = (base_url, pool_size = 64))]
    fn new(base_url: &str, pool_size: usize) -> PyResult<Self> {
        let finished = Finished::new().map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(Self {
            upstream: Arc::new(Upstream::new(base_url, pool_size)?),
            finished: Arc::new(finished),
        })
    }

    /// The descriptor that becomes readable when events are waiting.
    fn fileno(&self) -> i32 {
        self.finished.woken.as_raw_fd()
    }

    /// Starts a POST whose whole response arrives as one `RESPONSE` event for `id`.
    fn post(&self, id: u64, path: &str, body: &[u8]) -> PyResult<()> {
        let request = self.upstream.post(path, body)?;
        let (upstream, finished) = (Arc::clone(&self.upstream), Arc::clone(&self.finished));
        runtime().spawn(async move {
            let event = match fetch(&upstream, request).await {
                Ok((status, body)) => Event::Response(status, body),
                Err(message) => Event::Error(message),
            };
            finished.push(id, event);
        });
        Ok(())
    }

    /// Starts a POST relayed as `HEAD`, then one `CHUNK` per data frame, then `END`.
    fn stream(&self, id: u64, path: &str, body: &[u8]) -> PyResult<()> {
        let request = self.upstream.post(path, body)?;
        let (upstream, finished) = (Arc::clone(&self.upstream), Arc::clone(&self.finished));
        runtime().spawn(async move {
            if let Err(message) = relay(&upstream, request, id, &finished).await {
                finished.push(id, Event::Error(message));
            }
        });
        Ok(())
    }

    /// Every event finished since the last drain, as `(id, kind, value)` tuples.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut out = Vec::new();
        for (id, event) in self.finished.take() {
            let item = match event {
                Event::Response(status, body) => {
                    (id, RESPONSE, (status, PyBytes::new(py, &body))).into_pyobject(py)?
                }
                Event::Head(status) => {
                    (id, HEAD, status.into_pyobject(py)?.into_any()).into_pyobject(py)?
                }
                Event::Chunk(data) => (id, CHUNK, PyBytes::new(py, &data)).into_pyobject(py)?,
                Event::End => (id, END, py.None()).into_pyobject(py)?,
                Event::Error(message) => (id, ERROR, message).into_pyobject(py)?,
            };
            out.push(item);
        }
        PyList::new(py, out)
    }
}

async fn fetch(
    upstream: &Upstream,
    request: Request<http_body_util::Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    let response = upstream
        .http
        .request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

async fn relay(
    upstream: &Upstream,
    request: Request<http_body_util::Full<Bytes>>,
    id: u64,
    finished: &Finished,
) -> Result<(), String> {
    let response = upstream
        .http
        .request(request)
        .await
        .map_err(|e| e.to_string())?;
    finished.push(id, Event::Head(response.status().as_u16()));
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        // Unbounded: fine for a bench whose reader keeps up; a real relay needs backpressure.
        if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
            finished.push(id, Event::Chunk(data));
        }
    }
    finished.push(id, Event::End);
    Ok(())
}
