//! A chat-completions body into the few facts the pipeline needs, checked once at the door.
//!
//! The body is read in one borrowed pass: nothing the gateway does not look at is built, and
//! every wrong field is reported with its dotted path (`messages.2.role`) and a sentence a
//! user understands. Nesting is limited by the parser's own `max_depth`, so a hostile body
//! cannot make anything downstream (the cache keyer, the provider translators) recurse deeply.

mod chat;
mod visit;

use serde::de::DeserializeSeed;

use self::chat::{BodyFacts, BodyReader, Messages, StreamOptions};
use self::visit::{Complaint, Depth, Kind, OrKind, Problem, Reader, Scalar};
use crate::{Error, Result};

/// The deepest nesting a parser may be configured to accept. serde_json stops at 128 levels
/// as a stack guard of its own; ours stays clear of it, so the configured limit is the one
/// users see.
pub const MAX_SUPPORTED_DEPTH: usize = 100;

/// The facts of a chat-completions body that the pipeline needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    pub message_count: usize,
    /// The text parts of the last message whose role is "user", joined by "\n"; `None` when
    /// no message is from the user, empty when that message has no text.
    pub last_user_text: Option<String>,
    pub user: Option<String>,
    /// A non-empty `tools` (or legacy `functions`) array.
    pub has_tools: bool,
}

/// Parses chat-completions bodies. Built once with its limits, used for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestParser {
    max_body_bytes: usize,
    max_depth: usize,
}

impl RequestParser {
    /// # Panics
    ///
    /// If `max_depth` is 0 or over [`MAX_SUPPORTED_DEPTH`]: limits are settings, checked
    /// when the settings are loaded.
    pub fn new(max_body_bytes: usize, max_depth: usize) -> Self {
        assert!(
            (1..=MAX_SUPPORTED_DEPTH).contains(&max_depth),
            "max_depth must be between 1 and {MAX_SUPPORTED_DEPTH}"
        );
        Self {
            max_body_bytes,
            max_depth,
        }
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    pub fn parse(&self, body: &[u8]) -> Result<ChatRequest> {
        if body.len() > self.max_body_bytes {
            return Err(Error::PayloadTooLarge {
                size: body.len(),
                limit: self.max_body_bytes,
            });
        }
        judge(read_body(body, self.max_depth)?)
    }
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new(10 * 1024 * 1024, 64)
    }
}

fn read_body(body: &[u8], max_depth: usize) -> Result<BodyFacts<'_>> {
    let facts = read_facts(body, max_depth, false)?;
    let text_dropped = matches!(&facts.messages, Some(Ok(messages)) if messages.text_dropped);
    if text_dropped {
        // Rare: a repeated `role` key made a message the user's after its text was skipped.
        // Repeated keys read as the last one, as the providers read them.
        return read_facts(body, max_depth, true);
    }
    Ok(facts)
}

fn read_facts(body: &[u8], max_depth: usize, keep_all_text: bool) -> Result<BodyFacts<'_>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let read = Reader(BodyReader { keep_all_text }, Depth::root(max_depth))
        .deserialize(&mut deserializer)
        .and_then(|read| deserializer.end().map(|()| read))
        .map_err(json_error)?;
    read.map_err(|kind| {
        Error::invalid_json(format!("request body must be a JSON object, got {kind}"))
    })
}

/// serde_json's syntax messages already end with "at line L column C"; the only data errors
/// our readers raise are about nesting, which read well as they are.
fn json_error(err: serde_json::Error) -> Error {
    match err.classify() {
        serde_json::error::Category::Data => Error::invalid_json(err.to_string()),
        _ => Error::invalid_json(format!("request body is not valid JSON: {err}")),
    }
}

fn judge(facts: BodyFacts<'_>) -> Result<ChatRequest> {
    let model = judge_model(facts.model)?;
    let messages = judge_messages(facts.messages)?;
    let stream = optional_bool("stream", facts.stream)?;
    let include_usage = judge_stream_options(facts.stream_options)?;
    let user = optional_string("user", facts.user)?;
    let has_tools = non_empty_array("tools", facts.tools)?;
    let has_functions = non_empty_array("functions", facts.functions)?;
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        message_count: messages.count,
        last_user_text: messages.last_user_text.map(|parts| parts.join("\n")),
        user,
        has_tools: has_tools || has_functions,
    })
}

fn judge_model(model: Option<Scalar<'_>>) -> Result<String> {
    match model {
        None => Err(Problem::at("model", Complaint::Missing).into()),
        Some(Scalar::Str(name)) if name.is_empty() => {
            Err(Problem::at("model", Complaint::Empty).into())
        }
        Some(Scalar::Str(name)) => Ok(name.into_owned()),
        Some(other) => Err(Problem::wrong_type("model", "a string", other.kind()).into()),
    }
}

fn judge_messages(messages: Option<OrKind<Messages<'_>>>) -> Result<Messages<'_>> {
    let messages = match messages {
        None => return Err(Problem::at("messages", Complaint::Missing).into()),
        Some(Err(kind)) => return Err(Problem::wrong_type("messages", "an array", kind).into()),
        Some(Ok(messages)) => messages,
    };
    if let Some(problem) = messages.problem {
        return Err(problem.into());
    }
    if messages.count == 0 {
        return Err(Problem::at("messages", Complaint::Empty).into());
    }
    Ok(messages)
}

fn judge_stream_options(options: Option<OrKind<StreamOptions<'_>>>) -> Result<bool> {
    match options {
        None | Some(Err(Kind::Null)) => Ok(false),
        Some(Err(kind)) => Err(Problem::wrong_type("stream_options", "an object", kind).into()),
        Some(Ok(options)) => optional_bool("stream_options.include_usage", options.include_usage),
    }
}

/// Absent and null both mean false, as in the OpenAI API.
fn optional_bool(path: &str, value: Option<Scalar<'_>>) -> Result<bool> {
    match value {
        None | Some(Scalar::Other(Kind::Null)) => Ok(false),
        Some(Scalar::Bool(value)) => Ok(value),
        Some(other) => Err(Problem::wrong_type(path, "a boolean", other.kind()).into()),
    }
}

fn optional_string(path: &str, value: Option<Scalar<'_>>) -> Result<Option<String>> {
    match value {
        None | Some(Scalar::Other(Kind::Null)) => Ok(None),
        Some(Scalar::Str(value)) => Ok(Some(value.into_owned())),
        Some(other) => Err(Problem::wrong_type(path, "a string", other.kind()).into()),
    }
}

fn non_empty_array(path: &str, value: Option<OrKind<usize>>) -> Result<bool> {
    match value {
        None | Some(Err(Kind::Null)) => Ok(false),
        Some(Ok(len)) => Ok(len > 0),
        Some(Err(kind)) => Err(Problem::wrong_type(path, "an array", kind).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ChatRequest> {
        RequestParser::default().parse(body.as_bytes())
    }

    fn field_error(body: &str) -> (String, String) {
        match parse(body) {
            Err(Error::InvalidField { param, message }) => (param, message),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    fn json_error(body: &str) -> String {
        match parse(body) {
            Err(Error::InvalidJson { message }) => message,
            other => panic!("expected a JSON error, got {other:?}"),
        }
    }

    fn nested(depth: usize) -> String {
        // `depth` levels in all: the body object, the messages array, a message, then arrays.
        let inner = depth - 3;
        format!(
            r#"{{"model":"m","messages":[{{"role":"user","x":{}1{}}}]}}"#,
            "[".repeat(inner),
            "]".repeat(inner)
        )
    }

    #[test]
    fn reads_the_facts_of_a_simple_request() {
        let request = parse(
            r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},
                {"role":"user","content":"Hello"}],"stream":true,
                "stream_options":{"include_usage":true},"user":"u-1","temperature":0.2}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            ChatRequest {
                model: "gpt-4o".into(),
                stream: true,
                include_usage: true,
                message_count: 2,
                last_user_text: Some("Hello".into()),
                user: Some("u-1".into()),
                has_tools: false,
            }
        );
    }

    #[test]
    fn optional_fields_default_when_absent_or_null() {
        let request = parse(
            r#"{"model":"m","messages":[{"role":"assistant","content":null}],
                "stream":null,"stream_options":null,"user":null,"tools":null}"#,
        )
        .unwrap();
        assert!(!request.stream && !request.include_usage && !request.has_tools);
        assert_eq!(request.user, None);
        assert_eq!(request.last_user_text, None);
    }

    #[test]
    fn last_user_text_comes_from_the_last_user_message() {
        let request = parse(
            r#"{"model":"m","messages":[{"role":"user","content":"first"},
                {"role":"assistant","content":"reply"},{"role":"user","content":"second"},
                {"role":"assistant","content":[{"type":"text","text":"parts"}]},
                {"content":[{"type":"text","text":"role last"}],"role":"tool"}]}"#,
        )
        .unwrap();
        assert_eq!(request.last_user_text.as_deref(), Some("second"));
        assert_eq!(request.message_count, 5);
    }

    #[test]
    fn last_user_text_joins_text_parts_and_skips_other_parts() {
        let request = parse(
            r#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"text","text":"look at"},
                {"type":"image_url","image_url":{"url":"data:x"}},
                {"text":"this\nimage","type":"text"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            request.last_user_text.as_deref(),
            Some("look at\nthis\nimage")
        );
    }

    #[test]
    fn last_user_text_is_found_when_role_follows_content() {
        let request = parse(
            r#"{"model":"m","messages":[{"content":"Bonjour \u00e9","role":"user"},
                {"content":"ignored","role":"assistant"}]}"#,
        )
        .unwrap();
        assert_eq!(request.last_user_text.as_deref(), Some("Bonjour é"));
    }

    #[test]
    fn a_repeated_role_reads_as_the_last_one() {
        // As the providers read it, this message is the user's: its text must not hide from
        // whatever inspects the user's text.
        let hidden = parse(
            r#"{"model":"m","messages":[{"role":"assistant","content":"hidden","role":"user"},
                {"role":3,"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
                 "role":"user"}]}"#,
        )
        .unwrap();
        assert_eq!(hidden.last_user_text.as_deref(), Some("a\nb"));
        let first = parse(
            r#"{"model":"m","messages":[{"role":"system","content":"x\n","role":"user"},
                {"role":"user","content":"y","role":"assistant"}]}"#,
        )
        .unwrap();
        assert_eq!(first.last_user_text.as_deref(), Some("x\n"));
    }

    #[test]
    fn a_user_message_without_text_gives_empty_text() {
        let request = parse(
            r#"{"model":"m","messages":[{"role":"user","content":"old"},
                {"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(request.last_user_text.as_deref(), Some(""));
    }

    #[test]
    fn has_tools_needs_a_non_empty_tools_or_functions_array() {
        let body =
            |tools: &str| format!(r#"{{"model":"m","messages":[{{"role":"user"}}],{tools}}}"#);
        assert!(!parse(&body(r#""tools":[]"#)).unwrap().has_tools);
        assert!(
            parse(&body(r#""tools":[{"type":"function"}]"#))
                .unwrap()
                .has_tools
        );
        assert!(
            parse(&body(r#""functions":[{"name":"f"}]"#))
                .unwrap()
                .has_tools
        );
    }

    #[test]
    fn model_is_a_required_non_empty_string() {
        let missing = field_error(r#"{"messages":[{"role":"user"}]}"#);
        assert_eq!(missing, ("model".into(), "`model` is required".into()));
        let empty = field_error(r#"{"model":"","messages":[{"role":"user"}]}"#);
        assert_eq!(empty.1, "`model` must not be empty");
        let number = field_error(r#"{"model":4,"messages":[{"role":"user"}]}"#);
        assert_eq!(number.1, "`model` must be a string, got a number");
    }

    #[test]
    fn messages_must_be_a_non_empty_array_of_objects() {
        assert_eq!(field_error(r#"{"model":"m"}"#).1, "`messages` is required");
        assert_eq!(
            field_error(r#"{"model":"m","messages":[]}"#).1,
            "`messages` must not be empty"
        );
        assert_eq!(
            field_error(r#"{"model":"m","messages":{"role":"user"}}"#).1,
            "`messages` must be an array, got an object"
        );
        let (param, message) = field_error(r#"{"model":"m","messages":[{"role":"user"},"hi"]}"#);
        assert_eq!(param, "messages.1");
        assert_eq!(message, "`messages.1` must be an object, got a string");
    }

    #[test]
    fn message_role_is_a_required_string() {
        let body = r#"{"model":"m","messages":[{"role":"user"},{"role":"user"},{"role":7}]}"#;
        assert_eq!(
            field_error(body),
            (
                "messages.2.role".into(),
                "`messages.2.role` must be a string, got a number".into()
            )
        );
        let missing = field_error(r#"{"model":"m","messages":[{"content":"hi"}]}"#);
        assert_eq!(missing.0, "messages.0.role");
        assert_eq!(missing.1, "`messages.0.role` is required");
    }

    #[test]
    fn the_first_wrong_message_is_reported() {
        let body = r#"{"model":"m","messages":[{"role":"user"},{"role":1},{"role":2}]}"#;
        assert_eq!(field_error(body).0, "messages.1.role");
    }

    #[test]
    fn content_must_be_a_string_parts_or_null() {
        let (param, message) =
            field_error(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#);
        assert_eq!(param, "messages.0.content");
        assert_eq!(
            message,
            "`messages.0.content` must be a string, an array of content parts or null, got a number"
        );
        let body = r#"{"model":"m","messages":[{"role":"assistant","content":{"a":1}}]}"#;
        assert_eq!(field_error(body).0, "messages.0.content");
    }

    #[test]
    fn content_parts_are_checked_for_every_role() {
        let part_not_object = r#"{"model":"m","messages":[{"role":"user","content":["x"]}]}"#;
        assert_eq!(field_error(part_not_object).0, "messages.0.content.0");
        let bad_text = r#"{"model":"m","messages":[{"role":"system","content":[
            {"type":"text","text":"ok"},{"type":"text","text":false}]}]}"#;
        let (param, message) = field_error(bad_text);
        assert_eq!(param, "messages.0.content.1.text");
        assert_eq!(
            message,
            "`messages.0.content.1.text` must be a string, got a boolean"
        );
        let missing_text =
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#;
        assert_eq!(field_error(missing_text).0, "messages.0.content.0.text");
    }

    #[test]
    fn typed_optional_fields_are_checked() {
        let base =
            |extra: &str| format!(r#"{{"model":"m","messages":[{{"role":"user"}}],{extra}}}"#);
        let cases = [
            (
                r#""stream":"yes""#,
                "stream",
                "`stream` must be a boolean, got a string",
            ),
            (
                r#""stream_options":{"include_usage":1}"#,
                "stream_options.include_usage",
                "`stream_options.include_usage` must be a boolean, got a number",
            ),
            (
                r#""stream_options":[]"#,
                "stream_options",
                "`stream_options` must be an object, got an array",
            ),
            (
                r#""user":{}"#,
                "user",
                "`user` must be a string, got an object",
            ),
            (
                r#""tools":{}"#,
                "tools",
                "`tools` must be an array, got an object",
            ),
            (
                r#""functions":true"#,
                "functions",
                "`functions` must be an array, got a boolean",
            ),
        ];
        for (extra, param, message) in cases {
            assert_eq!(
                field_error(&base(extra)),
                (param.into(), message.into()),
                "{extra}"
            );
        }
    }

    #[test]
    fn field_errors_do_not_depend_on_key_order() {
        let a = field_error(r#"{"stream":1,"messages":[{"role":2}],"model":3}"#);
        let b = field_error(r#"{"model":3,"stream":1,"messages":[{"role":2}]}"#);
        assert_eq!(a, b);
        assert_eq!(a.0, "model");
    }

    #[test]
    fn the_body_must_be_a_json_object() {
        assert_eq!(
            json_error(r#"[{"model":"m"}]"#),
            "request body must be a JSON object, got an array"
        );
        assert_eq!(
            json_error("null"),
            "request body must be a JSON object, got null"
        );
    }

    #[test]
    fn invalid_json_is_reported_with_line_and_column() {
        let message = json_error("{\n  \"model\": \"m\",\n  \"messages\": [}\n");
        assert!(
            message.starts_with("request body is not valid JSON: "),
            "{message}"
        );
        assert!(message.ends_with("at line 3 column 16"), "{message}");
        let trailing = json_error(r#"{"model":"m","messages":[{"role":"user"}]} x"#);
        assert!(trailing.contains("trailing characters"), "{trailing}");
        assert!(json_error("").contains("EOF"));
    }

    #[test]
    fn invalid_json_wins_over_field_errors() {
        let message = json_error(r#"{"model":1,"messages":[],"x":tru}"#);
        assert!(
            message.starts_with("request body is not valid JSON"),
            "{message}"
        );
    }

    #[test]
    fn invalid_utf8_in_a_string_is_invalid_json() {
        let mut body = br#"{"model":"m","messages":[{"role":"user"}],"x":"#.to_vec();
        body.extend_from_slice(b"\"\xff\"}");
        let err = RequestParser::default().parse(&body).unwrap_err();
        assert!(matches!(err, Error::InvalidJson { .. }), "{err:?}");
    }

    #[test]
    fn size_limit_is_enforced_before_parsing() {
        let parser = RequestParser::new(10, 64);
        let err = parser.parse(b"{\"model\": \"m\"}").unwrap_err();
        assert!(matches!(
            err,
            Error::PayloadTooLarge {
                size: 14,
                limit: 10
            }
        ));
        assert_eq!(
            err.to_string(),
            "request body is 14 bytes, over the limit of 10 bytes"
        );
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let parser = RequestParser::new(1 << 20, 8);
        assert!(parser.parse(nested(8).as_bytes()).is_ok());
        let deepest = RequestParser::new(1 << 20, MAX_SUPPORTED_DEPTH);
        assert!(deepest
            .parse(nested(MAX_SUPPORTED_DEPTH).as_bytes())
            .is_ok());
    }

    #[test]
    fn nesting_past_the_limit_is_invalid_json() {
        let parser = RequestParser::new(1 << 20, 8);
        let err = parser.parse(nested(9).as_bytes()).unwrap_err();
        match err {
            Error::InvalidJson { message } => {
                assert!(message.starts_with("request body nests deeper than 8 levels at line 1"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nesting_is_counted_inside_skipped_fields_and_content() {
        let parser = RequestParser::new(1 << 20, 4);
        let deep_extra = r#"{"model":"m","messages":[{"role":"user"}],"x":[[[[1]]]]}"#;
        assert!(parser.parse(deep_extra.as_bytes()).is_err());
        let deep_content = r#"{"model":"m","messages":[{"role":"user","content":[{"a":[1]}]}]}"#;
        assert!(parser.parse(deep_content.as_bytes()).is_err());
        let deep_key = r#"{"model":"m","messages":[{"role":"user"}],"x":{"a":{"b":{"c":{}}}}}"#;
        assert!(parser.parse(deep_key.as_bytes()).is_err());
    }

    #[test]
    #[should_panic(expected = "max_depth must be between 1 and 100")]
    fn an_unsupported_depth_limit_is_refused() {
        RequestParser::new(1024, MAX_SUPPORTED_DEPTH + 1);
    }
}
