//! Anthropic Messages stream events translated into OpenAI `chat.completion.chunk` events as
//! they arrive: the native twin of `providers/anthropic/stream.py` (`ChunkTranslator` and
//! `StreamTally`), byte for byte.
//!
//! Anthropic's sequence is message_start, then per content block content_block_start, its
//! deltas (`text_delta`, `input_json_delta` for tool arguments) and content_block_stop, then
//! message_delta (stop reason, output usage) and message_stop; `ping` may come at any time
//! and `error` ends a stream early. OpenAI numbers tool calls from 0 in the order they start,
//! where Anthropic numbers all content blocks; the tool standing in for `response_format`
//! streams its input as content.

use serde::Deserialize;

use super::json::{
    non_empty, provider_error_event, push_chunk_head, push_int, push_json_str, push_opt_str,
    push_usage_rest, unix_now, Json, Text,
};
use super::openai::push_capped;
use super::translate::StreamTranslate;
use super::{Clock, SseParser, Stopwatch, StreamCapture, StreamUsage, DEFAULT_MAX_CAPTURE_BYTES};

const DONE: &[u8] = b"data: [DONE]\n\n";
const KEEP_ALIVE: &[u8] = b": ping\n\n";

/// Anthropic stop_reason -> OpenAI finish_reason.
fn finish_reason(stop_reason: &str, tool_calls: bool) -> &'static str {
    let finish = match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    };
    if finish == "tool_calls" && !tool_calls {
        "stop"
    } else {
        finish
    }
}

/// Usage as it builds up: every count is a total, so a later one replaces an earlier one.
#[derive(Debug, Default, Clone, Copy)]
struct UsageTally {
    input: i64,
    output: i64,
    cache_read: i64,
    cache_write: i64,
    reasoning: i64,
    seen: bool,
}

impl UsageTally {
    fn update(&mut self, usage: Option<WireUsage>) {
        let Some(usage) = usage else { return };
        self.seen = true;
        self.input = usage.input_tokens.unwrap_or(self.input);
        self.output = usage.output_tokens.unwrap_or(self.output);
        self.cache_read = usage.cache_read_input_tokens.unwrap_or(self.cache_read);
        self.cache_write = usage
            .cache_creation_input_tokens
            .unwrap_or(self.cache_write);
        let thinking = usage
            .output_tokens_details
            .as_ref()
            .and_then(|details| details.get("thinking_tokens"))
            .and_then(serde_json::Value::as_i64);
        if let Some(thinking) = thinking {
            self.reasoning = thinking;
        }
    }

    /// In OpenAI's convention: prompt tokens count every input token, cached included.
    fn prompt(&self) -> i64 {
        self.input + self.cache_read + self.cache_write
    }

    fn usage(&self) -> StreamUsage {
        let count = |value: i64| value.max(0) as u64;
        StreamUsage {
            prompt_tokens: count(self.prompt()),
            completion_tokens: count(self.output),
            total_tokens: count(self.prompt() + self.output),
            cached_tokens: count(self.cache_read),
            reasoning_tokens: count(self.reasoning),
            cache_write_tokens: count(self.cache_write),
        }
    }
}

/// Translates one Anthropic stream; see the module's documentation.
pub struct AnthropicToOpenAI<C: Clock = Stopwatch> {
    parser: SseParser,
    clock: C,
    capture: StreamCapture,
    max_capture_bytes: usize,
    /// The model asked for, until message_start names the one that answers.
    requested_model: String,
    include_usage: bool,
    json_tool: Option<String>,
    created: i64,
    message_id: String,
    model: String,
    usage: UsageTally,
    stop_reason: Option<String>,
    tool_calls: u64,
    json_blocks: Vec<i64>,
    /// Anthropic block index -> OpenAI tool call position.
    tool_index: Vec<(i64, i64)>,
}

impl AnthropicToOpenAI {
    pub fn new(model: &str, include_usage: bool, json_tool: Option<&str>) -> Self {
        Self::with_clock(model, include_usage, json_tool, Stopwatch::start())
    }
}

impl<C: Clock> AnthropicToOpenAI<C> {
    pub fn with_clock(model: &str, include_usage: bool, json_tool: Option<&str>, clock: C) -> Self {
        Self {
            parser: SseParser::new(),
            clock,
            capture: StreamCapture::default(),
            max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
            requested_model: model.to_owned(),
            include_usage,
            json_tool: json_tool.map(str::to_owned),
            created: unix_now(),
            message_id: String::new(),
            model: String::new(),
            usage: UsageTally::default(),
            stop_reason: None,
            tool_calls: 0,
            json_blocks: Vec::new(),
            tool_index: Vec::new(),
        }
    }

    pub fn with_max_event_bytes(mut self, max_event_bytes: usize) -> Self {
        self.parser = SseParser::with_max_event_bytes(max_event_bytes);
        self
    }

    pub fn with_max_capture_bytes(mut self, max_capture_bytes: usize) -> Self {
        self.max_capture_bytes = max_capture_bytes;
        self
    }

    /// `created` as the chunks carry it (tests pin it).
    pub fn with_created(mut self, created: i64) -> Self {
        self.created = created;
        self
    }

    fn on_blocks(&mut self, chunk: Option<&[u8]>, out: &mut Vec<u8>) {
        let datas = self.parser.datas(chunk);
        if self.parser.oversized() {
            self.capture.oversized = true;
        }
        for data in datas {
            let Ok(event) = serde_json::from_str::<Event<'_>>(&data) else {
                continue; // not an event the gateway understands: skipped, never fatal
            };
            self.observe(&event);
            self.translate(&event, out);
            if self.capture.error.is_some() && self.capture.chunk_count == 1 {
                // An error event before any other: the caller raises it as an HTTP error.
                self.capture.error_before_output = true;
            }
        }
    }

    fn observe(&mut self, event: &Event<'_>) {
        let capture = &mut self.capture;
        capture.chunk_count += 1;
        match event.kind() {
            "message_start" => {
                if let Some(message) = &event.message {
                    self.message_id = message.id.as_ref().map_or("", Text::as_str).to_owned();
                    self.model = message.model.as_ref().map_or("", Text::as_str).to_owned();
                    keep_first(&mut capture.response_id, &self.message_id);
                    keep_first(&mut capture.model, &self.model);
                    self.usage.update(message.usage.clone());
                }
            }
            "content_block_start" => {
                if let Some(block) = &event.content_block {
                    self.block_started(event.index, block);
                }
            }
            "content_block_delta" => {
                if let Some(delta) = &event.delta {
                    self.observe_delta(event.index, delta);
                }
            }
            "message_delta" => {
                if let Some(reason) = event.delta.as_ref().and_then(|d| d.stop_reason.as_ref()) {
                    self.stop_reason = Some(reason.as_str().to_owned());
                }
                self.usage.update(event.usage.clone());
            }
            "message_stop" => {
                capture.done = true;
                capture.completed = true;
            }
            "error" => {
                let (kind, message) = match &event.error {
                    Some(error) => (
                        error.kind.as_ref().map_or("api_error", Text::as_str),
                        error.message.as_ref().map_or("", Text::as_str),
                    ),
                    None => ("api_error", ""),
                };
                capture.error = Some(format!("{kind}: {message}"));
                capture.error_type = Some(kind.to_owned());
            }
            _ => {}
        }
        self.capture.finish_reason = self
            .stop_reason
            .as_deref()
            .map(|reason| finish_reason(reason, self.tool_calls > 0).to_owned());
        if self.usage.seen {
            self.capture.usage = Some(self.usage.usage());
        }
    }

    fn block_started(&mut self, index: i64, block: &Block<'_>) {
        let kind = block.kind.as_ref().map_or("", Text::as_str);
        let name = block.name.as_ref().map(Text::as_str);
        if kind == "tool_use" && name == self.json_tool.as_deref() {
            self.json_blocks.push(index);
        } else if kind == "tool_use" {
            self.tool_calls += 1;
            self.first_token();
        } else if kind == "text" {
            if let Some(text) = non_empty(&block.text) {
                self.add_text(text);
            }
        }
    }

    fn observe_delta(&mut self, index: i64, delta: &Delta<'_>) {
        match delta.kind.as_ref().map_or("", Text::as_str) {
            "text_delta" => {
                if let Some(text) = non_empty(&delta.text) {
                    self.add_text(text);
                }
            }
            "input_json_delta" => {
                if let Some(partial) = non_empty(&delta.partial_json) {
                    if self.json_blocks.contains(&index) {
                        self.add_text(partial);
                    } else {
                        self.first_token();
                    }
                }
            }
            _ => {}
        }
    }

    fn add_text(&mut self, text: &str) {
        let left = self
            .max_capture_bytes
            .saturating_sub(self.capture.content.len());
        self.capture.truncated |= push_capped(&mut self.capture.content, text, left);
        self.first_token();
    }

    fn first_token(&mut self) {
        if self.capture.ttft_ms.is_none() {
            self.capture.ttft_ms = Some(self.clock.elapsed_ms());
        }
    }

    fn translate(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        match event.kind() {
            "message_start" => self.chunk(out, None, |out| {
                out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"}");
            }),
            "content_block_start" => {
                if let Some(block) = &event.content_block {
                    self.block_start(event.index, block, out);
                }
            }
            "content_block_delta" => {
                if let Some(delta) = &event.delta {
                    self.delta(event.index, delta, out);
                }
            }
            "message_delta" => {
                if let Some(finish) = self.capture.finish_reason.clone() {
                    self.chunk(out, Some(&finish), |out| out.extend_from_slice(b"{}"));
                }
            }
            "message_stop" => self.end(out),
            "ping" => out.extend_from_slice(KEEP_ALIVE),
            "error" => {
                let message = self.capture.error.clone().unwrap_or_default();
                provider_error_event(out, &message);
            }
            _ => {}
        }
    }

    fn block_start(&mut self, index: i64, block: &Block<'_>, out: &mut Vec<u8>) {
        let kind = block.kind.as_ref().map_or("", Text::as_str);
        if kind == "text" {
            if let Some(text) = non_empty(&block.text) {
                self.chunk(out, None, |out| content_delta(out, text));
            }
            return;
        }
        if kind != "tool_use" || self.json_blocks.contains(&index) {
            return;
        }
        let position = self.tool_index.len() as i64;
        match self
            .tool_index
            .iter_mut()
            .find(|(block, _)| *block == index)
        {
            Some(slot) => slot.1 = position,
            None => self.tool_index.push((index, position)),
        }
        let mut arguments = Vec::new();
        if let Some(input) = block.input.as_ref().filter(|input| input.truthy()) {
            input.write(&mut arguments, false);
        }
        let id = block.id.as_ref().map_or("", Text::as_str);
        let name = block.name.as_ref().map_or("", Text::as_str);
        self.chunk(out, None, |out| {
            out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
            push_int(out, position);
            out.extend_from_slice(b",\"id\":");
            push_json_str(out, id);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            push_json_str(out, name);
            out.extend_from_slice(b",\"arguments\":");
            push_json_str(out, std::str::from_utf8(&arguments).unwrap_or_default());
            out.extend_from_slice(b"}}]}");
        });
    }

    fn delta(&mut self, index: i64, delta: &Delta<'_>, out: &mut Vec<u8>) {
        match delta.kind.as_ref().map_or("", Text::as_str) {
            "text_delta" => {
                if let Some(text) = non_empty(&delta.text) {
                    self.chunk(out, None, |out| content_delta(out, text));
                }
            }
            "input_json_delta" => {
                let Some(partial) = non_empty(&delta.partial_json) else {
                    return;
                };
                if self.json_blocks.contains(&index) {
                    self.chunk(out, None, |out| content_delta(out, partial));
                    return;
                }
                let Some(&(_, position)) = self.tool_index.iter().find(|(b, _)| *b == index) else {
                    return;
                };
                self.chunk(out, None, |out| {
                    out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                    push_int(out, position);
                    out.extend_from_slice(b",\"function\":{\"arguments\":");
                    push_json_str(out, partial);
                    out.extend_from_slice(b"}}]}");
                });
            }
            _ => {} // thinking, signatures, citations: not part of an OpenAI answer
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            let usage = self.usage.usage();
            self.head(out);
            push_usage_rest(out, &usage, true);
        }
        out.extend_from_slice(DONE);
    }

    /// `data: {"id":..,"object":..,"created":..,"model":..` (the object left open).
    fn head(&self, out: &mut Vec<u8>) {
        let model = if self.model.is_empty() {
            &self.requested_model
        } else {
            &self.model
        };
        push_chunk_head(out, &self.message_id, self.created, model);
    }

    fn chunk(&self, out: &mut Vec<u8>, finish: Option<&str>, delta: impl FnOnce(&mut Vec<u8>)) {
        self.head(out);
        out.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
        delta(out);
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        push_opt_str(out, finish);
        out.extend_from_slice(b"}]}\n\n");
    }
}

fn content_delta(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"content\":");
    push_json_str(out, text);
    out.push(b'}');
}

fn keep_first(slot: &mut Option<String>, value: &str) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value.to_owned());
    }
}

impl<C: Clock + Send> StreamTranslate for AnthropicToOpenAI<C> {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.on_blocks(Some(chunk), out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.on_blocks(None, out);
    }

    fn capture(&self) -> &StreamCapture {
        &self.capture
    }

    fn max_event_bytes(&self) -> usize {
        self.parser.max_event_bytes()
    }
}

// The event shapes, as far as the translator reads them. A field of the wrong type makes the
// whole event unreadable (skipped), as on the Python side.

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
    #[serde(default)]
    index: i64,
    #[serde(borrow)]
    content_block: Option<Block<'a>>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    usage: Option<WireUsage>,
    #[serde(borrow)]
    error: Option<ErrorDetail<'a>>,
}

impl Event<'_> {
    fn kind(&self) -> &str {
        self.kind.as_ref().map_or("", Text::as_str)
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    model: Option<Text<'a>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize, Clone)]
struct WireUsage {
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_creation_input_tokens: Option<i64>,
    cache_read_input_tokens: Option<i64>,
    output_tokens_details: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    text: Option<Text<'a>>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    input: Option<Json>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    text: Option<Text<'a>>,
    #[serde(borrow)]
    partial_json: Option<Text<'a>>,
    #[serde(borrow)]
    stop_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    message: Option<Text<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(translator: &mut AnthropicToOpenAI, input: &str) -> String {
        let mut out = Vec::new();
        for byte in input.as_bytes() {
            translator.feed(std::slice::from_ref(byte), &mut out);
        }
        StreamTranslate::finish(translator, &mut out);
        String::from_utf8(out).unwrap()
    }

    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":2,\"output_tokens\":1}}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hé\\n\"}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn chunk(delta: &str, finish: &str) -> String {
        format!(
            "data: {{\"id\":\"msg_1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"claude-x\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
        )
    }

    #[test]
    fn a_stream_becomes_chunks_and_its_capture() {
        let mut translator = AnthropicToOpenAI::new("asked", true, None).with_created(7);
        let out = translated(&mut translator, STREAM);
        let expected = [
            chunk(r#"{"role":"assistant","content":""}"#, "null"),
            ": ping\n\n".to_owned(),
            chunk(r#"{"content":"Hé\n"}"#, "null"),
            chunk(
                r#"{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get","arguments":""}}]}"#,
                "null",
            ),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}"#, "null"),
            chunk("{}", "\"tool_calls\""),
            "data: {\"id\":\"msg_1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"claude-x\",\
             \"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19,\
             \"prompt_tokens_details\":{\"cached_tokens\":2,\"cache_write_tokens\":0},\
             \"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"
                .to_owned(),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        assert_eq!(out, expected);
        let capture = translator.capture();
        assert_eq!(capture.content, "Hé\n");
        assert_eq!(capture.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(capture.chunk_count, 8);
        assert!(capture.completed && capture.ttft_ms.is_some());
        assert_eq!(capture.usage.map(|u| u.total_tokens), Some(19));
        assert!(!capture.error_before_output);
    }

    #[test]
    fn the_json_tool_streams_as_content_and_the_reason_is_stop() {
        let input = concat!(
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n",
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"json_out\",\"input\":{}}}\n\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n\n",
        );
        let mut translator = AnthropicToOpenAI::new("c", false, Some("json_out"));
        let out = translated(&mut translator, input);
        assert!(out.contains(r#""delta":{"content":"{}"}"#));
        assert!(out.ends_with("\"finish_reason\":\"stop\"}]}\n\n"));
        assert_eq!(translator.capture().content, "{}");
        assert!(!translator.capture().completed, "no message_stop");
    }

    #[test]
    fn an_error_first_is_raised_and_one_later_is_relayed() {
        let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n";
        let mut first = AnthropicToOpenAI::new("c", false, None);
        let out = translated(&mut first, error);
        assert_eq!(
            out,
            "data: {\"error\":{\"message\":\"overloaded_error: busy\",\"type\":\"api_error\",\"code\":\"PROVIDER_ERROR\",\"param\":null}}\n\n"
        );
        assert!(first.capture().error_before_output);
        assert_eq!(
            first.capture().error_type.as_deref(),
            Some("overloaded_error")
        );
        let mut later = AnthropicToOpenAI::new("c", false, None);
        translated(
            &mut later,
            &format!("{}{error}", &STREAM[..STREAM.find("\n\n").unwrap() + 2]),
        );
        assert!(!later.capture().error_before_output);
        assert_eq!(
            later.capture().error.as_deref(),
            Some("overloaded_error: busy")
        );
    }

    #[test]
    fn tool_input_given_at_the_start_keeps_its_key_order() {
        let input = "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{\"z\": 1, \"a\": [\"x\"]}}}\n\n";
        let mut translator = AnthropicToOpenAI::new("c", false, None);
        let out = translated(&mut translator, input);
        assert!(
            out.contains(r#""arguments":"{\"z\":1,\"a\":[\"x\"]}""#),
            "{out}"
        );
    }
}
