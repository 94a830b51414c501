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
    cache_write_tokens: u64,
}

impl From<core::StreamUsage> for StreamUsage {
    fn from(usage: core::StreamUsage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            cached_tokens: usage.cached_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cache_write_tokens: usage.cache_write_tokens,
        }
    }
}

#[pymethods]
impl StreamUsage {
    fn __repr__(&self) -> String {
        format!(
            "StreamUsage(prompt_tokens={}, completion_tokens={}, total_tokens={}, \
             cached_tokens={}, reasoning_tokens={}, cache_write_tokens={})",
            self.prompt_tokens,
            self.completion_tokens,
            self.total_tokens,
            self.cached_tokens,
            self.reasoning_tokens,
            self.cache_write_tokens
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

    #[getter]
    fn completed(&self) -> bool {
        self.0.capture().completed
    }
}

/// A stream translator shared by the upstream client's thread (`NativeUpstream.relay`),
/// which feeds it, and Python, which reads what it captured at any time; it is done once the
/// call is over. Built alone (`stream_translator`), Python feeds it itself.
#[pyclass(module = "floopy._native", name = "RelayCapture", frozen)]
pub struct RelayCapture(Arc<Mutex<Box<dyn core::StreamTranslate>>>);

/// The translator as the upstream client's.
struct SharedRelay(Arc<Mutex<Box<dyn core::StreamTranslate>>>);

impl floopy_upstream::Translate for SharedRelay {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        let mut relay = lock(&self.0);
        relay.feed(chunk, out);
        !relay.capture().oversized
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        lock(&self.0).finish(out);
    }
}

type Shared = Mutex<Box<dyn core::StreamTranslate>>;

fn lock(relay: &Shared) -> MutexGuard<'_, Box<dyn core::StreamTranslate>> {
    relay.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a relayed stream is translated: what the provider speaks, and what it needs for that.
pub struct Translation<'a> {
    /// "openai", "anthropic" or "gemini".
    pub source: &'a str,
    pub strip_usage: bool,
    /// The model asked for: a translated stream's `model` until the provider names its own.
    pub model: &'a str,
    pub include_usage: bool,
    /// Anthropic: the tool standing in for `response_format`, streamed as content.
    pub json_tool: Option<&'a str>,
    /// The id of a stream that gives none (Gemini: after `chatcmpl-`; `/v1/messages`: the
    /// message's, after `msg_`).
    pub fallback_id: &'a str,
    /// Written on as Anthropic Messages events, `message_start` naming this model.
    pub messages_model: Option<&'a str>,
    pub max_event_bytes: i64,
    pub max_capture_bytes: i64,
}

fn translator(how: &Translation<'_>) -> PyResult<Box<dyn core::StreamTranslate>> {
    let cap = checked_cap(how.max_event_bytes)?;
    let kept = size("max_capture_bytes", how.max_capture_bytes)?;
    let inner: Box<dyn core::StreamTranslate> = match how.source {
        "openai" => Box::new(
            core::OpenAIStreamRelay::new(how.strip_usage)
                .with_max_event_bytes(cap)
                .with_max_capture_bytes(kept),
        ),
        "anthropic" => Box::new(
            core::AnthropicToOpenAI::new(how.model, how.include_usage, how.json_tool)
                .with_max_event_bytes(cap)
                .with_max_capture_bytes(kept),
        ),
        "gemini" => Box::new(
            core::GeminiToOpenAI::new(how.model, how.include_usage, how.fallback_id)
                .with_max_event_bytes(cap)
                .with_max_capture_bytes(kept),
        ),
        other => {
            return Err(PyValueError::new_err(format!(
                "source must be \"openai\", \"anthropic\" or \"gemini\", not {other:?}"
            )))
        }
    };
    Ok(match how.messages_model {
        Some(model) => Box::new(core::ToMessages::new(inner, model, how.fallback_id)),
        None => inner,
    })
}

/// A translator for the upstream client's thread and its capture for Python, sharing one
/// state.
pub fn shared_relay(
    how: &Translation<'_>,
) -> PyResult<(Box<dyn floopy_upstream::Translate>, RelayCapture)> {
    let shared = Arc::new(Mutex::new(translator(how)?));
    Ok((
        Box::new(SharedRelay(Arc::clone(&shared))),
        RelayCapture(shared),
    ))
}

/// A stream translator Python feeds itself (tests, and the parity of the two relays).
#[pyfunction]
#[pyo3(signature = (
    source,
    *,
    strip_usage = false,
    model = "",
    include_usage = false,
    json_tool = None,
    fallback_id = "",
    messages_model = None,
    max_event_bytes = core::DEFAULT_MAX_EVENT_BYTES as i64,
    max_capture_bytes = DEFAULT_MAX_CAPTURE_BYTES as i64,
))]
#[allow(clippy::too_many_arguments)] // the Python signature's, keywords included
fn stream_translator(
    source: &str,
    strip_usage: bool,
    model: &str,
    include_usage: bool,
    json_tool: Option<&str>,
    fallback_id: &str,
    messages_model: Option<&str>,
    max_event_bytes: i64,
    max_capture_bytes: i64,
) -> PyResult<RelayCapture> {
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
    Ok(RelayCapture(Arc::new(Mutex::new(translator(&how)?))))
}

#[pymethods]
impl RelayCapture {
    /// Feeds provider bytes; returns what they complete for the client.
    fn feed<'py>(&self, py: Python<'py>, chunk: &[u8]) -> Bound<'py, PyBytes> {
        let mut out = Vec::with_capacity(chunk.len());
        lock(&self.0).feed(chunk, &mut out);
        PyBytes::new(py, &out)
    }

    /// The clean end of the provider's stream: what it adds.
    fn finish<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut out = Vec::new();
        lock(&self.0).finish(&mut out);
        PyBytes::new(py, &out)
    }

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
    fn completed(&self) -> bool {
        lock(&self.0).capture().completed
    }

    #[getter]
    fn error(&self) -> Option<String> {
        lock(&self.0).capture().error.clone()
    }

    #[getter]
    fn error_type(&self) -> Option<String> {
        lock(&self.0).capture().error_type.clone()
    }

    #[getter]
    fn error_code(&self) -> u64 {
        lock(&self.0).capture().error_code
    }

    #[getter]
    fn error_before_output(&self) -> bool {
        lock(&self.0).capture().error_before_output
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SseEvent>()?;
    m.add_class::<SseParser>()?;
    m.add_class::<StreamUsage>()?;
    m.add_class::<ToolCall>()?;
    m.add_class::<OpenAIStreamRelay>()?;
    m.add_class::<RelayCapture>()?;
    m.add_function(wrap_pyfunction!(stream_translator, m)?)?;
    Ok(())
}
