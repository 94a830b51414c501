//! The request parser: never panics, never accepts what is not a JSON object, never goes
//! deeper than its limit, refuses an oversized body by its size, and reads the same facts
//! from any layout of the same body.

use floopy_core::parse::RequestParser;
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
        let pretty = serde_json::to_vec_pretty(value).expect("a value serializes");
        if !has_repeated_keys(body) && pretty.len() <= max_body {
            let again = parser
                .parse(&pretty)
                .expect("the same body in another layout");
            assert_eq!(again, request, "another layout read differently");
        }
    }
    accepted
}

/// Levels of arrays and objects; a scalar is level 0.
fn nesting(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Object(entries) => 1 + entries.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

/// serde_json's value keeps the last of repeated keys, the parser may read another: only
/// bodies without them are compared across layouts.
fn has_repeated_keys(body: &[u8]) -> bool {
    struct Probe(bool);
    impl<'de> serde::de::Visitor<'de> for &mut Probe {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut keys = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                self.0 |= !keys.insert(key);
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
    }
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Probe {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut probe = Probe(false);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let _ = serde::de::DeserializeSeed::deserialize(&mut probe, &mut deserializer);
    probe.0
}
