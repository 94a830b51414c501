//! The OpenAI chat-completions stream relay: forwards the upstream's events byte for byte and,
//! on the side, captures what the request log needs (content, finish reason, usage, tool
//! calls, time to first token).
//!
//! A relay must never break a stream: data that is not a chunk it understands (not JSON, an
//! unexpected shape) is forwarded and left out of the capture, never an error. The one thing
//! it refuses is an event longer than its parser's `max_event_bytes`: that event and the rest
//! of the stream are dropped, and [`StreamCapture::oversized`] tells the caller to end the
//! stream with an error of its own.

use std::borrow::Cow;
use std::time::Instant;

use serde::Deserialize;

use super::{EventView, SseParser};

/// Time since the relay was built, in milliseconds. A trait so tests can drive the clock.
pub trait Clock {
    fn elapsed_ms(&self) -> f64;
}

/// The real clock: monotonic, started when the relay is built.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(Instant::now())
    }
}

impl Clock for Stopwatch {
    fn elapsed_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// `prompt_tokens_details.cached_tokens`
    pub cached_tokens: u64,
    /// `completion_tokens_details.reasoning_tokens`
    pub reasoning_tokens: u64,
    /// Input tokens written to the provider's prompt cache (Anthropic's
    /// `cache_creation_input_tokens`); OpenAI streams report none.
    pub cache_write_tokens: u64,
}

/// A tool call of choice 0, assembled from its deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    /// The `function.arguments` fragments, concatenated.
    pub arguments: String,
}

/// What the relay has learnt from the stream so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamCapture {
    /// Choice 0's `delta.content`, concatenated.
    pub content: String,
    /// Choice 0's last non-null `finish_reason`.
    pub finish_reason: Option<String>,
    /// The last `usage` object seen.
    pub usage: Option<StreamUsage>,
    /// Choice 0's tool calls, ordered by index.
    pub tool_calls: Vec<ToolCall>,
    /// The first non-empty `model` (some vendors open with an empty one).
    pub model: Option<String>,
    /// The first non-empty `id`.
    pub response_id: Option<String>,
    /// From the relay's construction to the first chunk carrying content or a tool call.
    pub ttft_ms: Option<f64>,
    /// JSON chunks seen (the `[DONE]` sentinel and non-JSON data are not counted).
    pub chunk_count: u64,
    /// `data: [DONE]` was seen.
    pub done: bool,
    /// The message of an in-stream `{"error": ...}` chunk (a translated stream: of the
    /// provider's error, which went on to the client as an error event).
    pub error: Option<String>,
    /// The provider's kind of that error, where it names one (Anthropic's `type`, Gemini's
    /// `status`), and its HTTP-like code (Gemini's `code`; 0 when it has none).
    pub error_type: Option<String>,
    pub error_code: u64,
    /// The provider's error came before anything meant for the client: the caller raises it
    /// as the HTTP error it stands for (so the request can still fall back), and sends none
    /// of the stream.
    pub error_before_output: bool,
    /// The stream ended as it should: `[DONE]` or a finish reason for OpenAI, `message_stop`
    /// for Anthropic, a finish reason and no error for Gemini.
    pub completed: bool,
    /// An event outgrew the parser's `max_event_bytes`: it and everything after it were
    /// dropped, unrelayed. Unlike `error`, the client has not been told.
    pub oversized: bool,
    /// Content or tool-call arguments went past the relay's `max_capture_bytes` and the rest
    /// was left out of the capture (it was still relayed).
    pub truncated: bool,
}

/// Relays one stream. `feed` returns the bytes of the events it completes, exactly as
/// received; with `strip_usage`, the usage-only chunk that `stream_options.include_usage`
/// adds is captured but not forwarded (for clients that did not ask for it).
#[derive(Debug)]
pub struct OpenAIStreamRelay<C: Clock = Stopwatch> {
    parser: SseParser,
    sink: Sink<C>,
}

/// Where parsed blocks go: into the capture, and on to the client unless stripped.
#[derive(Debug)]
struct Sink<C> {
    strip_usage: bool,
    clock: C,
    capture: StreamCapture,
    /// The most bytes of text (content and tool-call arguments together) the capture keeps.
    max_capture_bytes: usize,
}

/// What a relay keeps of a stream's text for the log unless told otherwise (256 KiB): the
/// capture is for the log, which keeps no more, and a stream may be far larger.
pub const DEFAULT_MAX_CAPTURE_BYTES: usize = 256 * 1024;

impl OpenAIStreamRelay {
    pub fn new(strip_usage: bool) -> Self {
        Self::with_clock(strip_usage, Stopwatch::start())
    }
}

impl<C: Clock> OpenAIStreamRelay<C> {
    pub fn with_clock(strip_usage: bool, clock: C) -> Self {
        let sink = Sink {
            strip_usage,
            clock,
            capture: StreamCapture::default(),
            max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
        };
        Self {
            parser: SseParser::new(),
            sink,
        }
    }

    /// The same relay with its events capped at `max_event_bytes` (default
    /// [`DEFAULT_MAX_EVENT_BYTES`](super::DEFAULT_MAX_EVENT_BYTES)).
    pub fn with_max_event_bytes(mut self, max_event_bytes: usize) -> Self {
        self.parser = SseParser::with_max_event_bytes(max_event_bytes);
        self
    }

    pub fn max_event_bytes(&self) -> usize {
        self.parser.max_event_bytes()
    }

    /// The same relay keeping at most `max_capture_bytes` of content and tool-call arguments
    /// (together) in its capture; past it the text is relayed but not kept, and
    /// [`StreamCapture::truncated`] is set. Finish reason, usage and the rest are unaffected.
    pub fn with_max_capture_bytes(mut self, max_capture_bytes: usize) -> Self {
        self.sink.max_capture_bytes = max_capture_bytes;
        self
    }

    pub fn max_capture_bytes(&self) -> usize {
        self.sink.max_capture_bytes
    }

    pub fn strip_usage(&self) -> bool {
        self.sink.strip_usage
    }

    pub fn capture(&self) -> &StreamCapture {
        &self.sink.capture
    }

    /// Feeds upstream bytes; returns what to send on: every block they complete, comments
    /// and keep-alives included, as received.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        let sink = &mut self.sink;
        self.parser
            .feed_blocks(chunk, |raw, event| sink.accept(raw, event, &mut out));
        if self.parser.oversized() {
            self.sink.capture.oversized = true;
        }
        out
    }

    /// Ends the stream: returns the bytes still pending (a last event without its blank line).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let sink = &mut self.sink;
        self.parser
            .finish_blocks(|raw, event| sink.accept(raw, event, &mut out));
        out
    }
}

impl<C: Clock> Sink<C> {
    fn accept(&mut self, raw: &[u8], event: Option<EventView<'_>>, out: &mut Vec<u8>) {
        let (clock, room) = (&self.clock, self.max_capture_bytes);
        let usage_only = event.is_some_and(|event| self.capture.observe(event.data, clock, room));
        if !(usage_only && self.strip_usage) {
            out.extend_from_slice(raw);
        }
    }
}

impl StreamCapture {
    /// Records one `data:` payload; true when it is a usage-only chunk.
    fn observe(&mut self, data: &str, clock: &impl Clock, room: usize) -> bool {
        if data.trim_ascii() == "[DONE]" {
            self.done = true;
            self.completed = true;
            return false;
        }
        let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(data) else {
            return false;
        };
        self.chunk_count += 1;
        keep_first(&mut self.response_id, chunk.id);
        keep_first(&mut self.model, chunk.model);
        if let Some(error) = chunk.error {
            self.error = Some(error_message(error));
        }
        let choices = chunk.choices.unwrap_or_default();
        let usage_only = choices.is_empty() && chunk.usage.is_some();
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        for choice in choices.into_iter().filter(|choice| choice.index == 0) {
            self.observe_choice(choice, clock, room);
        }
        usage_only
    }

    fn observe_choice(&mut self, choice: Choice<'_>, clock: &impl Clock, room: usize) {
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(reason.0.into_owned());
            self.completed = true;
        }
        let Some(delta) = choice.delta else { return };
        let content = delta.content.map(|text| text.0).unwrap_or_default();
        let tool_calls = delta.tool_calls.unwrap_or_default();
        if self.ttft_ms.is_none() && (!content.is_empty() || !tool_calls.is_empty()) {
            self.ttft_ms = Some(clock.elapsed_ms());
        }
        let left = room.saturating_sub(self.kept_bytes());
        self.truncated |= push_capped(&mut self.content, &content, left);
        for (position, call) in tool_calls.into_iter().enumerate() {
            let left = room.saturating_sub(self.kept_bytes());
            self.merge_tool_call(position, call, left);
        }
    }

    /// Bytes of text kept so far: content and every tool call's arguments.
    fn kept_bytes(&self) -> usize {
        let arguments: usize = self
            .tool_calls
            .iter()
            .map(|call| call.arguments.len())
            .sum();
        self.content.len() + arguments
    }

    /// Deltas name their call by `index`; vendors that omit it send one call per position.
    fn merge_tool_call(&mut self, position: usize, delta: ToolCallDelta<'_>, left: usize) {
        let index = delta.index.unwrap_or(position as u32);
        let slot = match self
            .tool_calls
            .binary_search_by_key(&index, |call| call.index)
        {
            Ok(slot) => slot,
            Err(slot) => {
                let call = ToolCall {
                    index,
                    ..ToolCall::default()
                };
                self.tool_calls.insert(slot, call);
                slot
            }
        };
        let call = &mut self.tool_calls[slot];
        keep_first(&mut call.id, delta.id);
        if let Some(function) = delta.function {
            keep_first(&mut call.name, function.name);
            if let Some(arguments) = function.arguments {
                self.truncated |= push_capped(&mut call.arguments, &arguments.0, left);
            }
        }
    }
}

/// Appends as much of `text` as fits in `left` bytes, cut at a character boundary; true
/// when some of it was left out.
pub(crate) fn push_capped(kept: &mut String, text: &str, left: usize) -> bool {
    if text.len() <= left {
        kept.push_str(text);
        return false;
    }
    let mut cut = left;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    kept.push_str(&text[..cut]);
    true
}

fn keep_first(slot: &mut Option<String>, value: Option<Text<'_>>) {
    if slot.is_none() {
        *slot = value
            .filter(|text| !text.0.is_empty())
            .map(|text| text.0.into_owned());
    }
}

fn error_message(error: serde_json::Value) -> String {
    match error {
        serde_json::Value::String(message) => message,
        serde_json::Value::Object(ref fields) => match fields.get("message") {
            Some(serde_json::Value::String(message)) => message.clone(),
            _ => error.to_string(),
        },
        other => other.to_string(),
    }
}

// The chunk shapes, as far as the capture reads them. Unknown fields are skipped unparsed;
// strings borrow from the event's data unless they hold escapes.

/// A JSON string, borrowed when it holds no escapes.
#[derive(Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    model: Option<Text<'a>>,
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Text<'a>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    index: Option<u32>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    arguments: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl From<Usage> for StreamUsage {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens.unwrap_or(0),
            completion_tokens: usage.completion_tokens.unwrap_or(0),
            total_tokens: usage.total_tokens.unwrap_or(0),
            cached_tokens: usage
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: usage
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    /// A clock the test sets by hand.
    #[derive(Clone, Default)]
    struct ManualClock(Rc<Cell<f64>>);

    impl Clock for ManualClock {
        fn elapsed_ms(&self) -> f64 {
            self.0.get()
        }
    }

    fn chunk(delta: &str, finish_reason: &str) -> String {
        format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-test\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish_reason}}}]}}\n\n"
        )
    }

    const USAGE_CHUNK: &str = "data: {\"id\":\"chatcmpl-1\",\"model\":\"gpt-test\",\"choices\":[],\
        \"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14,\
        \"prompt_tokens_details\":{\"cached_tokens\":4},\
        \"completion_tokens_details\":{\"reasoning_tokens\":2}}}\n\n";

    fn text_stream() -> String {
        [
            chunk(r#"{"role":"assistant","content":""}"#, "null"),
            chunk(r#"{"content":"Hel"}"#, "null"),
            chunk(r#"{"content":"lo \"you\""}"#, "null"),
            chunk("{}", r#""stop""#),
            USAGE_CHUNK.to_owned(),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat()
    }

    fn relay_all(relay: &mut OpenAIStreamRelay<impl Clock>, input: &[u8]) -> Vec<u8> {
        let mut out = relay.feed(input);
        out.extend(relay.finish());
        out
    }

    #[test]
    fn text_stream_is_relayed_unchanged_and_captured() {
        let input = text_stream();
        let mut relay = OpenAIStreamRelay::new(false);
        assert_eq!(relay_all(&mut relay, input.as_bytes()), input.as_bytes());
        let capture = relay.capture();
        assert_eq!(capture.content, "Hello \"you\"");
        assert_eq!(capture.finish_reason.as_deref(), Some("stop"));
        assert_eq!(capture.model.as_deref(), Some("gpt-test"));
        assert_eq!(capture.response_id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(capture.chunk_count, 5);
        assert!(capture.done);
        assert_eq!(capture.error, None);
        assert_eq!(
            capture.usage,
            Some(StreamUsage {
                prompt_tokens: 11,
                completion_tokens: 3,
                total_tokens: 14,
                cached_tokens: 4,
                reasoning_tokens: 2,
                cache_write_tokens: 0,
            })
        );
    }

    #[test]
    fn strip_usage_drops_only_the_usage_only_chunk() {
        let input = text_stream();
        let mut relay = OpenAIStreamRelay::new(true);
        let out = relay_all(&mut relay, input.as_bytes());
        assert_eq!(out, input.replace(USAGE_CHUNK, "").as_bytes());
        assert_eq!(relay.capture().usage.map(|u| u.total_tokens), Some(14));
    }

    #[test]
    fn usage_riding_on_a_chunk_with_choices_is_never_stripped() {
        let input = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\
                     \"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n";
        let mut relay = OpenAIStreamRelay::new(true);
        assert_eq!(relay_all(&mut relay, input.as_bytes()), input.as_bytes());
        assert_eq!(relay.capture().usage.map(|u| u.completion_tokens), Some(2));
    }

    #[test]
    fn feed_returns_only_complete_events() {
        let event = chunk(r#"{"content":"x"}"#, "null");
        let (head, tail) = event.split_at(event.len() - 1);
        let mut relay = OpenAIStreamRelay::new(false);
        assert!(relay.feed(head.as_bytes()).is_empty());
        assert_eq!(relay.feed(tail.as_bytes()), event.as_bytes());
    }

    #[test]
    fn ttft_is_taken_at_the_first_chunk_with_content() {
        let clock = ManualClock::default();
        let mut relay = OpenAIStreamRelay::with_clock(false, clock.clone());
        clock.0.set(5.0);
        relay.feed(chunk(r#"{"role":"assistant","content":""}"#, "null").as_bytes());
        assert_eq!(relay.capture().ttft_ms, None);
        clock.0.set(42.5);
        relay.feed(chunk(r#"{"content":"a"}"#, "null").as_bytes());
        clock.0.set(99.0);
        relay.feed(chunk(r#"{"content":"b"}"#, "null").as_bytes());
        assert_eq!(relay.capture().ttft_ms, Some(42.5));
    }

    #[test]
    fn ttft_counts_a_tool_call_as_the_first_token() {
        let clock = ManualClock::default();
        let mut relay = OpenAIStreamRelay::with_clock(false, clock.clone());
        clock.0.set(7.0);
        relay.feed(
            chunk(
                r#"{"tool_calls":[{"index":0,"id":"c","function":{"name":"f"}}]}"#,
                "null",
            )
            .as_bytes(),
        );
        assert_eq!(relay.capture().ttft_ms, Some(7.0));
    }

    #[test]
    fn tool_calls_are_assembled_by_index() {
        let input = [
            chunk(
                r#"{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
                "null",
            ),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}"#, "null"),
            chunk(
                r#"{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"get_time","arguments":"{}"}}]}"#,
                "null",
            ),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}"#, "null"),
            chunk("{}", r#""tool_calls""#),
        ]
        .concat();
        let mut relay = OpenAIStreamRelay::new(false);
        relay_all(&mut relay, input.as_bytes());
        let capture = relay.capture();
        assert_eq!(
            capture.tool_calls,
            vec![
                ToolCall {
                    index: 0,
                    id: Some("call_a".into()),
                    name: Some("get_weather".into()),
                    arguments: r#"{"city":"Paris"}"#.into(),
                },
                ToolCall {
                    index: 1,
                    id: Some("call_b".into()),
                    name: Some("get_time".into()),
                    arguments: "{}".into(),
                },
            ]
        );
        assert_eq!(capture.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(capture.content, "");
    }

    #[test]
    fn other_choices_are_not_captured() {
        let input = "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B\"}},\
                     {\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n\
                     data: {\"choices\":[{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n";
        let mut relay = OpenAIStreamRelay::new(false);
        relay_all(&mut relay, input.as_bytes());
        assert_eq!(relay.capture().content, "A");
        assert_eq!(relay.capture().finish_reason, None);
    }

    #[test]
    fn in_stream_error_message_is_captured() {
        let input =
            "data: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\"}}\n\n";
        let mut relay = OpenAIStreamRelay::new(true);
        assert_eq!(relay_all(&mut relay, input.as_bytes()), input.as_bytes());
        assert_eq!(
            relay.capture().error.as_deref(),
            Some("upstream overloaded")
        );
    }

    #[test]
    fn error_without_message_is_kept_whole() {
        let mut relay = OpenAIStreamRelay::new(false);
        relay_all(&mut relay, b"data: {\"error\":{\"code\":500}}\n\n");
        assert_eq!(relay.capture().error.as_deref(), Some(r#"{"code":500}"#));
        let mut relay = OpenAIStreamRelay::new(false);
        relay_all(&mut relay, b"data: {\"error\":\"boom\"}\n\n");
        assert_eq!(relay.capture().error.as_deref(), Some("boom"));
    }

    #[test]
    fn non_json_and_odd_shapes_are_forwarded_and_ignored() {
        let input = ": keep-alive\n\ndata: not json\n\nevent: ping\ndata: {\"choices\":\"oops\"}\n\n\
                     data: [1,2]\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n";
        let mut relay = OpenAIStreamRelay::new(true);
        assert_eq!(relay_all(&mut relay, input.as_bytes()), input.as_bytes());
        assert_eq!(relay.capture().content, "ok");
        assert_eq!(relay.capture().chunk_count, 1);
        assert!(!relay.capture().done);
    }

    #[test]
    fn an_oversized_event_is_dropped_with_the_rest_of_the_stream() {
        let first = chunk(r#"{"content":"Hel"}"#, "null");
        let mut relay = OpenAIStreamRelay::new(false).with_max_event_bytes(first.len());
        assert_eq!(relay.max_event_bytes(), first.len());
        let mut input = first.clone().into_bytes();
        input.extend_from_slice(b"data: {\"choices\":[");
        input.extend(std::iter::repeat_n(b' ', first.len()));
        assert_eq!(
            relay.feed(&input),
            first.as_bytes(),
            "what came before is relayed"
        );
        assert!(relay.capture().oversized);
        assert_eq!(relay.capture().error, None, "not an upstream error event");
        assert!(relay.feed(b"]}\n\ndata: [DONE]\n\n").is_empty());
        assert!(relay.finish().is_empty());
        assert!(
            relay.capture().oversized,
            "the capture keeps it after finish"
        );
        assert_eq!(relay.capture().content, "Hel");
        assert!(!relay.capture().done);
    }

    #[test]
    fn a_stream_within_the_cap_is_relayed_whole() {
        let input = text_stream();
        let mut relay = OpenAIStreamRelay::new(false).with_max_event_bytes(512);
        assert_eq!(relay_all(&mut relay, input.as_bytes()), input.as_bytes());
        assert!(!relay.capture().oversized);
    }

    #[test]
    fn finish_relays_a_last_event_without_its_blank_line() {
        let mut relay = OpenAIStreamRelay::new(false);
        assert!(relay.feed(b"data: [DONE]").is_empty());
        assert!(!relay.capture().done);
        assert_eq!(relay.finish(), b"data: [DONE]");
        assert!(relay.capture().done);
    }

    #[test]
    fn byte_by_byte_feeding_relays_and_captures_the_same() {
        let input = text_stream().replace("\n", "\r\n");
        let mut whole = OpenAIStreamRelay::new(true);
        let whole_out = relay_all(&mut whole, input.as_bytes());
        let mut bytewise = OpenAIStreamRelay::new(true);
        let mut out: Vec<u8> = input.bytes().flat_map(|b| bytewise.feed(&[b])).collect();
        out.extend(bytewise.finish());
        assert_eq!(out, whole_out);
        let mut expected = whole.capture().clone();
        expected.ttft_ms = bytewise.capture().ttft_ms;
        assert_eq!(bytewise.capture(), &expected);
        assert_eq!(expected.content, "Hello \"you\"");
    }

    #[test]
    fn the_capture_keeps_at_most_its_cap_and_relays_everything() {
        let input = text_stream();
        let mut relay = OpenAIStreamRelay::new(false).with_max_capture_bytes(4);
        assert_eq!(relay.max_capture_bytes(), 4);
        assert_eq!(relay_all(&mut relay, input.as_bytes()), input.as_bytes());
        let capture = relay.capture();
        assert_eq!(capture.content, "Hell");
        assert!(capture.truncated);
        assert_eq!(
            capture.finish_reason.as_deref(),
            Some("stop"),
            "the end still counts"
        );
        assert_eq!(capture.usage.map(|usage| usage.total_tokens), Some(14));
        assert!(capture.done);
    }

    #[test]
    fn a_capped_capture_cuts_at_a_character_boundary() {
        let input = chunk(r#"{"content":"h\u00e9llo"}"#, "null");
        let mut relay = OpenAIStreamRelay::new(false).with_max_capture_bytes(2);
        relay_all(&mut relay, input.as_bytes());
        assert_eq!(
            relay.capture().content,
            "h",
            "the two-byte é does not fit in one byte"
        );
        assert!(relay.capture().truncated);
    }

    #[test]
    fn content_and_tool_arguments_share_one_cap() {
        let input = [
            chunk(r#"{"content":"abc"}"#, "null"),
            chunk(
                r#"{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{\"x\":1}"}}]}"#,
                "null",
            ),
        ]
        .concat();
        let mut relay = OpenAIStreamRelay::new(false).with_max_capture_bytes(6);
        relay_all(&mut relay, input.as_bytes());
        let capture = relay.capture();
        assert_eq!(capture.content, "abc");
        assert_eq!(capture.tool_calls[0].arguments, "{\"x");
        assert_eq!(capture.tool_calls[0].name.as_deref(), Some("f"));
        assert!(capture.truncated);
    }

    #[test]
    fn a_stream_within_the_capture_cap_is_not_truncated() {
        let mut relay = OpenAIStreamRelay::new(false);
        assert_eq!(relay.max_capture_bytes(), DEFAULT_MAX_CAPTURE_BYTES);
        relay_all(&mut relay, text_stream().as_bytes());
        assert!(!relay.capture().truncated);
    }
}
