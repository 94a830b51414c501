//! The exact-cache key (DESIGN section 6): xxh3-128 over a canonical form of the request,
//! framed with the tenant scope and the cache seed.
//!
//! Canonical form: the body with the excluded top-level fields (those that do not change the
//! answer: `stream`, `stream_options`, `user`, `metadata`, `store` by default) and the
//! request's ignore-keys removed, keys sorted at every depth (by code point; of repeated keys
//! the last counts, as in every JSON reader the providers use), no whitespace, integral floats
//! written as integers (`1.0` is `1`), other numbers as the shortest decimal that reads back
//! as the same double (so the canonical form of a canonical form is itself), strings escaped
//! as serde_json's compact output does.
//! Two bodies that differ only in layout get one key; any change to what the model sees gets
//! another.
//!
//! Framing, so that no scope, seed and body can collide with another:
//! `FRAME_TAG`, then the scope's length (u64 little-endian) and bytes, then `0x00` for no seed
//! or `0x01` with the seed's length (u64 little-endian) and bytes, then the canonical bytes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::{Error, Result};

/// Top-level fields left out of every key unless the keyer is built with another list.
pub const DEFAULT_EXCLUDED: [&str; 5] = ["stream", "stream_options", "user", "metadata", "store"];

/// Names this framing and canonical form: changing either must change the tag, so that
/// entries written under the old form are never served for a different request.
pub const FRAME_TAG: &[u8] = b"floopy-exact-v1\0";

/// Integral floats up to this magnitude are exact as integers; past it they keep float form.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// Makes exact-cache keys. Built once with the excluded fields, used for every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKeyer {
    excluded: Vec<String>,
}

impl Default for CacheKeyer {
    fn default() -> Self {
        Self::new(DEFAULT_EXCLUDED)
    }
}

impl CacheKeyer {
    pub fn new<I, S>(excluded: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            excluded: excluded.into_iter().map(Into::into).collect(),
        }
    }

    pub fn excluded(&self) -> &[String] {
        &self.excluded
    }

    /// The canonical bytes that [`CacheKeyer::key`] hashes, without scope and seed.
    pub fn canonical<S: AsRef<str>>(&self, body: &[u8], ignore_keys: &[S]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(body.len());
        self.write_canonical(body, ignore_keys, &mut out)?;
        Ok(out)
    }

    /// The key of a body for a tenant `scope` and an optional cache `seed`.
    pub fn key<S: AsRef<str>>(
        &self,
        body: &[u8],
        scope: &str,
        seed: Option<&str>,
        ignore_keys: &[S],
    ) -> Result<u128> {
        let mut framed = Vec::with_capacity(FRAME_TAG.len() + 32 + scope.len() + body.len());
        write_frame(scope, seed, &mut framed);
        self.write_canonical(body, ignore_keys, &mut framed)?;
        Ok(xxh3_128(&framed))
    }

    /// [`CacheKeyer::key`] as 32 lower-case hex digits.
    pub fn key_hex<S: AsRef<str>>(
        &self,
        body: &[u8],
        scope: &str,
        seed: Option<&str>,
        ignore_keys: &[S],
    ) -> Result<String> {
        self.key(body, scope, seed, ignore_keys).map(to_hex)
    }

    fn write_canonical<S: AsRef<str>>(
        &self,
        body: &[u8],
        ignore_keys: &[S],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let entries = match read_body(body)? {
            Node::Object(entries) => entries,
            other => {
                let message = format!("request body must be a JSON object, got {}", other.kind());
                return Err(Error::invalid_json(message));
            }
        };
        let left_out = |key: &str| {
            self.excluded.iter().any(|excluded| excluded == key)
                || ignore_keys.iter().any(|ignored| ignored.as_ref() == key)
        };
        let kept: Vec<_> = entries.iter().filter(|(key, _)| !left_out(key)).collect();
        write_entries(kept.into_iter(), out);
        Ok(())
    }
}

pub fn to_hex(key: u128) -> String {
    format!("{key:032x}")
}

fn write_frame(scope: &str, seed: Option<&str>, out: &mut Vec<u8>) {
    out.extend_from_slice(FRAME_TAG);
    write_length_prefixed(scope, out);
    match seed {
        None => out.push(0),
        Some(seed) => {
            out.push(1);
            write_length_prefixed(seed, out);
        }
    }
}

fn write_length_prefixed(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn read_body(body: &[u8]) -> Result<Node<'_>> {
    serde_json::from_slice(body)
        .map_err(|err| Error::invalid_json(format!("request body is not valid JSON: {err}")))
}

/// A JSON value borrowing its strings from the body. Objects hold their entries sorted by key,
/// repeated keys already resolved.
#[derive(Debug)]
enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl Node<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Int(_) | Self::UInt(_) | Self::Float(_) => "a number",
            Self::Str(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }
}

fn write_node(node: &Node<'_>, out: &mut Vec<u8>) {
    match node {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::Int(number) => write_json(number, out),
        Node::UInt(number) => write_json(number, out),
        Node::Float(number) => write_float(*number, out),
        Node::Str(text) => write_json(text.as_ref(), out),
        Node::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_node(item, out);
            }
            out.push(b']');
        }
        Node::Object(entries) => write_entries(entries.iter(), out),
    }
}

fn write_entries<'n, 'a: 'n>(
    entries: impl Iterator<Item = &'n (Cow<'a, str>, Node<'a>)>,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    for (index, (key, value)) in entries.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_json(key.as_ref(), out);
        out.push(b':');
        write_node(value, out);
    }
    out.push(b'}');
}

/// `1.0` and `1` ask the model the same thing, so they key the same.
fn write_float(number: f64, out: &mut Vec<u8>) {
    if number.fract() == 0.0 && number.abs() < MAX_EXACT_INTEGER {
        write_json(&(number as i64), out);
    } else {
        write_json(&number, out);
    }
}

/// serde_json's compact output for one scalar: its escaping and number formatting are the
/// canonical ones.
fn write_json<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("scalars always serialize into memory");
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Node<'de>, E> {
        Ok(Node::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Float(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Node<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Object(sorted_entries(entries)))
    }
}

/// Sorts by key (UTF-8 byte order is code point order) and keeps the last of repeated keys.
fn sorted_entries<'a>(mut entries: Vec<(Cow<'a, str>, Node<'a>)>) -> Vec<(Cow<'a, str>, Node<'a>)> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, kept| {
        let repeated = later.0 == kept.0;
        if repeated {
            std::mem::swap(later, kept);
        }
        repeated
    });
    entries
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_KEYS: &[&str] = &[];

    fn canonical(body: &str) -> String {
        let bytes = CacheKeyer::default()
            .canonical(body.as_bytes(), NO_KEYS)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn key(body: &str) -> u128 {
        CacheKeyer::default()
            .key(body.as_bytes(), "org/project", None, NO_KEYS)
            .unwrap()
    }

    const BASE: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},
        {"role":"user","content":"What is 2+2?"}],"temperature":0.7,"top_p":1,
        "tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}],
        "stream":false,"user":"u-1"}"#;

    #[test]
    fn canonical_form_sorts_keys_drops_excluded_fields_and_whitespace() {
        assert_eq!(
            canonical(BASE),
            concat!(
                r#"{"messages":[{"content":"Be brief.","role":"system"},"#,
                r#"{"content":"What is 2+2?","role":"user"}],"model":"gpt-4o","temperature":0.7,"#,
                r#""tools":[{"function":{"name":"add","parameters":{"type":"object"}},"#,
                r#""type":"function"}],"top_p":1}"#
            )
        );
    }

    #[test]
    fn canonical_form_writes_integral_floats_as_integers() {
        assert_eq!(
            canonical(
                r#"{"a":1.0,"b":-2.50,"c":1e2,"d":-0.0,"e":1.5e300,"f":18446744073709551615}"#
            ),
            r#"{"a":1,"b":-2.5,"c":100,"d":0,"e":1.5e+300,"f":18446744073709551615}"#
        );
    }

    #[test]
    fn the_canonical_form_of_a_canonical_form_is_itself() {
        // Integers past u64 and floats past 2^53 keep float form; written back as the
        // shortest decimal, they must read back as the same double (serde_json's exact
        // float parsing), or a key would change on a second pass.
        let bodies = [
            r#"{"a":1180591620717411303424}"#,
            r#"{"a":-1180591620717411303424,"b":1.7976931348623157e308,"c":5e-324}"#,
            r#"{"a":9007199254740993,"b":9007199254740992.0,"c":123456789012345678901234567890}"#,
            r#"{"a":0.30000000000000004,"b":2.2250738585072011e-308,"c":-18446744073709551616}"#,
        ];
        for body in bodies {
            let once = canonical(body);
            assert_eq!(canonical(&once), once, "{body}");
        }
        assert_eq!(
            canonical(r#"{"a":1180591620717411303424}"#),
            r#"{"a":1.1805916207174113e+21}"#
        );
    }

    #[test]
    fn canonical_form_escapes_strings_one_way() {
        assert_eq!(
            canonical(r#"{"s":"caf\u00e9 \"q\" \/ \u0001\t\n","\u006b":"\ud83d\ude00"}"#),
            "{\"k\":\"\u{1F600}\",\"s\":\"café \\\"q\\\" / \\u0001\\t\\n\"}"
        );
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        assert_eq!(canonical(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        assert_eq!(
            canonical(r#"{"a":{"x":1,"x":2,"x":3}}"#),
            r#"{"a":{"x":3}}"#
        );
    }

    #[test]
    fn exclusion_is_top_level_only() {
        assert_eq!(
            canonical(
                r#"{"user":"u","metadata":{},"store":true,"stream_options":{},"x":{"user":"u"}}"#
            ),
            r#"{"x":{"user":"u"}}"#
        );
    }

    #[test]
    fn ignore_keys_and_custom_exclusions_are_left_out() {
        let keyer = CacheKeyer::default();
        let body = br#"{"model":"m","seed":4,"temperature":1}"#;
        let canonical = keyer.canonical(body, &["seed", "temperature"]).unwrap();
        assert_eq!(canonical, br#"{"model":"m"}"#);
        let custom = CacheKeyer::new(["model"]);
        assert_eq!(custom.excluded(), ["model"]);
        let canonical = custom
            .canonical(br#"{"model":"m","stream":true}"#, NO_KEYS)
            .unwrap();
        assert_eq!(canonical, br#"{"stream":true}"#);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_invalid_json() {
        let keyer = CacheKeyer::default();
        let err = keyer.key(b"[1]", "", None, NO_KEYS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "request body must be a JSON object, got an array"
        );
        let err = keyer.key(b"{\"a\":", "", None, NO_KEYS).unwrap_err();
        assert!(matches!(err, Error::InvalidJson { .. }));
        assert!(
            err.to_string()
                .starts_with("request body is not valid JSON: EOF"),
            "{err}"
        );
    }

    #[test]
    fn golden_keys() {
        // Pinned: a change here means every cached entry of every deployment goes cold.
        let keyer = CacheKeyer::default();
        let hex = |body: &[u8], scope, seed| keyer.key_hex(body, scope, seed, NO_KEYS).unwrap();
        assert_eq!(hex(br#"{}"#, "", None), GOLDEN[0]);
        assert_eq!(hex(BASE.as_bytes(), "org/project", None), GOLDEN[1]);
        assert_eq!(hex(BASE.as_bytes(), "org/project", Some("s1")), GOLDEN[2]);
        let simple = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(hex(simple, "acme/web", None), GOLDEN[3]);
    }

    const GOLDEN: [&str; 4] = [
        "53d8f51c64ef802c7378b1bcea123c30",
        "ff661c820efac14465c3337cfa22e4a3",
        "aead879c29079b0f9267a5623ee826bf",
        "2b8a648be06fade7847b27e9bc130984",
    ];

    #[test]
    fn hex_is_32_lower_case_digits() {
        assert_eq!(to_hex(0xAB), format!("{}ab", "0".repeat(30)));
        assert_eq!(to_hex(u128::MAX), "f".repeat(32));
    }

    #[test]
    fn layout_and_excluded_fields_do_not_change_the_key() {
        let base = key(BASE);
        let same = [
            // keys reordered at every depth, other whitespace
            r#"{"user":"u-2","top_p":1.0,"temperature":0.70,"stream":true,"tools":[{"function":
              {"parameters":{"type":"object"},"name":"add"},"type":"function"}],
              "messages":[{"content":"Be brief.","role":"system"},{"content":"What is 2+2?",
              "role":"user"}],"model":"gpt-4o","stream_options":{"include_usage":true}}"#,
            // escapes that spell the same text
            r#"{"model":"gpt-\u0034o","messages":[{"role":"system","content":"Be brief\u002e"},
              {"role":"user","content":"What is 2+2?"}],"temperature":0.7,"top_p":1,
              "tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}],
              "metadata":{"trace":"x"},"store":false}"#,
        ];
        for body in same {
            assert_eq!(key(body), base, "{body}");
        }
    }

    #[test]
    fn anything_the_model_sees_changes_the_key() {
        let base = key(BASE);
        let changes = [
            ("gpt-4o\"", "gpt-4o-mini\""),
            ("Be brief.", "Be brief!"),
            ("What is 2+2?", "What is 2+3?"),
            ("\"system\"", "\"developer\""),
            ("0.7", "0.8"),
            ("\"top_p\":1", "\"top_p\":0.9"),
            ("\"name\":\"add\"", "\"name\":\"sum\""),
            ("\"stream\":false", "\"stream\":false,\"seed\":1"),
        ];
        for (from, to) in changes {
            let changed = BASE.replacen(from, to, 1);
            assert_ne!(changed, BASE, "{from} must occur in the base body");
            assert_ne!(key(&changed), base, "{from} -> {to}");
        }
    }

    #[test]
    fn scope_and_seed_change_the_key() {
        let keyer = CacheKeyer::default();
        let body = BASE.as_bytes();
        let key = |scope, seed| keyer.key(body, scope, seed, NO_KEYS).unwrap();
        let keys = [
            key("org/project", None),
            key("org/other", None),
            key("", None),
            key("org/project", Some("")),
            key("org/project", Some("s1")),
            key("org/project", Some("s2")),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn framing_keeps_scope_and_seed_apart() {
        // Without length prefixes these pairs would hash the same bytes.
        let keyer = CacheKeyer::default();
        let body = br#"{"model":"m"}"#;
        let key = |scope, seed| keyer.key(body, scope, seed, NO_KEYS).unwrap();
        assert_ne!(key("ab", Some("c")), key("a", Some("bc")));
        assert_ne!(key("a\u{1}", None), key("a", Some("")));
    }

    #[test]
    fn the_key_is_xxh3_over_the_documented_frame() {
        let keyer = CacheKeyer::default();
        let body = br#"{"b":1,"a":[true,null]}"#;
        let mut frame = b"floopy-exact-v1\0".to_vec();
        frame.extend_from_slice(&2u64.to_le_bytes());
        frame.extend_from_slice(b"o1");
        frame.push(1);
        frame.extend_from_slice(&3u64.to_le_bytes());
        frame.extend_from_slice(b"s-1");
        frame.extend_from_slice(br#"{"a":[true,null],"b":1}"#);
        assert_eq!(
            keyer.key(body, "o1", Some("s-1"), NO_KEYS).unwrap(),
            xxh3_128(&frame)
        );
    }
}
