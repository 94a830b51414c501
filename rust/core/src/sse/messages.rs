//! OpenAI chat-completion chunks written as Anthropic Messages events, for `/v1/messages`
//! answered by a provider that does not speak Anthropic's format: the native twin of
//! `providers/bridge/stream.py`, byte for byte.
//!
//! `message_start` first; text and each tool call get a content block of their own
//! (`content_block_start`, deltas, `content_block_stop`), numbered in order; `[DONE]` (after
//! the usage chunk) closes the open block and sends `message_delta` with the stop reason and
//! usage, then `message_stop`. An error chunk becomes an `error` event and ends the stream.

use serde::Deserialize;

use super::json::{push_int, push_json_str, Text};
use super::SseParser;

/// The message a stream ended with when the provider just stopped.
pub const CUT_SHORT: &str = "the provider ended the stream early";

/// Anthropic's error types, which an OpenAI error chunk's `type` may name as it is.
const ERROR_TYPES: [&str; 10] = [
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

/// OpenAI usage as the writer keeps it.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    prompt: i64,
    completion: i64,
    cached: i64,
    cache_write: i64,
}

pub struct MessagesWriter {
    parser: SseParser,
    model: String,
    message_id: String,
    finish: Option<String>,
    usage: Option<Usage>,
    ended: bool,
    /// Content blocks started so far.
    blocks: i64,
    /// The block receiving deltas, until another starts.
    open: Option<i64>,
    text_block: Option<i64>,
    /// OpenAI tool call index -> block index.
    tool_blocks: Vec<(i64, i64)>,
}

impl MessagesWriter {
    /// `message_id` is used as it is when it starts with `msg_`, else with that prefix.
    pub fn new(model: &str, message_id: &str) -> Self {
        let message_id = if message_id.starts_with("msg_") {
            message_id.to_owned()
        } else {
            format!("msg_{message_id}")
        };
        Self {
            parser: SseParser::new(),
            model: model.to_owned(),
            message_id,
            finish: None,
            usage: None,
            ended: false,
            blocks: 0,
            open: None,
            text_block: None,
            tool_blocks: Vec::new(),
        }
    }

    /// Whether the stream has ended: finished, or failed with an error event.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// `message_start`: what goes out before the first chunk.
    pub fn start(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":",
        );
        push_json_str(out, &self.message_id);
        out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_json_str(out, &self.model);
        out.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\
              \"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n",
        );
    }

    /// OpenAI SSE bytes, in any pieces.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut datas = Vec::new();
        self.parser.feed_blocks(chunk, |_, event| {
            if let Some(event) = event {
                datas.push(event.data.to_owned());
            }
        });
        for data in datas {
            self.on(&data, out);
        }
    }

    /// The end of the chunk stream: the closing events of one that finished; of one that
    /// did not, with `cut`, an error event (without it, nothing: the caller ends it).
    pub fn finish(&mut self, out: &mut Vec<u8>, cut: bool) {
        let mut datas = Vec::new();
        self.parser.finish_blocks(|_, event| {
            if let Some(event) = event {
                datas.push(event.data.to_owned());
            }
        });
        for data in datas {
            self.on(&data, out);
        }
        if self.ended {
            return;
        }
        if self.finish.is_some() {
            self.complete(out);
        } else if cut {
            self.fail("api_error", CUT_SHORT, out);
        }
    }

    fn on(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if data.trim() == "[DONE]" {
            self.complete(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(data) else {
            return; // not a chunk (a comment, a vendor extension): nothing to say
        };
        if let Some(error) = chunk.error {
            let kind = error
                .kind
                .as_ref()
                .map(Text::as_str)
                .filter(|kind| ERROR_TYPES.contains(kind))
                .unwrap_or("api_error");
            self.fail(kind, error.message.as_ref().map_or("", Text::as_str), out);
            return;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            self.choice(choice, out);
        }
    }

    fn choice(&mut self, choice: Choice<'_>, out: &mut Vec<u8>) {
        if let Some(content) = choice.delta.content.as_ref().map(Text::as_str) {
            if !content.is_empty() {
                self.text(content, out);
            }
        }
        for call in choice.delta.tool_calls.unwrap_or_default() {
            self.tool(call, out);
        }
        if let Some(finish) = choice.finish_reason {
            self.finish = Some(finish.0.into_owned());
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let block = match self.text_block {
            Some(block) if self.open == Some(block) => block,
            _ => {
                let block = self.start_block(out, |out| {
                    out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}");
                });
                self.text_block = Some(block);
                block
            }
        };
        self.delta(block, out, |out| {
            out.extend_from_slice(b"{\"type\":\"text_delta\",\"text\":");
            push_json_str(out, text);
            out.push(b'}');
        });
    }

    fn tool(&mut self, call: ToolCallDelta<'_>, out: &mut Vec<u8>) {
        let function = call.function.unwrap_or_default();
        let known = self
            .tool_blocks
            .iter()
            .find(|(index, _)| *index == call.index)
            .map(|(_, block)| *block);
        let block = match known {
            Some(block) => block,
            None => {
                let id = call.id.as_ref().map_or("", Text::as_str);
                let name = function.name.as_ref().map_or("", Text::as_str);
                let block = self.start_block(out, |out| {
                    out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                    push_json_str(out, id);
                    out.extend_from_slice(b",\"name\":");
                    push_json_str(out, name);
                    out.extend_from_slice(b",\"input\":{}}");
                });
                self.tool_blocks.push((call.index, block));
                block
            }
        };
        let arguments = function.arguments.as_ref().map_or("", Text::as_str);
        if !arguments.is_empty() {
            self.delta(block, out, |out| {
                out.extend_from_slice(b"{\"type\":\"input_json_delta\",\"partial_json\":");
                push_json_str(out, arguments);
                out.push(b'}');
            });
        }
    }

    fn start_block(&mut self, out: &mut Vec<u8>, content_block: impl FnOnce(&mut Vec<u8>)) -> i64 {
        self.stop_open_block(out);
        let index = self.blocks;
        self.open = Some(index);
        self.blocks += 1;
        out.extend_from_slice(
            b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":",
        );
        push_int(out, index);
        out.extend_from_slice(b",\"content_block\":");
        content_block(out);
        out.extend_from_slice(b"}\n\n");
        index
    }

    fn delta(&self, index: i64, out: &mut Vec<u8>, delta: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        push_int(out, index);
        out.extend_from_slice(b",\"delta\":");
        delta(out);
        out.extend_from_slice(b"}\n\n");
    }

    fn stop_open_block(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.open.take() {
            out.extend_from_slice(
                b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":",
            );
            push_int(out, index);
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.ended = true;
        self.stop_open_block(out);
        out.extend_from_slice(
            b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":",
        );
        push_json_str(out, stop_reason(self.finish.as_deref()));
        out.extend_from_slice(b",\"stop_sequence\":null},\"usage\":");
        match self.usage {
            None => out.extend_from_slice(b"{\"input_tokens\":0,\"output_tokens\":0}"),
            Some(usage) => {
                let uncached = usage.prompt - usage.cached - usage.cache_write;
                out.extend_from_slice(b"{\"input_tokens\":");
                push_int(out, uncached.max(0));
                out.extend_from_slice(b",\"cache_creation_input_tokens\":");
                push_int(out, usage.cache_write);
                out.extend_from_slice(b",\"cache_read_input_tokens\":");
                push_int(out, usage.cached);
                out.extend_from_slice(b",\"output_tokens\":");
                push_int(out, usage.completion);
                out.push(b'}');
            }
        }
        out.extend_from_slice(b"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }

    fn fail(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        self.ended = true;
        error_event(out, kind, message);
    }
}

/// An Anthropic stream `error` event; the anthropic SDKs raise it.
pub(crate) fn error_event(out: &mut Vec<u8>, kind: &str, message: &str) {
    out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":");
    push_json_str(out, kind);
    out.extend_from_slice(b",\"message\":");
    push_json_str(out, message);
    out.extend_from_slice(b"}}\n\n");
}

/// OpenAI finish_reason -> Anthropic stop_reason.
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish.unwrap_or("stop") {
        "" | "stop" => "end_turn",
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

// The chunk shapes, as far as the writer reads them; a field of the wrong type makes the
// whole chunk unreadable (it says nothing), as on the Python side.

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    usage: Option<ChunkUsage>,
    #[serde(borrow)]
    error: Option<ChunkError<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Delta<'a>,
    #[serde(borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Text<'a>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: i64,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize, Default)]
struct FunctionDelta<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    arguments: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
}

impl From<ChunkUsage> for Usage {
    fn from(usage: ChunkUsage) -> Self {
        let details = usage.prompt_tokens_details;
        Self {
            prompt: usage.prompt_tokens,
            completion: usage.completion_tokens,
            cached: details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write: details.and_then(|d| d.cache_write_tokens).unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct ChunkError<'a> {
    #[serde(borrow)]
    message: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(input: &str) -> String {
        let mut writer = MessagesWriter::new("claude-x", "abc");
        let mut out = Vec::new();
        writer.start(&mut out);
        writer.feed(input.as_bytes(), &mut out);
        writer.finish(&mut out, true);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_then_tool_call_become_blocks_and_the_end_carries_usage() {
        let input = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
            "data: [DONE]\n\n",
        );
        let expected = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_abc\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":\"f\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\"\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":6,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":4,\"output_tokens\":3}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        assert_eq!(written(input), expected);
    }

    #[test]
    fn an_error_chunk_ends_the_stream_with_an_error_event() {
        let out = written(
            "data: {\"error\":{\"message\":\"boom\",\"type\":\"overloaded_error\"}}\n\ndata: [DONE]\n\n",
        );
        assert!(out.ends_with(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"boom\"}}\n\n"
        ));
        assert!(!out.contains("message_stop"));
    }

    #[test]
    fn a_stream_cut_short_ends_with_an_error_only_when_asked() {
        let out = written("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n");
        assert!(out.ends_with("\"message\":\"the provider ended the stream early\"}}\n\n"));
        let mut writer = MessagesWriter::new("m", "msg_1");
        let mut left = Vec::new();
        writer.feed(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n",
            &mut left,
        );
        let mut tail = Vec::new();
        writer.finish(&mut tail, false);
        assert!(tail.is_empty());
        assert!(!writer.ended());
    }
}
