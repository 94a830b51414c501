//! Structure-aware generators: JSON that is mostly valid and shaped like what the gateway
//! reads, with the edges that break parsers (numbers past every integer width, escapes and
//! surrogates, repeated keys, deep nesting, odd whitespace).

use crate::rng::Rng;

/// Numbers at the edges of i64, u64, f64 and the exact-integer range of a double.
pub const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "1.0",
    "-0.0",
    "0.5",
    "0.7",
    "1e2",
    "1E+2",
    "1e-2",
    "-2.50",
    "0.30000000000000004",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "9007199254740992.0",
    "-9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551616",
    "1180591620717411303424",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "5e-324",
    "2.2250738585072011e-308",
    "4.9e-324",
    "1e400",
    "-1e400",
    "1e-400",
    "1.5e300",
    "100000000000000000000000.0",
    "0.1e1",
    "00",
    "01",
    "1.",
    ".1",
    "+1",
    "1e",
];

const STRING_PIECES: &[&str] = &[
    "hi",
    "What is 2+2?",
    "gpt-4o",
    "user",
    "system",
    "assistant",
    "tool",
    "text",
    " ",
    "é",
    "😀",
    "\\n",
    "\\t",
    "\\\"",
    "\\\\",
    "\\/",
    "\\u0000",
    "\\u001f",
    "\\u00e9",
    "\\u0034",
    "\\ud83d\\ude00",
    "\\ud800",
    "\\udc00",
    "\\ud83d",
    "\\uffff",
    "\\u2028",
    "\u{7f}",
    "\u{ffff}",
    "\\x",
    "\\",
    "\t",
    "a\u{0}b",
    "[DONE]",
    "sk-test",
    "café",
];

const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "stream",
    "stream_options",
    "include_usage",
    "user",
    "metadata",
    "store",
    "tools",
    "functions",
    "temperature",
    "top_p",
    "seed",
    "type",
    "text",
    "image_url",
    "function",
    "name",
    "arguments",
    "tool_calls",
    "n",
    "a",
    "",
    "\\u006d\\u006fdel",
];

pub fn whitespace(rng: &mut Rng, out: &mut String) {
    if rng.one_in(4) {
        for _ in 0..rng.between(1, 3) {
            out.push(rng.pick(&[' ', '\n', '\t', '\r']));
        }
    }
}

pub fn number(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => rng.pick(NUMBERS).to_string(),
        1 => (rng.next_u64() as i64 >> rng.below(64)).to_string(),
        2 => {
            let bits = rng.next_u64();
            let value = f64::from_bits(bits);
            if value.is_finite() {
                format!("{value:e}")
            } else {
                "0.25".to_owned()
            }
        }
        _ => format!("{}.{}", rng.below(1000), rng.below(1000)),
    }
}

pub fn string(rng: &mut Rng) -> String {
    let mut out = String::from("\"");
    for _ in 0..rng.small(8) {
        out.push_str(rng.pick(STRING_PIECES));
    }
    out.push('"');
    out
}

fn key(rng: &mut Rng) -> String {
    if rng.one_in(4) {
        string(rng)
    } else {
        format!("\"{}\"", rng.pick(KEYS))
    }
}

/// Any JSON value, nested at most `depth` more levels.
pub fn value(rng: &mut Rng, depth: usize, out: &mut String) {
    let choice = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match choice {
        0 => out.push_str(rng.pick(&["null", "true", "false"])),
        1 | 2 => out.push_str(&number(rng)),
        3 | 4 => out.push_str(&string(rng)),
        5 => {
            out.push('[');
            for index in 0..rng.small(5) {
                if index > 0 {
                    out.push(',');
                }
                whitespace(rng, out);
                value(rng, depth - 1, out);
            }
            out.push(']');
        }
        _ => {
            let entries: Vec<(String, String)> = (0..rng.small(5))
                .map(|_| {
                    let mut item = String::new();
                    value(rng, depth - 1, &mut item);
                    (key(rng), item)
                })
                .collect();
            object(rng, entries, out);
        }
    }
}

/// An object of the given entries, sometimes with one repeated.
pub fn object(rng: &mut Rng, mut entries: Vec<(String, String)>, out: &mut String) {
    if !entries.is_empty() && rng.one_in(8) {
        let repeated = entries[rng.below(entries.len())].0.clone();
        let mut item = String::new();
        value(rng, 1, &mut item);
        let at = rng.below(entries.len() + 1);
        entries.insert(at, (repeated, item));
    }
    out.push('{');
    for (index, (key, item)) in entries.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        whitespace(rng, out);
        out.push_str(key);
        whitespace(rng, out);
        out.push(':');
        whitespace(rng, out);
        out.push_str(item);
    }
    whitespace(rng, out);
    out.push('}');
}

/// A chat-completions body: the fields the parser reads, mostly well typed, in any order.
pub fn chat_body(rng: &mut Rng) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut field = |rng: &mut Rng, name: &str, usual: String| {
        if !rng.one_in(6) {
            let item = if rng.one_in(10) {
                let mut other = String::new();
                value(rng, 2, &mut other);
                other
            } else {
                usual
            };
            entries.push((format!("\"{name}\""), item));
        }
    };
    let model = string(rng);
    field(rng, "model", model);
    let messages = messages(rng);
    field(rng, "messages", messages);
    let stream = rng.pick(&["true", "false", "null"]).to_string();
    field(rng, "stream", stream);
    let options = format!(
        "{{\"include_usage\":{}}}",
        rng.pick(&["true", "false", "1"])
    );
    field(rng, "stream_options", options);
    let user = string(rng);
    field(rng, "user", user);
    let tools = format!("[{}]", "{\"type\":\"function\"}".repeat(rng.below(2)));
    field(rng, "tools", tools);
    let temperature = number(rng);
    field(rng, "temperature", temperature);
    for _ in 0..rng.small(3) {
        let mut extra = String::new();
        value(rng, 3, &mut extra);
        entries.push((key(rng), extra));
    }
    shuffle(rng, &mut entries);
    let mut out = String::new();
    object(rng, entries, &mut out);
    if rng.one_in(20) {
        out = nest(rng, out);
    }
    out.into_bytes()
}

fn messages(rng: &mut Rng) -> String {
    let mut out = String::from("[");
    for index in 0..rng.small(6) {
        if index > 0 {
            out.push(',');
        }
        let role = format!(
            "\"{}\"",
            rng.pick(&["user", "system", "assistant", "tool", "x"])
        );
        let content = match rng.below(4) {
            0 => {
                let parts: Vec<String> = (0..rng.small(3))
                    .map(|_| format!("{{\"type\":\"text\",\"text\":{}}}", string(rng)))
                    .collect();
                format!("[{}]", parts.join(","))
            }
            1 => "null".to_owned(),
            _ => string(rng),
        };
        let mut entries = vec![
            ("\"role\"".to_owned(), role),
            ("\"content\"".to_owned(), content),
        ];
        shuffle(rng, &mut entries);
        object(rng, entries, &mut out);
    }
    out.push(']');
    out
}

/// Wraps a body in deep nesting, around the parsers' limits (64, 100, serde_json's 128).
pub fn nest(rng: &mut Rng, inner: String) -> String {
    let depth = rng.pick(&[63, 64, 65, 99, 100, 101, 127, 128, 129, 300]);
    let (open, close) = if rng.one_in(2) {
        ("[", "]")
    } else {
        ("{\"a\":", "}")
    };
    format!(
        "{{\"x\":{}{inner}{}}}",
        open.repeat(depth),
        close.repeat(depth)
    )
}

pub fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for index in (1..items.len()).rev() {
        items.swap(index, rng.below(index + 1));
    }
}
