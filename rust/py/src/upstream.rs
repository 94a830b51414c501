//! Bindings of `floopy_upstream`: `NativeUpstream`, one worker's HTTP client to its providers.
//!
//! Each call returns its number at once; what happens to it comes back through `drain`, which
//! the event loop calls when `fileno()` turns readable (one wake-up byte per drain, written by
//! the tokio thread without ever taking the GIL). Python keeps the futures and streams by call
//! number (`python/floopy/upstream.py`). Calls take microseconds and keep the GIL; `close`
//! waits for the runtime thread and releases it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use floopy_upstream::{Bridge, Config, Event, Head, Prepared, Relay, Timeouts};
use pyo3::exceptions::{PyStopIteration, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyType};

use crate::args::size;
use crate::errors::{upstream_to_py, OrPy};
use crate::sse::{shared_relay, RelayCapture, Translation};

/// Kinds of drained events: `(call, kind, value)`.
const ANSWER: u8 = 0; // value: (status, headers, body): a fetch's whole answer
const HEAD: u8 = 1; // value: (status, headers): a stream opened; chunks follow
const CHUNK: u8 = 2; // value: bytes
const END: u8 = 3; // value: None: the stream's body ended
const ERROR: u8 = 4; // value: the exception the call failed with
const READY: u8 = 5; // value: None: a relayed stream's outbox holds bytes (`take`)
const GONE: u8 = 6; // value: None: the attached transport refused bytes (its client left)

#[pyclass(module = "floopy._native", name = "NativeUpstream", frozen)]
pub struct NativeUpstream {
    bridge: Bridge,
    /// Relayed streams whose bytes `drain` writes to their client itself.
    attached: Mutex<HashMap<u64, Attached>>,
}

/// A relayed stream's client: the server's transport, and how many more bytes `drain` may
/// send it before the caller takes the stream back (to pace it against its client).
struct Attached {
    transport: Py<PyAny>,
    budget: usize,
    sent: usize,
}

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
    #[classattr]
    const READY: u8 = READY;
    #[classattr]
    const GONE: u8 = GONE;

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
        let bridge = Bridge::start(config, window_bytes).or_py()?;
        Ok(Self {
            bridge,
            attached: Mutex::new(HashMap::new()),
        })
    }

    fn fileno(&self) -> i32 {
        self.bridge.fileno()
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
            self.bridge.stream(prepared)
        } else {
            self.bridge.fetch(prepared)
        })
    }

    /// Starts a chat stream relayed on the runtime thread: HEAD (or ANSWER, for a status
    /// other than 200), READY whenever its outbox fills, then END or ERROR. `source` says
    /// what the provider speaks ("openai", relayed as it is; "anthropic" and "gemini",
    /// translated into OpenAI chunks); with `messages_model` the chunks are written on as
    /// Anthropic Messages events. The capture tells what the stream said; `take` gives its
    /// bytes.
    #[pyo3(signature = (url, headers, body, connect_timeout, first_byte_timeout, total_timeout, *, first_event_timeout, idle_timeout, strip_usage = false, max_event_bytes = floopy_core::sse::DEFAULT_MAX_EVENT_BYTES as i64, max_capture_bytes = floopy_core::sse::DEFAULT_MAX_CAPTURE_BYTES as i64, source = "openai", model = "", include_usage = false, json_tool = None, fallback_id = "", messages_model = None))]
    #[allow(clippy::too_many_arguments)] // the Python signature's, keywords included
    fn relay(
        &self,
        url: &str,
        headers: &Bound<'_, PyDict>,
        body: &[u8],
        connect_timeout: f64,
        first_byte_timeout: Option<f64>,
        total_timeout: Option<f64>,
        first_event_timeout: Option<f64>,
        idle_timeout: Option<f64>,
        strip_usage: bool,
        max_event_bytes: i64,
        max_capture_bytes: i64,
        source: &str,
        model: &str,
        include_usage: bool,
        json_tool: Option<&str>,
        fallback_id: &str,
        messages_model: Option<&str>,
    ) -> PyResult<(u64, RelayCapture)> {
        let timeouts = timeouts(connect_timeout, first_byte_timeout, total_timeout)?;
        let first_event = first_event_timeout
            .map(|s| seconds("first_event_timeout", s))
            .transpose()?;
        let idle = idle_timeout
            .map(|s| seconds("idle_timeout", s))
            .transpose()?;
        let how = Translation {
            source,
            strip_usage,
            model,
            include_usage,
            json_tool,
            fallback_id,
            messages_model,
            max_event_bytes,
            max_capture_bytes,
        };
        let (translate, capture) = shared_relay(&how)?;
        let prepared = self.prepare(url, headers, body, timeouts)?;
        let relay = Relay {
            translate,
            first_event,
            idle,
        };
        Ok((self.bridge.relay(prepared, relay), capture))
    }

    /// The bytes waiting in a relayed stream's outbox, taken off it.
    fn take<'py>(&self, py: Python<'py>, call: u64) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bridge.take_out(call))
    }

    /// From now on `drain` sends a relayed stream's bytes to `transport` itself (its
    /// ``send_bytes``), until `budget` bytes went; then it hands the stream back with a
    /// READY whose value is the bytes it sent. What waits already is sent at once. Returns
    /// `(0, 0)` when attached, `(READY, sent)` when the budget is spent at once, `(GONE, 0)`
    /// when the transport refused the bytes.
    fn attach(
        &self,
        py: Python<'_>,
        call: u64,
        transport: Py<PyAny>,
        budget: usize,
    ) -> (u8, usize) {
        let entry = Attached {
            transport,
            budget,
            sent: 0,
        };
        self.attached().insert(call, entry);
        match self.send_attached(py, call) {
            Sent::Nothing | Sent::NotAttached => (0, 0),
            Sent::Spent(sent) => (READY, sent),
            Sent::Refused => (GONE, 0),
        }
    }

    /// Takes a relayed stream back from `drain`; False if it was not attached any more.
    fn detach(&self, call: u64) -> bool {
        self.attached().remove(&call).is_some()
    }

    /// Forgets a relayed stream: its outbox, and its transport if attached.
    fn release(&self, call: u64) {
        self.attached().remove(&call);
        self.bridge.release(call);
    }

    /// The caller is done with `size` bytes of the stream's chunks: the stream may read on.
    fn consumed(&self, call: u64, size: usize) {
        self.bridge.consumed(call, size);
    }

    /// Aborts the call and closes its connection; False if it was already over.
    fn cancel(&self, call: u64) -> bool {
        self.attached().remove(&call);
        self.bridge.cancel(call)
    }

    /// Every event since the last drain, in order, as `(call, kind, value)` tuples. The
    /// bytes of attached streams go to their transports here and are not listed.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let drained = PyList::empty(py);
        for (call, event) in self.bridge.take() {
            if matches!(event, Event::Ready) {
                match self.send_attached(py, call) {
                    Sent::Nothing => {}
                    Sent::NotAttached => drained.append((call, READY, py.None()))?,
                    Sent::Spent(sent) => drained.append((call, READY, sent))?,
                    Sent::Refused => drained.append((call, GONE, py.None()))?,
                }
                continue;
            }
            drained.append(event_tuple(py, call, event)?)?;
        }
        Ok(drained)
    }

    /// Calls started and not yet over.
    #[getter]
    fn in_flight(&self) -> usize {
        self.bridge.in_flight()
    }

    /// Stops the runtime thread; calls in flight are dropped with their connections and
    /// later calls fail at once.
    fn close(&self, py: Python<'_>) {
        self.attached().clear();
        py.detach(|| self.bridge.close());
    }
}

/// What `drain` did with an attached stream's READY.
enum Sent {
    /// Sent (or nothing was waiting); the stream stays attached.
    Nothing,
    /// Not attached: the caller takes the bytes.
    NotAttached,
    /// Sent, and the budget is spent: the stream is the caller's again. The bytes sent
    /// while attached.
    Spent(usize),
    /// The transport refused the bytes: the stream is detached.
    Refused,
}

impl NativeUpstream {
    fn attached(&self) -> MutexGuard<'_, HashMap<u64, Attached>> {
        self.attached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what waits in an attached stream's outbox to its transport. The entry is out
    /// of the map while Python runs (`send_bytes`), so no lock is held across that call.
    fn send_attached(&self, py: Python<'_>, call: u64) -> Sent {
        let Some(mut entry) = self.attached().remove(&call) else {
            return Sent::NotAttached;
        };
        let bytes = self.bridge.take_out(call);
        if !bytes.is_empty() {
            let sent = entry
                .transport
                .bind(py)
                .call_method1(intern!(py, "send_bytes"), (PyBytes::new(py, &bytes),));
            if !sent.is_ok_and(|awaitable| accepted(&awaitable)) {
                return Sent::Refused;
            }
            entry.budget = entry.budget.saturating_sub(bytes.len());
            entry.sent += bytes.len();
            if entry.budget == 0 {
                return Sent::Spent(entry.sent);
            }
        }
        self.attached().insert(call, entry);
        Sent::Nothing
    }

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
        self.bridge
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
        Event::Ready => (call, READY, py.None()).into_pyobject(py)?,
        Event::Failed(err) => {
            (call, ERROR, upstream_to_py(err).into_value(py)).into_pyobject(py)?
        }
    };
    Ok(tuple.into_any())
}

/// The type of the awaitable a server's `send_bytes` gave for bytes it accepted, once seen:
/// later answers of that type are taken as accepted without stepping them.
static ACCEPTED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Whether the awaitable a server's `send_bytes` returned says the bytes were accepted.
/// granian's is already done: stepping it once raises StopIteration, or its error (a
/// refusal comes as an awaitable of another type).
fn accepted(awaitable: &Bound<'_, PyAny>) -> bool {
    let py = awaitable.py();
    if ACCEPTED
        .get(py)
        .is_some_and(|kind| awaitable.get_type().is(kind.bind(py)))
    {
        return true;
    }
    let step = awaitable
        .call_method0(intern!(py, "__await__"))
        .and_then(|iterator| iterator.call_method0(intern!(py, "__next__")));
    match step {
        Ok(_) => true, // not done yet: the server took the bytes and finishes later
        Err(err) if err.is_instance_of::<PyStopIteration>(py) => {
            let _ = ACCEPTED.set(py, awaitable.get_type().unbind());
            true
        }
        Err(_) => false,
    }
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
