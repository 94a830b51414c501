//! Bindings of `floopy_upstream`: `NativeUpstream`, one worker's HTTP client to its providers.
//!
//! Each call returns its number at once; what happens to it comes back through `drain`, which
//! the event loop calls when `fileno()` turns readable (one wake-up byte per drain, written by
//! the tokio thread without ever taking the GIL). Python keeps the futures and streams by call
//! number (`python/floopy/upstream.py`). Calls take microseconds and keep the GIL; `close`
//! waits for the runtime thread and releases it.

use std::time::Duration;

use bytes::Bytes;
use floopy_upstream::{Bridge, Config, Event, Head, Prepared, Timeouts};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::args::size;
use crate::errors::{upstream_to_py, OrPy};

/// Kinds of drained events: `(call, kind, value)`.
const ANSWER: u8 = 0; // value: (status, headers, body): a fetch's whole answer
const HEAD: u8 = 1; // value: (status, headers): a stream opened; chunks follow
const CHUNK: u8 = 2; // value: bytes
const END: u8 = 3; // value: None: the stream's body ended
const ERROR: u8 = 4; // value: the exception the call failed with

#[pyclass(module = "floopy._native", name = "NativeUpstream", frozen)]
pub struct NativeUpstream(Bridge);

#[pymethods]
impl NativeUpstream {
    #[classattr]
    const ANSWER: u8 = ANSWER;
    #[classattr]
    const HEAD: u8 = HEAD;
    #[classattr]
    const CHUNK: u8 = CHUNK;
    #[classattr]
    const END: u8 = END;
    #[classattr]
    const ERROR: u8 = ERROR;

    #[new]
    #[pyo3(signature = (max_connections = 256, window_bytes = 262_144, idle_timeout = 30.0, extra_roots_pem = None, max_answer_bytes = None))]
    fn new(
        max_connections: i64,
        window_bytes: i64,
        idle_timeout: f64,
        extra_roots_pem: Option<&[u8]>,
        max_answer_bytes: Option<i64>,
    ) -> PyResult<Self> {
        let window_bytes = size("window_bytes", window_bytes)?;
        let config = Config {
            max_connections: size("max_connections", max_connections)?,
            idle_timeout: seconds("idle_timeout", idle_timeout)?,
            extra_roots_pem: extra_roots_pem.map(<[u8]>::to_vec),
            max_answer_bytes: max_answer_bytes
                .map(|limit| size("max_answer_bytes", limit))
                .transpose()?,
        };
        Bridge::start(config, window_bytes).or_py().map(Self)
    }

    fn fileno(&self) -> i32 {
        self.0.fileno()
    }

    /// Starts a POST. Its whole answer arrives as one ANSWER event or, with `stream`, is
    /// relayed as HEAD, CHUNK..., then END; ERROR ends the call at any point instead.
    #[pyo3(signature = (url, headers, body, connect_timeout, first_byte_timeout = None, total_timeout = None, *, stream = false))]
    #[allow(clippy::too_many_arguments)] // the Python signature's, keywords included
    fn post(
        &self,
        url: &str,
        headers: &Bound<'_, PyDict>,
        body: &[u8],
        connect_timeout: f64,
        first_byte_timeout: Option<f64>,
        total_timeout: Option<f64>,
        stream: bool,
    ) -> PyResult<u64> {
        let timeouts = timeouts(connect_timeout, first_byte_timeout, total_timeout)?;
        let prepared = self.prepare(url, headers, body, timeouts)?;
        Ok(if stream {
            self.0.stream(prepared)
        } else {
            self.0.fetch(prepared)
        })
    }

    /// The caller is done with `size` bytes of the stream's chunks: the stream may read on.
    fn consumed(&self, call: u64, size: usize) {
        self.0.consumed(call, size);
    }

    /// Aborts the call and closes its connection; False if it was already over.
    fn cancel(&self, call: u64) -> bool {
        self.0.cancel(call)
    }

    /// Every event since the last drain, in order, as `(call, kind, value)` tuples.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let drained = PyList::empty(py);
        for (call, event) in self.0.take() {
            drained.append(event_tuple(py, call, event)?)?;
        }
        Ok(drained)
    }

    /// Calls started and not yet over.
    #[getter]
    fn in_flight(&self) -> usize {
        self.0.in_flight()
    }

    /// Stops the runtime thread; calls in flight are dropped with their connections and
    /// later calls fail at once.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.0.close());
    }
}

impl NativeUpstream {
    fn prepare(
        &self,
        url: &str,
        headers: &Bound<'_, PyDict>,
        body: &[u8],
        timeouts: Timeouts,
    ) -> PyResult<Prepared> {
        let mut pairs = Vec::with_capacity(headers.len());
        for (name, value) in headers.iter() {
            pairs.push((
                name.extract::<PyBackedStr>()?,
                value.extract::<PyBackedStr>()?,
            ));
        }
        let borrowed = pairs.iter().map(|(name, value)| (&**name, &**value));
        self.0
            .client()
            .prepare(url, borrowed, Bytes::copy_from_slice(body), timeouts)
            .or_py()
    }
}

fn event_tuple<'py>(py: Python<'py>, call: u64, event: Event) -> PyResult<Bound<'py, PyAny>> {
    let tuple = match event {
        Event::Answered(response) => {
            let (status, headers) = head_parts(response.head);
            let body = PyBytes::new(py, &response.body);
            (call, ANSWER, (status, headers, body)).into_pyobject(py)?
        }
        Event::Opened(head) => (call, HEAD, head_parts(head)).into_pyobject(py)?,
        Event::Chunk(data) => (call, CHUNK, PyBytes::new(py, &data)).into_pyobject(py)?,
        Event::Ended => (call, END, py.None()).into_pyobject(py)?,
        Event::Failed(err) => {
            (call, ERROR, upstream_to_py(err).into_value(py)).into_pyobject(py)?
        }
    };
    Ok(tuple.into_any())
}

fn head_parts(head: Head) -> (u16, Vec<(String, String)>) {
    (head.status, head.headers)
}

fn timeouts(connect: f64, first_byte: Option<f64>, total: Option<f64>) -> PyResult<Timeouts> {
    Ok(Timeouts {
        connect: seconds("connect_timeout", connect)?,
        first_byte: first_byte
            .map(|s| seconds("first_byte_timeout", s))
            .transpose()?,
        total: total.map(|s| seconds("total_timeout", s)).transpose()?,
    })
}

/// Seconds from Python as a Duration; negative, NaN or endless values are refused rather
/// than allowed to panic.
fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a finite number of seconds >= 0, not {value}"
        ))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeUpstream>()
}
