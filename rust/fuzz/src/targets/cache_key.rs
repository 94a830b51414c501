//! The cache keyer. Invariants: no panic; it accepts exactly the JSON objects serde_json
//! accepts; its canonical form is valid JSON and its own canonical form (idempotence); the
//! key of the canonical form, and of any other layout of the body, is the body's key.

use floopy_core::cache_key::CacheKeyer;
use serde_json::Value;

use super::{Target, JSON_DICTIONARY};
use crate::gen;

pub const TARGET: Target = Target {
    name: "cache_key",
    about:
        "cache keyer: idempotent canonical form, layout invariance, same acceptance as serde_json",
    generate: gen::chat_body,
    check,
    dictionary: JSON_DICTIONARY,
    max_len: 64 * 1024,
};

const NO_KEYS: &[&str] = &[];

fn check(body: &[u8]) -> bool {
    let keyer = CacheKeyer::default();
    let reference = serde_json::from_slice::<Value>(body);
    let canonical = match keyer.canonical(body, NO_KEYS) {
        Ok(canonical) => canonical,
        Err(err) => {
            if let Ok(value) = reference {
                assert!(
                    !value.is_object(),
                    "refused an object serde_json reads: {err}"
                );
            }
            return false;
        }
    };
    let value = reference.expect("accepted a body serde_json refuses");
    assert!(value.is_object(), "accepted a body that is not an object");
    serde_json::from_slice::<Value>(&canonical).expect("the canonical form is valid JSON");
    let twice = keyer
        .canonical(&canonical, NO_KEYS)
        .expect("a canonical form is accepted");
    assert_eq!(
        String::from_utf8_lossy(&twice),
        String::from_utf8_lossy(&canonical),
        "the canonical form of the canonical form differs"
    );
    let key = |body: &[u8]| keyer.key(body, "org/project", Some("s"), NO_KEYS).unwrap();
    let base = key(body);
    assert_eq!(key(&canonical), base, "the canonical form keys differently");
    let pretty = serde_json::to_vec_pretty(&value).expect("a value serializes");
    assert_eq!(key(&pretty), base, "another layout keys differently");
    let ignored = keyer.canonical(body, &["model", "messages"]).unwrap();
    assert!(
        ignored.len() <= canonical.len(),
        "ignoring keys made the form longer"
    );
    true
}
