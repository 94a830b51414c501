//! The header extractor. Input: one header per line, `name:value` split at the first colon.
//! Invariants: no panic; a header the gateway reads whose value is too long, holds a control
//! character or is not UTF-8 is refused, never dropped; what is extracted is trimmed, within
//! the limits, and free of control characters. Helicone's aliases are read too, and a Floopy
//! header wins over its alias.

use floopy_core::headers::{FloopyHeaders, HeaderExtractor};

use super::Target;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "headers",
    about: "header extractor: bad values of read headers refused, extracted values clean",
    generate,
    check,
    dictionary: DICTIONARY,
    max_len: 16 * 1024,
};

const READ_STANDARD: &[&str] = &[
    "authorization",
    "x-api-key",
    "user-agent",
    "x-forwarded-for",
    "cache-control",
];

const READ_FLOOPY: &[&str] = &[
    "session-id",
    "session-name",
    "session-path",
    "project-id",
    "user-id",
    "model-override",
    "routing-rule",
    "fallback",
    "cache-enabled",
    "cache-advanced",
    "cache-seed",
    "cache-bucket-max-size",
    "cache-ignore-keys",
    "llm-security-enabled",
];

/// Helicone's names with a Floopy equivalent, after `helicone-`.
const READ_HELICONE: &[&str] = &[
    "session-id",
    "session-name",
    "session-path",
    "user-id",
    "fallback",
    "cache-enabled",
    "cache-seed",
    "cache-bucket-max-size",
    "llm-security-enabled",
];

const VALUES: &[&str] = &[
    "",
    " ",
    "true",
    "TRUE",
    "false",
    "0",
    "1",
    "yes",
    "Bearer sk-abc",
    "bearer\tk",
    "Basic x",
    "Bearer ",
    "no-store",
    "no-cache, max-age=60",
    "max-age=\"10\"",
    "max-age=",
    "max-age=-1",
    "max-age=18446744073709551616",
    "private, max-age=5",
    "a, b,,c ",
    ",,,",
    "1.2.3.4, 5.6.7.8",
    "42",
    "00",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    " x ",
    "\tx\t",
    "é",
    "😀",
    "gpt-4o-mini",
];

const DICTIONARY: &[&[u8]] = &[
    b"floopy-",
    b"x-floopy-",
    b"helicone-",
    b"Helicone-Auth",
    b"property-",
    b"FLOOPY-PROPERTY-",
    b"cache-control",
    b":",
    b"\n",
    b"\t",
    b" ",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"max-age=",
    b"no-store",
    b"Bearer ",
    b",",
    b"true",
    b"false",
];

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.small(12) {
        let name = match rng.below(6) {
            0 => rng.pick(READ_STANDARD).to_string(),
            4 => format!(
                "helicone-{}",
                rng.pick(&["property-team", "property-", "auth", "ratelimit-policy"])
            ),
            5 => format!("Helicone-{}", rng.pick(READ_HELICONE)),
            1 => format!(
                "floopy-property-{}",
                rng.pick(&["team", "Team", "", "a b", "x"])
            ),
            2 => "content-type".to_owned(),
            _ => format!(
                "{}{}",
                rng.pick(&["floopy-", "x-floopy-", "X-Floopy-"]),
                rng.pick(READ_FLOOPY)
            ),
        };
        out.extend(random_case(rng, &name));
        out.push(b':');
        let value = rng.pick(VALUES).as_bytes().to_vec();
        out.extend(match rng.below(12) {
            0 => b"\xff\xfe".to_vec(),
            1 => [value.as_slice(), b"\x01"].concat(),
            2 => "v".repeat(rng.between(15, 20)).into_bytes(),
            _ => value,
        });
        out.push(b'\n');
    }
    out
}

fn random_case(rng: &mut Rng, name: &str) -> Vec<u8> {
    name.bytes()
        .map(|byte| {
            if rng.one_in(3) {
                byte.to_ascii_uppercase()
            } else {
                byte
            }
        })
        .collect()
}

fn check(input: &[u8]) -> bool {
    let pairs: Vec<(&[u8], &[u8])> = input
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| match line.iter().position(|&byte| byte == b':') {
            Some(colon) => (&line[..colon], &line[colon + 1..]),
            None => (line, &line[line.len()..]),
        })
        .collect();
    let mut accepted = false;
    for extractor in [HeaderExtractor::default(), HeaderExtractor::new(16, 2)] {
        let result = extractor.extract(pairs.iter().copied());
        let bad_value = pairs
            .iter()
            .find(|(name, value)| is_read(name) && is_bad(value, extractor.max_value_len()));
        match (&result, bad_value) {
            (Ok(headers), None) => {
                accepted = true;
                check_extracted(headers, &extractor);
                check_plain_fields(headers, &pairs);
            }
            (Ok(_), Some((name, value))) => panic!(
                "header {:?} with bad value {:?} was not refused",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value)
            ),
            (Err(_), _) => {}
        }
    }
    accepted
}

fn is_read(name: &[u8]) -> bool {
    let Ok(name) = std::str::from_utf8(name) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    let floopy = name
        .strip_prefix("floopy-")
        .or_else(|| name.strip_prefix("x-floopy-"));
    if let Some(rest) = floopy {
        return rest.starts_with("property-") || READ_FLOOPY.contains(&rest);
    }
    if let Some(rest) = name.strip_prefix("helicone-") {
        return rest.starts_with("property-") || READ_HELICONE.contains(&rest);
    }
    READ_STANDARD.contains(&name.as_str())
}

fn is_bad(value: &[u8], max_len: usize) -> bool {
    value.len() > max_len
        || value
            .iter()
            .any(|&byte| (byte < 0x20 && byte != b'\t') || byte == 0x7f)
        || std::str::from_utf8(value).is_err()
}

fn check_extracted(headers: &FloopyHeaders, extractor: &HeaderExtractor) {
    assert!(headers.properties.len() <= extractor.max_properties());
    let single = [
        &headers.api_key,
        &headers.session_id,
        &headers.session_name,
        &headers.session_path,
        &headers.project_id,
        &headers.user_id,
        &headers.model_override,
        &headers.routing_rule,
        &headers.cache_seed,
        &headers.user_agent,
        &headers.forwarded_for,
    ];
    let lists = headers.fallbacks.iter().chain(&headers.cache_ignore_keys);
    let properties = headers.properties.iter().map(|(_, value)| value);
    for text in single.into_iter().flatten().chain(lists) {
        assert!(!text.is_empty(), "an empty value counted as present");
        assert_clean(text, extractor);
    }
    for text in properties {
        assert_clean(text, extractor);
    }
    for (index, (name, _)) in headers.properties.iter().enumerate() {
        assert!(!name.is_empty(), "a property without a name");
        assert_eq!(
            *name,
            name.to_ascii_lowercase(),
            "a property name not lower-cased"
        );
        assert!(headers.properties[index + 1..]
            .iter()
            .all(|(other, _)| other != name));
    }
    if headers.cache_bucket_max_size == Some(0) {
        panic!("a zero bucket size was accepted");
    }
}

fn assert_clean(text: &str, extractor: &HeaderExtractor) {
    assert!(
        text.len() <= extractor.max_value_len(),
        "{text:?} is over the limit"
    );
    assert_eq!(
        text,
        text.trim_matches([' ', '\t']),
        "{text:?} is not trimmed"
    );
    assert!(
        !text.chars().any(|c| c.is_ascii_control() && c != '\t'),
        "{text:?}"
    );
}

/// The headers read as plain text, and the lists, against a plain reading of the pairs: the
/// last value counts (an empty one clears), list items add up; Helicone's alias only where
/// the Floopy header left nothing.
fn check_plain_fields(headers: &FloopyHeaders, pairs: &[(&[u8], &[u8])]) {
    let named = |wanted: &str, helicone: bool| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(name, _)| {
                let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                let rest = if helicone {
                    name.strip_prefix("helicone-")
                } else {
                    name.strip_prefix("floopy-")
                        .or_else(|| name.strip_prefix("x-floopy-"))
                };
                rest == Some(wanted)
            })
            .map(|(_, value)| {
                std::str::from_utf8(value)
                    .unwrap()
                    .trim_matches([' ', '\t'])
            })
            .collect()
    };
    let last_of = |wanted: &str, helicone: bool| {
        named(wanted, helicone)
            .last()
            .filter(|value| !value.is_empty())
            .map(|value| value.to_string())
    };
    let last = |wanted: &str| {
        let floopy = last_of(wanted, false);
        match READ_HELICONE.contains(&wanted) {
            true => floopy.or_else(|| last_of(wanted, true)),
            false => floopy,
        }
    };
    let fields = [
        ("session-id", &headers.session_id),
        ("session-name", &headers.session_name),
        ("session-path", &headers.session_path),
        ("project-id", &headers.project_id),
        ("user-id", &headers.user_id),
        ("model-override", &headers.model_override),
        ("routing-rule", &headers.routing_rule),
        ("cache-seed", &headers.cache_seed),
    ];
    for (name, extracted) in fields {
        assert_eq!(*extracted, last(name), "floopy-{name}");
    }
    let items_of = |wanted: &str, helicone: bool| -> Vec<String> {
        named(wanted, helicone)
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let items = |wanted: &str| items_of(wanted, false);
    let mut fallbacks = items("fallback");
    if fallbacks.is_empty() {
        fallbacks = items_of("fallback", true);
    }
    assert_eq!(
        headers.fallbacks, fallbacks,
        "floopy-fallback, else helicone-fallback"
    );
    assert_eq!(
        headers.cache_ignore_keys,
        items("cache-ignore-keys"),
        "floopy-cache-ignore-keys"
    );
}
