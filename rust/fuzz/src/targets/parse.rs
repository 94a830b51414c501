//! The request parser: never panics, never accepts what is not a JSON object, never goes
//! deeper than its limit, refuses an oversized body by its size, reads the facts that a plain
//! reading of serde_json's value gives, and the same facts from any layout of the body.

use floopy_core::parse::{ChatRequest, RequestParser};
use floopy_core::Error;
use serde_json::Value;

use super::{Target, JSON_DICTIONARY};
use crate::gen;

pub const TARGET: Target = Target {
    name: "parse",
    about:
        "request parser: acceptance implies valid JSON, depth and size limits, layout invariance",
    generate: gen::chat_body,
    check,
    dictionary: JSON_DICTIONARY,
    max_len: 64 * 1024,
};

fn check(body: &[u8]) -> bool {
    let reference = serde_json::from_slice::<Value>(body).ok();
    let depth = reference.as_ref().map(nesting);
    let mut accepted = false;
    for (max_body, max_depth) in [(10 << 20, 64), (10 << 20, 100), (256, 3)] {
        let parser = RequestParser::new(max_body, max_depth);
        let result = parser.parse(body);
        if body.len() > max_body {
            assert!(
                matches!(result, Err(Error::PayloadTooLarge { .. })),
                "an oversized body was not refused by size: {result:?}"
            );
            continue;
        }
        let Ok(request) = result else { continue };
        accepted = true;
        let value = reference
            .as_ref()
            .expect("accepted a body serde_json refuses");
        assert!(value.is_object(), "accepted a body that is not an object");
        let depth = depth.expect("a parsed body has a depth");
        assert!(
            depth <= max_depth,
            "accepted depth {depth} over the limit {max_depth}"
        );
        assert!(!request.model.is_empty(), "accepted an empty model");
        assert!(request.message_count > 0, "accepted no messages");
        assert_eq!(
            request,
            expected(value),
            "the facts differ from serde_json's reading"
        );
        let pretty = serde_json::to_vec_pretty(value).expect("a value serializes");
        if pretty.len() <= max_body {
            let again = parser
                .parse(&pretty)
                .expect("the same body in another layout");
            assert_eq!(again, request, "another layout read differently");
        }
    }
    accepted
}

/// The facts of an accepted body, read the plain way from serde_json's value.
fn expected(body: &Value) -> ChatRequest {
    let flag = |value: &Value| value.as_bool().unwrap_or(false);
    let non_empty = |name| body[name].as_array().is_some_and(|items| !items.is_empty());
    let messages = body["messages"]
        .as_array()
        .expect("accepted messages are an array");
    let last_user = messages
        .iter()
        .rev()
        .find(|message| message["role"] == "user");
    ChatRequest {
        model: body["model"]
            .as_str()
            .expect("an accepted model")
            .to_owned(),
        stream: flag(&body["stream"]),
        include_usage: flag(&body["stream_options"]["include_usage"]),
        message_count: messages.len(),
        last_user_text: last_user.map(|message| text_of(&message["content"])),
        user: body["user"].as_str().map(str::to_owned),
        has_tools: non_empty("tools") || non_empty("functions"),
    }
}

/// A message's text: the string, or its text parts joined by newlines.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|part| part["type"] == "text")
                .filter_map(|part| part["text"].as_str())
                .collect();
            texts.join("\n")
        }
        _ => String::new(),
    }
}

/// Levels of arrays and objects; a scalar is level 0.
fn nesting(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Object(entries) => 1 + entries.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}
