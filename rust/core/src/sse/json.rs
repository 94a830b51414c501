//! What the stream translators share to read and write JSON: a JSON value that keeps the
//! order of its object keys (a tool call's arguments go out as the provider wrote them),
//! strings borrowed from the event when they hold no escapes, and writers for the pieces of
//! the events they build. Strings are escaped as the Python side's encoder escapes them
//! (control characters as `\n`-style or `\u00XX`, everything else as UTF-8), so a translated
//! stream is byte for byte the one the Python translators write.

use std::borrow::Cow;
use std::fmt;

use super::StreamUsage;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON string, borrowed when it holds no escapes.
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Some(text)` of a field that is a non-empty string.
pub(crate) fn non_empty<'t>(text: &'t Option<Text<'_>>) -> Option<&'t str> {
    text.as_ref()
        .map(Text::as_str)
        .filter(|text| !text.is_empty())
}

/// Any JSON value, objects in the order their keys came.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Python's truth value: null, false, 0, "", [] and {} are false.
    pub fn truthy(&self) -> bool {
        match self {
            Json::Null => false,
            Json::Bool(value) => *value,
            Json::Number(number) => number.as_f64().is_some_and(|value| value != 0.0),
            Json::String(text) => !text.is_empty(),
            Json::Array(items) => !items.is_empty(),
            Json::Object(fields) => !fields.is_empty(),
        }
    }

    /// Compact JSON; with `sorted`, every object's keys in sorted order.
    pub fn write(&self, out: &mut Vec<u8>, sorted: bool) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(true) => out.extend_from_slice(b"true"),
            Json::Bool(false) => out.extend_from_slice(b"false"),
            Json::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
            Json::String(text) => push_json_str(out, text),
            Json::Array(items) => {
                out.push(b'[');
                for (position, item) in items.iter().enumerate() {
                    if position > 0 {
                        out.push(b',');
                    }
                    item.write(out, sorted);
                }
                out.push(b']');
            }
            Json::Object(fields) => {
                let mut order: Vec<&(String, Json)> = fields.iter().collect();
                if sorted {
                    order.sort_by(|a, b| a.0.cmp(&b.0));
                }
                out.push(b'{');
                for (position, (key, value)) in order.into_iter().enumerate() {
                    if position > 0 {
                        out.push(b',');
                    }
                    push_json_str(out, key);
                    out.push(b':');
                    value.write(out, sorted);
                }
                out.push(b'}');
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields: Vec<(String, Json)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            // A repeated key keeps its first place and its last value, as a dict does.
            match fields.iter_mut().find(|(seen, _)| *seen == key) {
                Some(field) => field.1 = value,
                None => fields.push((key, value)),
            }
        }
        Ok(Json::Object(fields))
    }
}

/// Appends `text` as a JSON string.
pub(crate) fn push_json_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    // Most texts (ids, names, model names) need no escape: one pass that tests each byte
    // without branching on it, then a single copy.
    if !bytes
        .iter()
        .fold(false, |found, &byte| found | needs_escape(byte))
    {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..` (the object
/// left open): how every chunk a translator writes in OpenAI's format begins.
pub(crate) fn push_chunk_head(out: &mut Vec<u8>, id: &str, created: i64, model: &str) {
    out.extend_from_slice(b"data: {\"id\":");
    push_json_str(out, id);
    out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
    push_int(out, created);
    out.extend_from_slice(b",\"model\":");
    push_json_str(out, model);
}

/// The rest of the usage chunk after its head: no choices, the usage with its details, the
/// event's end. `cache_write_tokens` is written where the provider reports it (Anthropic).
pub(crate) fn push_usage_rest(out: &mut Vec<u8>, usage: &StreamUsage, cache_write: bool) {
    out.extend_from_slice(b",\"choices\":[],\"usage\":{\"prompt_tokens\":");
    push_int(out, usage.prompt_tokens as i64);
    out.extend_from_slice(b",\"completion_tokens\":");
    push_int(out, usage.completion_tokens as i64);
    out.extend_from_slice(b",\"total_tokens\":");
    push_int(out, usage.total_tokens as i64);
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    push_int(out, usage.cached_tokens as i64);
    if cache_write {
        out.extend_from_slice(b",\"cache_write_tokens\":");
        push_int(out, usage.cache_write_tokens as i64);
    }
    out.extend_from_slice(b"},\"completion_tokens_details\":{\"reasoning_tokens\":");
    push_int(out, usage.reasoning_tokens as i64);
    out.extend_from_slice(b"}}}\n\n");
}

/// Whether JSON writes `byte` escaped inside a string.
#[inline]
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Appends a decimal integer.
pub(crate) fn push_int(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(value.to_string().as_bytes());
}

/// Appends a JSON string, or `null`.
pub(crate) fn push_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_json_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// The gateway's own error event ending an OpenAI-format stream: a `ProviderError`'s
/// envelope (502 PROVIDER_ERROR), as the SDKs raise it.
pub(crate) fn provider_error_event(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"data: {\"error\":{\"message\":");
    push_json_str(out, message);
    out.extend_from_slice(
        b",\"type\":\"api_error\",\"code\":\"PROVIDER_ERROR\",\"param\":null}}\n\n",
    );
}

/// Seconds since the Unix epoch: a chunk's `created`.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> String {
        let mut out = Vec::new();
        push_json_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_like_the_python_encoder() {
        assert_eq!(
            encoded("a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é/"),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}é/\""
        );
    }

    #[test]
    fn values_keep_their_key_order_or_sort_it() {
        let value: Json =
            serde_json::from_str(r#"{"b": {"z": 1, "a": [true, null, 1.5]}, "a": "x"}"#).unwrap();
        let mut kept = Vec::new();
        value.write(&mut kept, false);
        assert_eq!(kept, br#"{"b":{"z":1,"a":[true,null,1.5]},"a":"x"}"#);
        let mut sorted = Vec::new();
        value.write(&mut sorted, true);
        assert_eq!(sorted, br#"{"a":"x","b":{"a":[true,null,1.5],"z":1}}"#);
    }

    #[test]
    fn truth_follows_python() {
        for (text, truth) in [
            ("{}", false),
            ("[]", false),
            ("0", false),
            ("\"\"", false),
            ("null", false),
            ("{\"a\":0}", true),
            ("1", true),
        ] {
            let value: Json = serde_json::from_str(text).unwrap();
            assert_eq!(value.truthy(), truth, "{text}");
        }
    }
}
