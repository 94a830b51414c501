//! Span ids of one request's trace: W3C Trace Context's 16 hex digits, made of a random
//! 48-bit prefix drawn once per request and a 16-bit counter, so each span costs a format and
//! no draw from a random generator. The root span is number 1; the counter wraps past 65,535.

use std::fmt::Write;

/// The 12 hex digits of a request's span id prefix (the low 48 bits of `random`).
pub fn prefix(random: u64) -> String {
    format!("{:012x}", random & 0xFFFF_FFFF_FFFF)
}

/// Span number `n` of the trace whose prefix is `prefix`: the prefix and 4 hex digits.
pub fn span_id(prefix: &str, n: u32) -> String {
    let mut id = String::with_capacity(16);
    id.push_str(prefix);
    // Writing to a String cannot fail.
    let _ = write!(id, "{:04x}", n & 0xFFFF);
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
}
