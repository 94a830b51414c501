//! Bindings of `floopy_core::trace`: a request's `Trace` and its `Span`s, the objects the
//! pipeline opens and ends around every stage and provider attempt (ten or so per request).
//! Made here, each span is one native call to open and one to end; the log and the
//! histograms read their fields as attributes. Times are `time.perf_counter()`'s, the
//! request's own clock (read here on Linux, where it is `CLOCK_MONOTONIC`), and the random
//! prefix comes from Python's `random` (reseeded in each forked worker).

use crate::otlp::ExportRow;
use floopy_core::otlp::{self, Tape};
use floopy_core::trace as core;
use pyo3::exceptions::{PyAttributeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PySlice, PyString};
use std::borrow::Cow;

#[cfg(not(target_os = "linux"))]
static PERF_COUNTER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static GETRANDBITS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static CANCELLED_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn imported<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    module: &str,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(module)?.getattr(name)?.unbind())
    })
    .map(|value| value.bind(py))
}

/// `time.perf_counter()`. On Linux read here: CPython reads `CLOCK_MONOTONIC` for it and
/// converts the nanoseconds the same way, without a call into Python twice per span.
#[cfg(target_os = "linux")]
fn perf_counter(_py: Python<'_>) -> PyResult<f64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; the clock exists on every Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    #[allow(clippy::unnecessary_cast)] // i64 already on 64-bit targets, not on 32-bit ones
    let nanoseconds = now.tv_sec as i64 * 1_000_000_000 + now.tv_nsec as i64;
    Ok(nanoseconds as f64 / 1e9)
}

#[cfg(not(target_os = "linux"))]
fn perf_counter(py: Python<'_>) -> PyResult<f64> {
    imported(py, &PERF_COUNTER, "time", "perf_counter")?
        .call0()?
        .extract()
}

/// A span's status, kept as a number: `STATUSES[code]` is its name.
const OK: u8 = 0;
const ERROR: u8 = 1;
const CANCELLED: u8 = 2;
const STATUSES: [&str; 3] = ["ok", "error", "cancelled"];

fn status_code(name: &str) -> PyResult<u8> {
    match STATUSES.iter().position(|known| *known == name) {
        Some(code) => Ok(code as u8),
        None => Err(PyValueError::new_err(format!(
            "a span's status is ok, error or cancelled, not {name:?}"
        ))),
    }
}

/// The duration of a span still open.
const OPEN: u64 = u64::MAX;

/// One span: a stage, a provider attempt or a cache tier. Frozen: what never changes is read
/// straight from the object (no getter call); what does, `duration_ms` (None while open) and
/// `status` ("ok", "error" or "cancelled"), is kept in atomics behind getters, set by the
/// trace natively (a Python attribute write per span cost more than the rest of its end).
#[pyclass(module = "floopy._native", name = "Span", frozen)]
pub struct Span {
    #[pyo3(get)]
    name: Py<PyString>,
    #[pyo3(get)]
    span_id: Py<PyString>,
    /// None: a child of the request's root span (a stage); else the parent's id.
    #[pyo3(get)]
    parent_id: Py<PyAny>,
    /// `time.perf_counter()` when it opened.
    #[pyo3(get)]
    start: Py<PyFloat>,
    #[pyo3(get)]
    attributes: Py<PyDict>,
    /// The duration in milliseconds as `f64` bits, `OPEN` while open.
    duration: AtomicU64,
    status: AtomicU8,
}

impl Span {
    fn duration(&self) -> Option<f64> {
        match self.duration.load(Ordering::Relaxed) {
            OPEN => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    fn status_name(&self) -> &'static str {
        STATUSES[usize::from(self.status.load(Ordering::Relaxed))]
    }
}

#[pymethods]
impl Span {
    #[new]
    #[pyo3(signature = (name, span_id, parent_id, start, duration_ms=None, status=None, attributes=None))]
    fn new(
        name: Bound<'_, PyString>,
        span_id: Py<PyString>,
        parent_id: Option<Py<PyString>>,
        start: f64,
        duration_ms: Option<f64>,
        status: Option<Py<PyString>>,
        attributes: Option<Py<PyDict>>,
    ) -> PyResult<Py<Self>> {
        let py = name.py();
        let status = match status {
            Some(status) => status_code(&status.bind(py).to_cow()?)?,
            None => OK,
        };
        Py::new(
            py,
            Span {
                name: name.unbind(),
                span_id,
                parent_id: parent_id.map_or_else(|| py.None(), |id| id.into_any()),
                start: PyFloat::new(py, start).unbind(),
                attributes: attributes.unwrap_or_else(|| PyDict::new(py).unbind()),
                duration: AtomicU64::new(duration_ms.map_or(OPEN, f64::to_bits)),
                status: AtomicU8::new(status),
            },
        )
    }

    /// Milliseconds from its start to its end; None while open.
    #[getter]
    fn duration_ms(&self) -> Option<f64> {
        self.duration()
    }

    /// "ok", "error" or "cancelled".
    #[getter]
    fn status(&self) -> &'static str {
        self.status_name()
    }

    /// Adds (or replaces) attributes.
    #[pyo3(signature = (**attributes))]
    fn set(&self, py: Python<'_>, attributes: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        if let Some(attributes) = attributes {
            self.attributes.bind(py).update(attributes.as_mapping())?;
        }
        Ok(())
    }

    /// Marks the span failed with the error's code (a FloopyError) or its class name, and
    /// its message's first 500 characters; an asyncio.CancelledError marks it cancelled.
    fn fail(slf: &Bound<'_, Self>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = exc.py();
        let span = slf.get();
        if exc.is_instance(imported(py, &CANCELLED_ERROR, "asyncio", "CancelledError")?)? {
            span.status.store(CANCELLED, Ordering::Relaxed);
            return Ok(());
        }
        span.status.store(ERROR, Ordering::Relaxed);
        let attributes = span.attributes.bind(py);
        let code = attribute_or_none(exc, intern!(py, "code"))?;
        match code {
            Some(code) if code.is_truthy()? => attributes.set_item("error", code)?,
            _ => attributes.set_item("error", exc.get_type().name()?)?,
        }
        if let Some(message) = attribute_or_none(exc, intern!(py, "message"))? {
            if message.is_instance_of::<PyString>() {
                let start = message.get_item(PySlice::new(py, 0, 500, 1))?;
                attributes.set_item("error.message", start)?;
            }
        }
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let span = slf.get();
        let duration = match span.duration() {
            Some(duration) => duration.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "Span(name={:?}, span_id={:?}, status={:?}, duration_ms={duration})",
            span.name.bind(py).to_string(),
            span.span_id.bind(py).to_string(),
            span.status_name(),
        ))
    }
}

/// `getattr(value, name, None)`: only an AttributeError means absent.
fn attribute_or_none<'py>(
    value: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match value.getattr(name) {
        Ok(found) if found.is_none() => Ok(None),
        Ok(found) => Ok(Some(found)),
        Err(err) if err.is_instance_of::<PyAttributeError>(value.py()) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The spans of one request, in the order they opened. The request itself is the root:
/// spans opened while no other is open are its children (the stages), spans opened inside
/// another become that one's children unless a parent is named.
#[pyclass(module = "floopy._native", name = "Trace")]
pub struct Trace {
    prefix: String,
    count: u32,
    #[pyo3(get)]
    root_id: Py<PyString>,
    #[pyo3(get)]
    spans: Py<PyList>,
    open: Vec<Py<Span>>,
    /// The spans written for the export by `span_rows(..., export=True)`, until
    /// `export_row` takes them.
    export: Option<Tape>,
}

#[pymethods]
impl Trace {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let random: u64 = imported(py, &GETRANDBITS, "random", "getrandbits")?
            .call1((48,))?
            .extract()?;
        let prefix = core::prefix(random);
        let root_id = PyString::new(py, &core::span_id(&prefix, 1)).unbind();
        Ok(Trace {
            prefix,
            count: 1,
            root_id,
            spans: PyList::empty(py).unbind(),
            open: Vec::new(),
            export: None,
        })
    }

    /// Opens a span: a child of ``parent``, else of the innermost open span, else of the
    /// root.
    fn start<'py>(
        &mut self,
        name: Bound<'py, PyString>,
        parent: Option<Bound<'py, Span>>,
        attributes: Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, Span>> {
        let py = name.py();
        let parent_id = match parent {
            Some(parent) => parent.get().span_id.clone_ref(py).into_any(),
            None => match self.open.last() {
                Some(open) => open.get().span_id.clone_ref(py).into_any(),
                None => py.None(),
            },
        };
        self.count = self.count.wrapping_add(1);
        let span = Bound::new(
            py,
            Span {
                name: name.unbind(),
                span_id: PyString::new(py, &core::span_id(&self.prefix, self.count)).unbind(),
                parent_id,
                start: PyFloat::new(py, perf_counter(py)?).unbind(),
                attributes: attributes.unbind(),
                duration: AtomicU64::new(OPEN),
                status: AtomicU8::new(OK),
            },
        )?;
        self.spans.bind(py).append(&span)?;
        self.open.push(span.clone().unbind());
        Ok(span)
    }

    /// Closes ``span`` and returns its duration; None if it was closed already. The
    /// duration of a child of the root (a stage) is added to ``stages`` under its name.
    #[pyo3(signature = (span, stages=None))]
    fn end(
        &mut self,
        span: &Bound<'_, Span>,
        stages: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<f64>> {
        let py = span.py();
        let closing = span.get();
        let duration = (perf_counter(py)? - closing.start.bind(py).value()) * 1000.0;
        let ended = closing.duration.compare_exchange(
            OPEN,
            duration.to_bits(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if ended.is_err() {
            return Ok(None); // closed already
        }
        // Not always the last: concurrent attempts may interleave.
        if let Some(index) = self.open.iter().rposition(|s| s.as_ptr() == span.as_ptr()) {
            self.open.remove(index);
        }
        if let Some(stages) = stages {
            if closing.parent_id.is_none(py) {
                let name = closing.name.bind(py);
                let before: f64 = match stages.get_item(name)? {
                    Some(value) => value.extract()?,
                    None => 0.0,
                };
                stages.set_item(name, before + duration)?;
            }
        }
        Ok(Some(duration))
    }

    /// The log's `span_rows` as JSON: the request's root span (its fields given here) then
    /// every span in the order they opened, each an array (`floopy_core::trace::
    /// push_span_row`). A span's start, `time.perf_counter()` time, is written as Unix
    /// seconds by adding `offset`; an open span's duration as 0; a span without a parent
    /// named is the root's child. Attribute values are written as text (a bool as
    /// true/false, None left out, anything else as `str()` makes it), an `error.message`
    /// passed through `clean` first (the log's scrubbers). With `export`, the same spans
    /// are also written for the trace export, for `export_row` to take.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (parent_id, started_at, duration_ms, status, attributes, offset, clean, export=false))]
    fn span_rows<'py>(
        &mut self,
        py: Python<'py>,
        parent_id: &str,
        started_at: f64,
        duration_ms: f64,
        status: &str,
        attributes: &Bound<'py, PyDict>,
        offset: f64,
        clean: &Bound<'py, PyAny>,
        export: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let spans = self.spans.bind(py);
        let mut out = Vec::with_capacity(192 * (spans.len() + 1));
        let mut tape = export.then(|| Tape::with_spans(spans.len() + 1));
        out.push(b'[');
        let root_id = self.root_id.bind(py).to_string_lossy();
        let root = core::SpanRow {
            span_id: &root_id,
            parent_id,
            name: "request",
            start_time: started_at,
            duration_ms,
            status,
        };
        push_row(&mut out, tape.as_mut(), &root, attributes, None)?;
        for span in spans.iter() {
            let span = span.cast_into::<Span>()?;
            let fields = span.get();
            let parent = fields.parent_id.bind(py);
            let parent = if parent.is_none() {
                root_id.clone()
            } else {
                parent.str()?.to_string_lossy().into_owned().into()
            };
            let (span_id, name) = (fields.span_id.bind(py), fields.name.bind(py));
            let row = core::SpanRow {
                span_id: &span_id.to_string_lossy(),
                parent_id: &parent,
                name: &name.to_string_lossy(),
                start_time: fields.start.bind(py).value() + offset,
                duration_ms: fields.duration().unwrap_or(0.0),
                status: fields.status_name(),
            };
            out.push(b',');
            let attributes = fields.attributes.bind(py);
            push_row(&mut out, tape.as_mut(), &row, attributes, Some(clean))?;
        }
        out.push(b']');
        self.export = tape;
        Ok(PyBytes::new(py, &out))
    }

    /// The request's row for the trace export: the spans `span_rows(..., export=True)`
    /// wrote, and the fields of `record` (the log's `RequestRecord`) the export reads.
    fn export_row(&mut self, record: &Bound<'_, PyAny>) -> PyResult<ExportRow> {
        let Some(mut tape) = self.export.take() else {
            return Err(PyValueError::new_err(
                "no spans written for the export: call span_rows(..., export=True) first",
            ));
        };
        push_fields(&mut tape, record)?;
        Ok(ExportRow { tape })
    }

    /// When the first child of the root named `name` (a stage) opened, `perf_counter()`
    /// time; None if none did.
    fn stage_start(&self, py: Python<'_>, name: &str) -> PyResult<Option<f64>> {
        for span in self.spans.bind(py).iter() {
            let span = span.cast_into::<Span>()?;
            let fields = span.get();
            if fields.parent_id.is_none(py) && fields.name.bind(py).to_cow()? == name {
                return Ok(Some(fields.start.bind(py).value()));
            }
        }
        Ok(None)
    }

    /// The summed duration of the spans named `first` or `second` (open ones count 0).
    #[pyo3(signature = (first, second=None))]
    fn total_ms(&self, py: Python<'_>, first: &str, second: Option<&str>) -> PyResult<f64> {
        let mut total = 0.0;
        for span in self.spans.bind(py).iter() {
            let span = span.cast_into::<Span>()?;
            let name = span.get().name.bind(py).to_cow()?;
            if name == first || Some(name.as_ref()) == second {
                total += span.get().duration().unwrap_or(0.0);
            }
        }
        Ok(total)
    }

    /// Whether any span has `status`.
    fn any_status(&self, py: Python<'_>, status: &str) -> PyResult<bool> {
        for span in self.spans.bind(py).iter() {
            if span.cast_into::<Span>()?.get().status_name() == status {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Ends the spans a request left open (it was cancelled or failed inside them).
    fn close_open(&mut self, status: &Bound<'_, PyString>) -> PyResult<()> {
        let py = status.py();
        let code = status_code(&status.to_cow()?)?;
        let open: Vec<Py<Span>> = self.open.iter().map(|s| s.clone_ref(py)).collect();
        for span in open {
            let span = span.bind(py);
            let _ =
                span.get()
                    .status
                    .compare_exchange(OK, code, Ordering::Relaxed, Ordering::Relaxed);
            self.end(span, None)?;
        }
        Ok(())
    }
}

/// Appends one span row, its attributes read from `attributes` as `Trace.span_rows` says;
/// to `tape` too when there is one.
fn push_row(
    out: &mut Vec<u8>,
    tape: Option<&mut Tape>,
    row: &core::SpanRow<'_>,
    attributes: &Bound<'_, PyDict>,
    clean: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let py = attributes.py();
    let mut texts: Vec<(Bound<'_, PyString>, Bound<'_, PyString>)> =
        Vec::with_capacity(attributes.len());
    for (name, value) in attributes.iter() {
        if value.is_none() {
            continue;
        }
        let name = name.str()?;
        let value = if let Ok(flag) = value.cast::<PyBool>() {
            PyString::new(py, if flag.is_true() { "true" } else { "false" })
        } else {
            value.str()?
        };
        let value = match clean {
            Some(clean) if name.to_cow()? == "error.message" => {
                clean.call1((value,))?.cast_into::<PyString>()?
            }
            _ => value,
        };
        texts.push((name, value));
    }
    let texts: Vec<(Cow<'_, str>, Cow<'_, str>)> = texts
        .iter()
        .map(|(name, value)| (name.to_string_lossy(), value.to_string_lossy()))
        .collect();
    let pairs = texts
        .iter()
        .map(|(name, value)| (name.as_ref(), value.as_ref()));
    core::push_span_row(out, row, pairs.clone());
    if let Some(tape) = tape {
        tape.push_span(row, pairs);
    }
    Ok(())
}

/// The names of the `RequestRecord` fields the export reads, interned once.
struct RecordFields {
    texts: Vec<Py<PyString>>,
    integers: Vec<Py<PyString>>,
    numbers: Vec<Py<PyString>>,
    properties: Py<PyString>,
}

static RECORD_FIELDS: PyOnceLock<RecordFields> = PyOnceLock::new();

/// Writes the fields of `record` the export reads onto `tape`, in the order the tape keeps
/// them (`floopy_core::otlp::TEXTS`, the properties, then `INTEGERS` and `NUMBERS`).
fn push_fields(tape: &mut Tape, record: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = record.py();
    let names = RECORD_FIELDS.get_or_init(py, || {
        let intern = |names: &[&str]| -> Vec<Py<PyString>> {
            names
                .iter()
                .map(|name| PyString::intern(py, name).unbind())
                .collect()
        };
        RecordFields {
            texts: intern(&otlp::TEXTS),
            integers: intern(&otlp::INTEGERS),
            numbers: intern(&otlp::NUMBERS),
            properties: PyString::intern(py, "properties").unbind(),
        }
    });
    for name in &names.texts {
        let text = record.getattr(name.bind(py))?;
        tape.push_text(&text.cast_into::<PyString>()?.to_string_lossy());
    }
    let properties = record.getattr(names.properties.bind(py))?;
    let properties = properties.cast::<PyDict>()?;
    for (name, value) in properties.iter() {
        tape.push_text(&name.cast_into::<PyString>()?.to_string_lossy());
        tape.push_text(&value.cast_into::<PyString>()?.to_string_lossy());
    }
    let mut integers = [0i64; otlp::INTEGERS.len()];
    for (value, name) in integers.iter_mut().zip(&names.integers) {
        *value = record.getattr(name.bind(py))?.extract()?;
    }
    let mut numbers = [None; otlp::NUMBERS.len()];
    for (value, name) in numbers.iter_mut().zip(&names.numbers) {
        *value = record.getattr(name.bind(py))?.extract()?;
    }
    tape.end_row(integers, numbers, properties.len() as i64);
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Span>()?;
    m.add_class::<Trace>()?;
    Ok(())
}
