//! Bindings of `floopy_core::sse`: the SSE parser and the OpenAI stream relay. Both are
//! per-stream objects that one asyncio task feeds; their calls take microseconds, so they keep
//! the GIL.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::args::size;
use floopy_core::sse as core;
use floopy_core::sse::DEFAULT_MAX_CAPTURE_BYTES;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(module = "floopy._native", name = "SseEvent", frozen, eq)]
#[derive(PartialEq)]
pub struct SseEvent(core::SseEvent);

#[pymethods]
impl SseEvent {
    #[getter]
    fn event(&self) -> Option<&str> {
        self.0.event.as_deref()
    }

    #[getter]
    fn data(&self) -> &str {
        &self.0.data
    }

    #[getter]
    fn id(&self) -> Option<&str> {
        self.0.id.as_deref()
    }

    #[getter]
    fn raw<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.raw)
    }

    fn __repr__(&self) -> String {
        let event = &self.0;
        format!(
            "SseEvent(event={:?}, data={:?}, id={:?})",
            event.event, event.data, event.id
        )
    }
}

fn to_py_events(events: Vec<core::SseEvent>) -> Vec<SseEvent> {
    events.into_iter().map(SseEvent).collect()
}

#[pyclass(module = "floopy._native", name = "SseParser")]
pub struct SseParser(core::SseParser);

fn checked_cap(max_event_bytes: i64) -> PyResult<usize> {
    let max_event_bytes = size("max_event_bytes", max_event_bytes)?;
    if max_event_bytes == 0 {
        return Err(PyValueError::new_err("max_event_bytes must be at least 1"));
    }
    Ok(max_event_bytes)
}

#[pymethods]
impl SseParser {
    #[new]
    #[pyo3(signature = (max_event_bytes = core::DEFAULT_MAX_EVENT_BYTES as i64))]
    fn new(max_event_bytes: i64) -> PyResult<Self> {
        let cap = checked_cap(max_event_bytes)?;
        Ok(Self(core::SseParser::with_max_event_bytes(cap)))
    }

    #[getter]
    fn max_event_bytes(&self) -> usize {
        self.0.max_event_bytes()
    }

    #[getter]
    fn oversized(&self) -> bool {
        self.0.oversized()
    }

    #[getter]
    fn pending(&self) -> usize {
        self.0.pending()
    }

    fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        to_py_events(self.0.feed(chunk))
    }

    fn finish(&mut self) -> Vec<SseEvent> {
        to_py_events(self.0.finish())
    }
}

#[pyclass(module = "floopy._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct StreamUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    cached_tokens: u64,
    reasoning_tokens: u64,
}

impl From<core::StreamUsage> for StreamUsage {
    fn from(usage: core::StreamUsage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            cached_tokens: usage.cached_tokens,
            reasoning_tokens: usage.reasoning_tokens,
        }
    }
}

#[pymethods]
impl StreamUsage {
    fn __repr__(&self) -> String {
        format!(
            "StreamUsage(prompt_tokens={}, completion_tokens={}, total_tokens={}, \
             cached_tokens={}, reasoning_tokens={})",
            self.prompt_tokens,
            self.completion_tokens,
            self.total_tokens,
            self.cached_tokens,
            self.reasoning_tokens
        )
    }
}

#[pyclass(module = "floopy._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct ToolCall {
    index: u32,
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

impl From<&core::ToolCall> for ToolCall {
    fn from(call: &core::ToolCall) -> Self {
        Self {
            index: call.index,
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        }
    }
}

#[pymethods]
impl ToolCall {
    fn __repr__(&self) -> String {
        format!(
            "ToolCall(index={}, id={:?}, name={:?}, arguments={:?})",
            self.index, self.id, self.name, self.arguments
        )
    }
}

#[pyclass(module = "floopy._native", name = "OpenAIStreamRelay")]
pub struct OpenAIStreamRelay(core::OpenAIStreamRelay);

#[pymethods]
impl OpenAIStreamRelay {
    #[new]
    #[pyo3(signature = (
        strip_usage = false,
        max_event_bytes = core::DEFAULT_MAX_EVENT_BYTES as i64,
        max_capture_bytes = DEFAULT_MAX_CAPTURE_BYTES as i64,
    ))]
    fn new(strip_usage: bool, max_event_bytes: i64, max_capture_bytes: i64) -> PyResult<Self> {
        let cap = checked_cap(max_event_bytes)?;
        let kept = size("max_capture_bytes", max_capture_bytes)?;
        Ok(Self(
            core::OpenAIStreamRelay::new(strip_usage)
                .with_max_event_bytes(cap)
                .with_max_capture_bytes(kept),
        ))
    }

    #[getter]
    fn max_capture_bytes(&self) -> usize {
        self.0.max_capture_bytes()
    }

    #[getter]
    fn truncated(&self) -> bool {
        self.0.capture().truncated
    }

    #[getter]
    fn max_event_bytes(&self) -> usize {
        self.0.max_event_bytes()
    }

    #[getter]
    fn oversized(&self) -> bool {
        self.0.capture().oversized
    }

    fn feed<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.feed(chunk))
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.finish())
    }

    #[getter]
    fn content(&self) -> &str {
        &self.0.capture().content
    }

    #[getter]
    fn finish_reason(&self) -> Option<&str> {
        self.0.capture().finish_reason.as_deref()
    }

    #[getter]
    fn usage(&self) -> Option<StreamUsage> {
        self.0.capture().usage.map(StreamUsage::from)
    }

    #[getter]
    fn tool_calls(&self) -> Vec<ToolCall> {
        self.0
            .capture()
            .tool_calls
            .iter()
            .map(ToolCall::from)
            .collect()
    }

    #[getter]
    fn model(&self) -> Option<&str> {
        self.0.capture().model.as_deref()
    }

    #[getter]
    fn response_id(&self) -> Option<&str> {
        self.0.capture().response_id.as_deref()
    }

    #[getter]
    fn ttft_ms(&self) -> Option<f64> {
        self.0.capture().ttft_ms
    }

    #[getter]
    fn chunk_count(&self) -> u64 {
        self.0.capture().chunk_count
    }

    #[getter]
    fn done(&self) -> bool {
        self.0.capture().done
    }

    #[getter]
    fn error(&self) -> Option<&str> {
        self.0.capture().error.as_deref()
    }
}

/// An OpenAI stream relay that runs on the upstream client's thread (`NativeUpstream.relay`);
/// this side reads what it captured, at any time, and it is done once the call is over.
#[pyclass(module = "floopy._native", name = "RelayCapture", frozen)]
pub struct RelayCapture(Arc<Mutex<core::OpenAIStreamRelay>>);

/// The relay as the upstream client's translator.
struct SharedRelay(Arc<Mutex<core::OpenAIStreamRelay>>);

impl floopy_upstream::Translate for SharedRelay {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        let mut relay = lock(&self.0);
        out.extend_from_slice(&relay.feed(chunk));
        !relay.capture().oversized
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&lock(&self.0).finish());
    }
}

fn lock(relay: &Mutex<core::OpenAIStreamRelay>) -> MutexGuard<'_, core::OpenAIStreamRelay> {
    relay.lock().unwrap_or_else(|e| e.into_inner())
}

/// A relay for the upstream client's thread and its capture for Python, sharing one state.
pub fn openai_relay(
    strip_usage: bool,
    max_event_bytes: i64,
    max_capture_bytes: i64,
) -> PyResult<(Box<dyn floopy_upstream::Translate>, RelayCapture)> {
    let relay = OpenAIStreamRelay::new(strip_usage, max_event_bytes, max_capture_bytes)?.0;
    let shared = Arc::new(Mutex::new(relay));
    Ok((
        Box::new(SharedRelay(Arc::clone(&shared))),
        RelayCapture(shared),
    ))
}

#[pymethods]
impl RelayCapture {
    #[getter]
    fn truncated(&self) -> bool {
        lock(&self.0).capture().truncated
    }

    #[getter]
    fn max_event_bytes(&self) -> usize {
        lock(&self.0).max_event_bytes()
    }

    #[getter]
    fn oversized(&self) -> bool {
        lock(&self.0).capture().oversized
    }

    #[getter]
    fn content(&self) -> String {
        lock(&self.0).capture().content.clone()
    }

    #[getter]
    fn finish_reason(&self) -> Option<String> {
        lock(&self.0).capture().finish_reason.clone()
    }

    #[getter]
    fn usage(&self) -> Option<StreamUsage> {
        lock(&self.0).capture().usage.map(StreamUsage::from)
    }

    #[getter]
    fn ttft_ms(&self) -> Option<f64> {
        lock(&self.0).capture().ttft_ms
    }

    #[getter]
    fn chunk_count(&self) -> u64 {
        lock(&self.0).capture().chunk_count
    }

    #[getter]
    fn done(&self) -> bool {
        lock(&self.0).capture().done
    }

    #[getter]
    fn error(&self) -> Option<String> {
        lock(&self.0).capture().error.clone()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SseEvent>()?;
    m.add_class::<SseParser>()?;
    m.add_class::<StreamUsage>()?;
    m.add_class::<ToolCall>()?;
    m.add_class::<OpenAIStreamRelay>()?;
    m.add_class::<RelayCapture>()?;
    Ok(())
}
