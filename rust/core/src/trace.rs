//! Span ids of one request's trace: W3C Trace Context's 16 hex digits, made of a random
//! 48-bit prefix drawn once per request and a 16-bit counter, so each span costs a format and
//! no draw from a random generator. The root span is number 1; the counter wraps past 65,535.

use crate::sse::json::push_json_str;

/// One span as the log writes it: a row of `request_intake.span_rows`.
pub struct SpanRow<'a> {
    pub span_id: &'a str,
    pub parent_id: &'a str,
    pub name: &'a str,
    /// Unix seconds.
    pub start_time: f64,
    pub duration_ms: f64,
    pub status: &'a str,
}

/// Appends `span` as a JSON array of its fields in the order of the intake's tuple
/// (span_id, parent_id, name, start_time, duration_ms, status, attributes), `attributes` an
/// object of strings. A time that is not finite is written as 0: the column takes no null.
pub fn push_span_row<'a>(
    out: &mut Vec<u8>,
    span: &SpanRow<'_>,
    attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    out.push(b'[');
    for text in [span.span_id, span.parent_id, span.name] {
        push_json_str(out, text);
        out.push(b',');
    }
    for number in [span.start_time, span.duration_ms] {
        push_float(out, number);
        out.push(b',');
    }
    push_json_str(out, span.status);
    out.extend_from_slice(b",{");
    for (index, (name, value)) in attributes.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_json_str(out, name);
        out.push(b':');
        push_json_str(out, value);
    }
    out.extend_from_slice(b"}]");
}

/// The shortest text that reads back as `value` (0 for NaN and the infinities).
fn push_float(out: &mut Vec<u8>, value: f64) {
    let value = if value.is_finite() { value } else { 0.0 };
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// The 12 hex digits of a request's span id prefix (the low 48 bits of `random`).
pub fn prefix(random: u64) -> String {
    format!("{:012x}", random & 0xFFFF_FFFF_FFFF)
}

/// Span number `n` of the trace whose prefix is `prefix`: the prefix and 4 hex digits.
pub fn span_id(prefix: &str, n: u32) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(prefix.len() + 4);
    id.push_str(prefix);
    // Four digits by hand: `write!` costs several times this, ten times per request.
    for shift in [12, 8, 4, 0] {
        id.push(char::from(HEX[((n >> shift) & 0xF) as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_hex_digits_of_the_prefix_and_the_counter() {
        let prefix = prefix(0xABCD_0000_0000_1234);
        assert_eq!(prefix, "000000001234");
        assert_eq!(span_id(&prefix, 1), "0000000012340001");
        assert_eq!(span_id(&prefix, 0x1_0002), "0000000012340002");
        assert_eq!(span_id("a1b2c3d4e5f6", 0xBEEF), "a1b2c3d4e5f6beef");
    }

    #[test]
    fn a_span_row_is_the_intake_tuple_as_json() {
        let span = SpanRow {
            span_id: "00f067aa0ba902b8",
            parent_id: "00f067aa0ba902b7",
            name: "provider_attempt",
            start_time: 1_767_225_600.125,
            duration_ms: f64::NAN,
            status: "error",
        };
        let mut out = Vec::new();
        push_span_row(&mut out, &span, [("error", "x\"\n"), ("n", "\u{e9}")]);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "[\"00f067aa0ba902b8\",\"00f067aa0ba902b7\",\"provider_attempt\",\
             1767225600.125,0.0,\"error\",{\"error\":\"x\\\"\\n\",\"n\":\"\u{e9}\"}]"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[6]["error"], "x\"\n");
        let mut empty = Vec::new();
        push_span_row(&mut empty, &span, []);
        assert!(empty.ends_with(b",\"error\",{}]"));
    }
}
