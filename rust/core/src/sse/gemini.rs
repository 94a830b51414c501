//! Gemini `streamGenerateContent?alt=sse` events translated into OpenAI chunks: the native
//! twin of `providers/gemini/stream.py` (`StreamTranslator`, `BareErrorWatch`), byte for
//! byte.
//!
//! Gemini streams `data: <GenerateContentResponse>` events and simply ends: no sentinel,
//! whole function calls in one event, usage on (at least) the last event. Finish reasons and
//! usage are collected on the way and written once the upstream ends: one finish chunk per
//! choice, the usage chunk when the client asked for it, then `data: [DONE]`. A stream that
//! ends without any finish reason was cut short and ends with an error event instead. An
//! error object in the stream (an SSE event, or a bare JSON line) is an error event too.

use ring::digest::{digest, SHA256};
use serde::Deserialize;

use super::json::{
    provider_error_event, push_chunk_head, push_int, push_json_str, push_opt_str, push_usage_rest,
    unix_now, Json, Text,
};
use super::openai::push_capped;
use super::translate::StreamTranslate;
use super::{Clock, SseParser, Stopwatch, StreamCapture, StreamUsage, DEFAULT_MAX_CAPTURE_BYTES};

const DONE: &[u8] = b"data: [DONE]\n\n";
const SIGNATURE_MARK: &str = "__thought__";
/// No error object is longer than this: a longer bare line is not read as one.
const MAX_BARE_LINE: usize = 64 * 1024;

/// Gemini finish reason -> OpenAI's; a candidate that called tools and stopped called them.
fn finish_reason(gemini: Option<&str>, called_tools: bool) -> &'static str {
    let mapped = match gemini.unwrap_or("STOP") {
        "" | "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        _ => "stop",
    };
    if called_tools && mapped == "stop" {
        "tool_calls"
    } else {
        mapped
    }
}

/// The error a stream ended with: Gemini's `{code, message, status}`.
#[derive(Debug, Clone, Default)]
struct StreamError {
    code: i64,
    message: String,
    status: String,
}

/// One choice's state: its Gemini finish reason so far, and the tool calls it sent.
#[derive(Debug, Clone)]
struct ChoiceState {
    index: i64,
    finish: Option<String>,
    calls: i64,
}

pub struct GeminiToOpenAI<C: Clock = Stopwatch> {
    parser: SseParser,
    bare: BareErrorWatch,
    clock: C,
    capture: StreamCapture,
    max_capture_bytes: usize,
    model: String,
    include_usage: bool,
    /// The id when the stream gives none (`chatcmpl-` is put before it).
    fallback_id: String,
    id: String,
    created: i64,
    usage: Option<StreamUsage>,
    error: Option<StreamError>,
    /// Chunks written (error events are not chunks).
    chunks: u64,
    /// By choice index, in the order first seen.
    choices: Vec<ChoiceState>,
    ended: bool,
}

impl GeminiToOpenAI {
    pub fn new(model: &str, include_usage: bool, fallback_id: &str) -> Self {
        Self::with_clock(model, include_usage, fallback_id, Stopwatch::start())
    }
}

impl<C: Clock> GeminiToOpenAI<C> {
    pub fn with_clock(model: &str, include_usage: bool, fallback_id: &str, clock: C) -> Self {
        Self {
            parser: SseParser::new(),
            bare: BareErrorWatch::default(),
            clock,
            capture: StreamCapture::default(),
            max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
            model: model.to_owned(),
            include_usage,
            fallback_id: fallback_id.to_owned(),
            id: String::new(),
            created: unix_now(),
            usage: None,
            error: None,
            chunks: 0,
            choices: Vec::new(),
            ended: false,
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

    pub fn with_created(mut self, created: i64) -> Self {
        self.created = created;
        self
    }

    fn finished(&self) -> bool {
        self.choices.iter().any(|choice| choice.finish.is_some())
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.error.is_some() {
            return;
        }
        let Ok(response) = serde_json::from_str::<Response<'_>>(data) else {
            return; // not a JSON event: nothing a client could use
        };
        if let Some(error) = response.error {
            self.fail(error.into(), out);
            return;
        }
        if self.id.is_empty() {
            let id = response
                .response_id
                .as_ref()
                .map(Text::as_str)
                .filter(|id| !id.is_empty())
                .unwrap_or(&self.fallback_id);
            self.id = format!("chatcmpl-{id}");
            if let Some(version) = response.model_version.as_ref().map(Text::as_str) {
                if !version.is_empty() {
                    self.model = version.to_owned();
                }
            }
        }
        if let Some(meta) = response.usage_metadata {
            self.usage = Some(meta.usage());
        }
        let blocked = response.candidates.is_empty()
            && response.prompt_feedback.as_ref().is_some_and(|feedback| {
                feedback
                    .block_reason
                    .as_ref()
                    .is_some_and(|r| !r.as_str().is_empty())
            });
        for candidate in response.candidates {
            self.candidate(candidate, out);
        }
        if blocked && self.slot(0).is_none() {
            // The prompt itself was blocked.
            self.choices.push(ChoiceState {
                index: 0,
                finish: Some("SAFETY".to_owned()),
                calls: 0,
            });
        }
    }

    fn slot(&self, index: i64) -> Option<usize> {
        self.choices.iter().position(|choice| choice.index == index)
    }

    fn candidate(&mut self, candidate: Candidate<'_>, out: &mut Vec<u8>) {
        let index = candidate.index;
        let reason = candidate.finish_reason.map(|reason| reason.0.into_owned());
        let slot = match self.slot(index) {
            Some(slot) => {
                if reason.is_some() {
                    self.choices[slot].finish = reason;
                }
                slot
            }
            None => {
                self.choices.push(ChoiceState {
                    index,
                    finish: reason,
                    calls: 0,
                });
                self.chunk(out, index, None, |out| {
                    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"}");
                });
                self.choices.len() - 1
            }
        };
        let parts = candidate
            .content
            .map(|content| content.parts)
            .unwrap_or_default();
        for part in parts.into_iter().filter(|part| !part.thought) {
            if let Some(text) = part
                .text
                .as_ref()
                .map(Text::as_str)
                .filter(|t| !t.is_empty())
            {
                if index == 0 {
                    let left = self
                        .max_capture_bytes
                        .saturating_sub(self.capture.content.len());
                    self.capture.truncated |= push_capped(&mut self.capture.content, text, left);
                    self.answered();
                }
                self.chunk(out, index, None, |out| {
                    out.extend_from_slice(b"{\"content\":");
                    push_json_str(out, text);
                    out.push(b'}');
                });
            } else if let Some(call) = &part.function_call {
                let position = self.choices[slot].calls;
                self.choices[slot].calls += 1;
                if index == 0 {
                    self.answered();
                }
                let signature = part.thought_signature.as_ref().map(Text::as_str);
                let call_id = match call
                    .id
                    .as_ref()
                    .map(Text::as_str)
                    .filter(|id| !id.is_empty())
                {
                    Some(id) => id.to_owned(),
                    None => make_call_id(position, call.name(), call.args.as_ref(), signature),
                };
                let mut arguments = Vec::new();
                match &call.args {
                    Some(args) if args.truthy() => args.write(&mut arguments, false),
                    _ => arguments.extend_from_slice(b"{}"),
                }
                self.chunk(out, index, None, |out| {
                    out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                    push_int(out, position);
                    out.extend_from_slice(b",\"id\":");
                    push_json_str(out, &call_id);
                    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                    push_json_str(out, call.name());
                    out.extend_from_slice(b",\"arguments\":");
                    push_json_str(out, std::str::from_utf8(&arguments).unwrap_or_default());
                    out.extend_from_slice(b"}}]}");
                });
            }
        }
    }

    fn answered(&mut self) {
        if self.capture.ttft_ms.is_none() {
            self.capture.ttft_ms = Some(self.clock.elapsed_ms());
        }
    }

    fn fail(&mut self, error: StreamError, out: &mut Vec<u8>) {
        let told = if error.message.is_empty() {
            &error.status
        } else {
            &error.message
        };
        provider_error_event(out, &format!("gemini: {told}"));
        self.error = Some(error);
    }

    /// What follows the last upstream event: finish chunks, usage, `[DONE]`; or, for a
    /// stream cut short, an error event.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.error.is_some() {
            return;
        }
        if !self.finished() {
            let error = StreamError {
                message: "the stream ended before it finished".to_owned(),
                ..StreamError::default()
            };
            self.fail(error, out);
            return;
        }
        let mut choices = self.choices.clone();
        choices.sort_by_key(|choice| choice.index);
        for choice in choices {
            let finish = finish_reason(choice.finish.as_deref(), choice.calls > 0);
            self.chunk(out, choice.index, Some(finish), |out| {
                out.extend_from_slice(b"{}")
            });
        }
        if let (true, Some(usage)) = (self.include_usage, self.usage) {
            self.chunks += 1;
            self.head(out);
            push_usage_rest(out, &usage, false);
        }
        out.extend_from_slice(DONE);
    }

    fn head(&self, out: &mut Vec<u8>) {
        push_chunk_head(out, &self.id, self.created, &self.model);
    }

    fn chunk(
        &mut self,
        out: &mut Vec<u8>,
        index: i64,
        finish: Option<&str>,
        delta: impl FnOnce(&mut Vec<u8>),
    ) {
        self.chunks += 1;
        self.head(out);
        out.extend_from_slice(b",\"choices\":[{\"index\":");
        push_int(out, index);
        out.extend_from_slice(b",\"delta\":");
        delta(out);
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        push_opt_str(out, finish);
        out.extend_from_slice(b"}]}\n\n");
    }

    fn feed_events(&mut self, chunk: Option<&[u8]>, out: &mut Vec<u8>) {
        let datas = self.parser.datas(chunk);
        if self.parser.oversized() {
            self.capture.oversized = true;
        }
        for data in datas {
            self.event(&data, out);
        }
    }

    /// The capture as the log reads it, from the translation's state.
    fn sync_capture(&mut self) {
        let capture = &mut self.capture;
        capture.chunk_count = self.chunks;
        capture.usage = self.usage;
        capture.response_id = (!self.id.is_empty()).then(|| self.id.clone());
        capture.model = Some(self.model.clone());
        capture.finish_reason = self
            .choices
            .iter()
            .find(|choice| choice.index == 0)
            .and_then(|choice| {
                let reason = choice.finish.as_deref()?;
                Some(finish_reason(Some(reason), choice.calls > 0).to_owned())
            });
        capture.completed = self.error.is_none() && self.choices.iter().any(|c| c.finish.is_some());
        if let Some(error) = &self.error {
            let told = if error.message.is_empty() {
                &error.status
            } else {
                &error.message
            };
            capture.error = Some(told.clone());
            capture.error_type = Some(error.status.clone());
            capture.error_code = error.code.max(0) as u64;
            capture.error_before_output = self.chunks == 0;
        }
    }
}

impl<C: Clock + Send> StreamTranslate for GeminiToOpenAI<C> {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.bare.feed(chunk);
        self.feed_events(Some(chunk), out);
        self.sync_capture();
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.feed_events(None, out);
        self.bare.finish();
        match self.bare.error.take() {
            Some(error) => self.fail(error, out),
            None => self.end(out),
        }
        self.sync_capture();
    }

    fn capture(&self) -> &StreamCapture {
        &self.capture
    }

    fn max_event_bytes(&self) -> usize {
        self.parser.max_event_bytes()
    }
}

/// An id for a tool call Gemini gave none: from the call itself, so the same answer always
/// gets the same ids; a thought signature rides inside it (`providers/gemini/call_ids.py`).
fn make_call_id(position: i64, name: &str, args: Option<&Json>, signature: Option<&str>) -> String {
    let mut hashed = format!("{position}\0{name}\0").into_bytes();
    match args {
        Some(args) if args.truthy() => args.write(&mut hashed, true),
        _ => hashed.extend_from_slice(b"{}"),
    }
    let digest = digest(&SHA256, &hashed);
    let hex: String = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let call_id = format!("call_{}", &hex[..24]);
    match signature.filter(|signature| !signature.is_empty()) {
        Some(signature) => format!("{call_id}{SIGNATURE_MARK}{signature}"),
        None => call_id,
    }
}

/// Gemini may end a stream with a bare `{"error": ...}` JSON line, which is no SSE event
/// (SSE lines start with a field name, never `{`). Lines starting with `{` are collected on
/// the side, across reads, and read as an error object.
#[derive(Debug)]
struct BareErrorWatch {
    line: Option<Vec<u8>>,
    at_line_start: bool,
    error: Option<StreamError>,
}

impl Default for BareErrorWatch {
    fn default() -> Self {
        Self {
            line: None,
            at_line_start: true,
            error: None,
        }
    }
}

impl BareErrorWatch {
    fn feed(&mut self, chunk: &[u8]) {
        let mut position = if self.line.is_some() {
            self.collect(chunk, 0)
        } else {
            0
        };
        while self.error.is_none() {
            let Some(begin) = self.bare_line_start(chunk, position) else {
                break;
            };
            self.line = Some(Vec::new());
            position = self.collect(chunk, begin);
        }
        self.at_line_start = matches!(chunk.last(), Some(b'\n' | b'\r'));
    }

    fn finish(&mut self) {
        if self.error.is_some() {
            return;
        }
        let Some(line) = self.line.take() else { return };
        self.error = serde_json::from_slice::<ErrorBody<'_>>(&line)
            .ok()
            .and_then(|body| body.error)
            .map(StreamError::from);
    }

    fn bare_line_start(&self, chunk: &[u8], position: usize) -> Option<usize> {
        if position == 0 && self.at_line_start && chunk.first() == Some(&b'{') {
            return Some(0);
        }
        let rest = chunk.get(position..)?;
        memchr::memmem::find(rest, b"\n{").map(|found| position + found + 1)
    }

    /// Adds the line's bytes from `begin`; returns where scanning goes on.
    fn collect(&mut self, chunk: &[u8], begin: usize) -> usize {
        let end = memchr::memchr(b'\n', &chunk[begin..]).map(|at| begin + at);
        let Some(line) = self.line.as_mut() else {
            return chunk.len();
        };
        line.extend_from_slice(&chunk[begin..end.unwrap_or(chunk.len())]);
        if let Some(end) = end {
            self.finish();
            return end;
        }
        if line.len() > MAX_BARE_LINE {
            self.line = None;
        }
        chunk.len()
    }
}

// The response shapes, as far as the translator reads them (Gemini's camelCase names).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    #[serde(default, borrow)]
    candidates: Vec<Candidate<'a>>,
    usage_metadata: Option<UsageMetadata>,
    #[serde(borrow)]
    prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(borrow)]
    model_version: Option<Text<'a>>,
    #[serde(borrow)]
    response_id: Option<Text<'a>>,
    #[serde(borrow)]
    error: Option<WireError<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow)]
    content: Option<Content<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Text<'a>>,
    #[serde(default)]
    index: i64,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow)]
    text: Option<Text<'a>>,
    #[serde(default)]
    thought: bool,
    #[serde(borrow)]
    function_call: Option<FunctionCall<'a>>,
    #[serde(borrow)]
    thought_signature: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(default, deserialize_with = "object_or_null")]
    args: Option<Json>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
}

impl FunctionCall<'_> {
    fn name(&self) -> &str {
        self.name.as_ref().map_or("", Text::as_str)
    }
}

/// `args` is an object or null; anything else makes the event unreadable.
fn object_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Json>, D::Error> {
    match Json::deserialize(deserializer)? {
        Json::Null => Ok(None),
        value @ Json::Object(_) => Ok(Some(value)),
        _ => Err(serde::de::Error::custom("args must be an object")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: i64,
    #[serde(default)]
    candidates_token_count: i64,
    #[serde(default)]
    total_token_count: i64,
    #[serde(default)]
    cached_content_token_count: i64,
    #[serde(default)]
    thoughts_token_count: i64,
    #[serde(default)]
    tool_use_prompt_token_count: i64,
}

impl UsageMetadata {
    /// OpenAI's convention: thinking tokens are completion (and reasoning) tokens, tool-use
    /// prompt tokens prompt tokens.
    fn usage(&self) -> StreamUsage {
        let prompt = self.prompt_token_count + self.tool_use_prompt_token_count;
        let completion = self.candidates_token_count + self.thoughts_token_count;
        let total = if self.total_token_count != 0 {
            self.total_token_count
        } else {
            prompt + completion
        };
        let count = |value: i64| value.max(0) as u64;
        StreamUsage {
            prompt_tokens: count(prompt),
            completion_tokens: count(completion),
            total_tokens: count(total),
            cached_tokens: count(self.cached_content_token_count),
            reasoning_tokens: count(self.thoughts_token_count),
            cache_write_tokens: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback<'a> {
    #[serde(borrow)]
    block_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct WireError<'a> {
    #[serde(default)]
    code: i64,
    #[serde(borrow)]
    message: Option<Text<'a>>,
    #[serde(borrow)]
    status: Option<Text<'a>>,
}

impl From<WireError<'_>> for StreamError {
    fn from(error: WireError<'_>) -> Self {
        Self {
            code: error.code,
            message: error.message.map_or_else(String::new, |m| m.0.into_owned()),
            status: error.status.map_or_else(String::new, |s| s.0.into_owned()),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    error: Option<WireError<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(translator: &mut GeminiToOpenAI, input: &str) -> String {
        let mut out = Vec::new();
        for piece in input.as_bytes().chunks(7) {
            StreamTranslate::feed(translator, piece, &mut out);
        }
        StreamTranslate::finish(translator, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn chunk(delta: &str, finish: &str) -> String {
        format!(
            "data: {{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"gemini-x\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
        )
    }

    #[test]
    fn text_and_a_call_become_chunks_finished_at_the_end() {
        let input = concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"},{\"text\":\"hm\",\"thought\":true}],\"role\":\"model\"}}],\"modelVersion\":\"gemini-x\",\"responseId\":\"r1\"}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get\",\"args\":{\"b\":1,\"a\":2}}}]},\"finishReason\":\"STOP\"}],\
             \"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"totalTokenCount\":6}}\r\n\r\n",
        );
        let mut translator = GeminiToOpenAI::new("asked", true, "unused").with_created(5);
        let out = translated(&mut translator, input);
        let id = make_call_id(
            0,
            "get",
            serde_json::from_str::<Json>(r#"{"b":1,"a":2}"#)
                .ok()
                .as_ref(),
            None,
        );
        let expected = [
            chunk(r#"{"role":"assistant","content":""}"#, "null"),
            chunk(r#"{"content":"Hi"}"#, "null"),
            chunk(
                &format!(r#"{{"tool_calls":[{{"index":0,"id":"{id}","type":"function","function":{{"name":"get","arguments":"{{\"b\":1,\"a\":2}}"}}}}]}}"#),
                "null",
            ),
            chunk("{}", "\"tool_calls\""),
            "data: {\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"gemini-x\",\
             \"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6,\
             \"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"
                .to_owned(),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        assert_eq!(out, expected);
        let capture = translator.capture();
        assert_eq!(capture.content, "Hi");
        assert_eq!(capture.finish_reason.as_deref(), Some("tool_calls"));
        assert!(capture.completed);
        assert_eq!(capture.chunk_count, 5);
    }

    #[test]
    fn call_ids_hash_the_sorted_arguments() {
        // sha256("0\0get\0{\"a\":2,\"b\":1}"), as the Python side computes it.
        let args = serde_json::from_str::<Json>(r#"{"b":1,"a":2}"#).unwrap();
        let id = make_call_id(0, "get", Some(&args), Some("sig"));
        assert!(
            id.starts_with("call_") && id.ends_with("__thought__sig"),
            "{id}"
        );
        assert_eq!(id.len(), "call_".len() + 24 + "__thought__sig".len());
    }

    #[test]
    fn a_stream_without_a_finish_reason_ends_with_an_error() {
        let input = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}],\"responseId\":\"r1\"}\n\n";
        let mut translator = GeminiToOpenAI::new("gemini-x", false, "x").with_created(5);
        let out = translated(&mut translator, input);
        assert!(out.ends_with(
            "data: {\"error\":{\"message\":\"gemini: the stream ended before it finished\",\"type\":\"api_error\",\"code\":\"PROVIDER_ERROR\",\"param\":null}}\n\n"
        ));
        let capture = translator.capture();
        assert!(!capture.completed && !capture.error_before_output);
        assert_eq!(
            capture.error.as_deref(),
            Some("the stream ended before it finished")
        );
    }

    #[test]
    fn a_bare_error_line_before_anything_is_raised() {
        let input = "{\"error\": {\"code\": 429, \"message\": \"slow down\", \"status\": \"RESOURCE_EXHAUSTED\"}}\n";
        let mut translator = GeminiToOpenAI::new("gemini-x", false, "x");
        let out = translated(&mut translator, input);
        assert!(out.contains("gemini: slow down"));
        let capture = translator.capture();
        assert!(capture.error_before_output);
        assert_eq!(capture.error_code, 429);
    }
}
