//! One request row (the log's JSON line) read for the export: only the fields the spans
//! carry, each string borrowed from the line unless it holds an escape.
//!
//! A small reader for the row's known shape rather than a generic deserializer: the line is
//! checked for UTF-8 once, whole; a key is compared as it stands in the line; a value the
//! export does not use (the bodies, the stage latencies, ...) is skipped with a search for
//! its closing quote, never decoded. The strings are short (keys, names, ids): a plain
//! byte loop finds their end in fewer instructions than a vectorised search sets up in. What is not JSON, or not a row (a required field
//! missing, a value of the wrong type), is `None`.

use std::borrow::Cow;

/// A JSON object of strings, in the line's order.
pub(super) type Attributes<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// The value of `key` (the last, should the object repeat it).
pub(super) fn attribute<'b>(attributes: &'b Attributes<'_>, key: &str) -> Option<&'b str> {
    attributes
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_ref())
}

#[derive(Default)]
pub(super) struct Row<'a> {
    pub request_id: Cow<'a, str>,
    pub organization: Cow<'a, str>,
    pub project: Cow<'a, str>,
    pub user_id: Cow<'a, str>,
    pub session_id: Cow<'a, str>,
    pub session_name: Cow<'a, str>,
    pub session_path: Cow<'a, str>,
    /// Sorted by name.
    pub properties: Attributes<'a>,
    pub method: Cow<'a, str>,
    pub path: Cow<'a, str>,
    pub requested_model: Cow<'a, str>,
    pub model: Cow<'a, str>,
    pub provider: Cow<'a, str>,
    pub fallback_used: bool,
    pub status: i64,
    pub error_code: Cow<'a, str>,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: Option<f64>,
    pub cache_status: Cow<'a, str>,
    pub cache_tier: Cow<'a, str>,
    pub firewall_verdict: Cow<'a, str>,
    pub stream: bool,
    pub finish_reason: Cow<'a, str>,
    pub spans: Vec<SpanRow<'a>>,
}

#[derive(Default)]
pub(super) struct SpanRow<'a> {
    pub span_id: Cow<'a, str>,
    pub parent_id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub start_time: f64,
    pub duration_ms: f64,
    pub status: Cow<'a, str>,
    /// Sorted by name.
    pub attributes: Attributes<'a>,
}

/// The row in `line`, or None when it is not one.
pub(super) fn parse(line: &[u8]) -> Option<Row<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let mut reader = Reader { text, at: 0 };
    let row = reader.row()?;
    reader.space();
    (reader.at == text.len()).then_some(row)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn row(&mut self) -> Option<Row<'a>> {
        let mut row = Row::default();
        let (mut has_id, mut has_status, mut has_spans) = (false, false, false);
        self.object(|reader, key| {
            match key.as_ref() {
                "request_id" => {
                    row.request_id = reader.string()?;
                    has_id = true;
                }
                "organization" => row.organization = reader.string()?,
                "project" => row.project = reader.string()?,
                "user_id" => row.user_id = reader.string()?,
                "session_id" => row.session_id = reader.string()?,
                "session_name" => row.session_name = reader.string()?,
                "session_path" => row.session_path = reader.string()?,
                "properties" => row.properties = reader.strings()?,
                "method" => row.method = reader.string()?,
                "path" => row.path = reader.string()?,
                "requested_model" => row.requested_model = reader.string()?,
                "model" => row.model = reader.string()?,
                "provider" => row.provider = reader.string()?,
                "fallback_used" => row.fallback_used = reader.boolean()?,
                "status" => {
                    row.status = reader.integer()?;
                    has_status = true;
                }
                "error_code" => row.error_code = reader.string()?,
                "ttft_ms" => row.ttft_ms = reader.optional_number()?,
                "prompt_tokens" => row.prompt_tokens = reader.integer()?,
                "completion_tokens" => row.completion_tokens = reader.integer()?,
                "cached_tokens" => row.cached_tokens = reader.integer()?,
                "cost_usd" => row.cost_usd = reader.optional_number()?,
                "cache_status" => row.cache_status = reader.string()?,
                "cache_tier" => row.cache_tier = reader.string()?,
                "firewall_verdict" => row.firewall_verdict = reader.string()?,
                "stream" => row.stream = reader.boolean()?,
                "finish_reason" => row.finish_reason = reader.string()?,
                // `span_rows` (each span an array of its fields) since the intake of
                // migration 0015; `spans` (objects) in lines journaled before it.
                "spans" | "span_rows" => {
                    row.spans = reader.spans()?;
                    has_spans = true;
                }
                _ => reader.skip_value()?,
            }
            Some(())
        })?;
        (has_id && has_status && has_spans).then_some(row)
    }

    fn spans(&mut self) -> Option<Vec<SpanRow<'a>>> {
        let mut spans = Vec::with_capacity(16);
        self.expect(b'[')?;
        if self.next_is(b']') {
            return Some(spans);
        }
        loop {
            spans.push(self.span()?);
            if !self.comma_or(b']')? {
                return Some(spans);
            }
        }
    }

    fn span(&mut self) -> Option<SpanRow<'a>> {
        self.space();
        if self.text.as_bytes().get(self.at) == Some(&b'[') {
            return self.span_array();
        }
        let mut span = SpanRow::default();
        let mut seen = [false; 4]; // span_id, name, start_time, duration_ms
        self.object(|reader, key| {
            match key.as_ref() {
                "span_id" => {
                    span.span_id = reader.string()?;
                    seen[0] = true;
                }
                "parent_id" => span.parent_id = reader.string()?,
                "name" => {
                    span.name = reader.string()?;
                    seen[1] = true;
                }
                "start_time" => {
                    span.start_time = reader.number()?;
                    seen[2] = true;
                }
                "duration_ms" => {
                    span.duration_ms = reader.number()?;
                    seen[3] = true;
                }
                "status" => span.status = reader.string()?,
                "attributes" => span.attributes = reader.strings()?,
                _ => reader.skip_value()?,
            }
            Some(())
        })?;
        seen.iter().all(|&seen| seen).then_some(span)
    }

    /// A span as an array of its fields, in the order of the intake's `span_rows` tuple:
    /// span_id, parent_id, name, start_time, duration_ms, status, attributes.
    fn span_array(&mut self) -> Option<SpanRow<'a>> {
        self.expect(b'[')?;
        let span_id = self.string()?;
        self.expect(b',')?;
        let parent_id = self.string()?;
        self.expect(b',')?;
        let name = self.string()?;
        self.expect(b',')?;
        let start_time = self.number()?;
        self.expect(b',')?;
        let duration_ms = self.number()?;
        self.expect(b',')?;
        let status = self.string()?;
        self.expect(b',')?;
        let attributes = self.strings()?;
        self.expect(b']')?;
        Some(SpanRow {
            span_id,
            parent_id,
            name,
            start_time,
            duration_ms,
            status,
            attributes,
        })
    }

    /// An object of strings, sorted by name (stable: a repeated name keeps its order).
    fn strings(&mut self) -> Option<Attributes<'a>> {
        let mut pairs = Vec::new();
        self.object(|reader, key| {
            pairs.push((key, reader.string()?));
            Some(())
        })?;
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Some(pairs)
    }

    /// Calls `member` with each key of an object, the reader at its value, which `member`
    /// reads or skips.
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.next_is(b'}') {
            return Some(());
        }
        loop {
            self.space();
            let key = self.string()?;
            self.expect(b':')?;
            member(self, key)?;
            if !self.comma_or(b'}')? {
                return Some(());
            }
        }
    }

    /// After a member: true past a comma, false past `close`.
    fn comma_or(&mut self, close: u8) -> Option<bool> {
        self.space();
        let byte = *self.text.as_bytes().get(self.at)?;
        self.at += 1;
        match byte {
            b',' => Some(true),
            _ if byte == close => Some(false),
            _ => None,
        }
    }

    fn space(&mut self) {
        let bytes = self.text.as_bytes();
        while matches!(bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.text.as_bytes().get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// Past `byte` if it comes next (after spaces).
    fn next_is(&mut self, byte: u8) -> bool {
        self.expect(byte).is_some()
    }

    /// A string (null reads as empty), borrowed unless it holds an escape.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) == Some(&b'"') {
            self.at += 1; // as the line is written: no space before it
        } else {
            self.space();
            if self.literal("null") {
                return Some(Cow::Borrowed(""));
            }
            self.expect(b'"')?;
        }
        let start = self.at;
        let end = quote_or_backslash(bytes, start)?;
        if bytes[end] == b'"' {
            self.at = end + 1;
            return Some(Cow::Borrowed(&self.text[start..end]));
        }
        let mut owned = String::with_capacity(end - start + 16);
        owned.push_str(&self.text[start..end]);
        self.at = end;
        loop {
            let bytes = self.text.as_bytes();
            let from = self.at;
            let stop = quote_or_backslash(bytes, from)?;
            owned.push_str(&self.text[from..stop]);
            self.at = stop + 1;
            if bytes[stop] == b'"' {
                return Some(Cow::Owned(owned));
            }
            self.escape(&mut owned)?;
        }
    }

    /// The escape after a backslash, onto `out`.
    fn escape(&mut self, out: &mut String) -> Option<()> {
        let byte = *self.text.as_bytes().get(self.at)?;
        self.at += 1;
        let decoded = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&high) {
                    self.text
                        .get(self.at..self.at + 2)
                        .filter(|s| *s == "\\u")?;
                    self.at += 2;
                    let low = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return None;
                    }
                    0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                } else {
                    high
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        out.push(decoded);
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        self.at += 4;
        if !digits.bytes().all(|digit| digit.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    }

    /// Past `word` if it comes next.
    fn literal(&mut self, word: &str) -> bool {
        let matched = self.text.as_bytes()[self.at..].starts_with(word.as_bytes());
        if matched {
            self.at += word.len();
        }
        matched
    }

    fn boolean(&mut self) -> Option<bool> {
        self.space();
        if self.literal("true") {
            Some(true)
        } else if self.literal("false") {
            Some(false)
        } else {
            None
        }
    }

    /// The text of a number, as JSON writes one.
    fn number_text(&mut self) -> Option<&'a str> {
        self.space();
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut end = start;
        while matches!(
            bytes.get(end),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            end += 1;
        }
        self.at = end;
        (end > start).then(|| &self.text[start..end])
    }

    fn number(&mut self) -> Option<f64> {
        let text = self.number_text()?;
        // Rust also reads "inf", "NaN", "+1" and ".5": the characters above allow only the
        // last two, which JSON does not.
        if text.starts_with(['+', '.']) {
            return None;
        }
        text.parse().ok()
    }

    fn optional_number(&mut self) -> Option<Option<f64>> {
        self.space();
        if self.literal("null") {
            return Some(None);
        }
        self.number().map(Some)
    }

    fn integer(&mut self) -> Option<i64> {
        self.number_text()?.parse().ok()
    }

    /// Past one value of any kind, decoding nothing.
    fn skip_value(&mut self) -> Option<()> {
        self.space();
        let bytes = self.text.as_bytes();
        match *bytes.get(self.at)? {
            b'"' => {
                self.at += 1;
                self.skip_string_rest()
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    let byte = *bytes.get(self.at)?;
                    self.at += 1;
                    match byte {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                        b'"' => self.skip_string_rest()?,
                        _ => {}
                    }
                }
            }
            b't' | b'f' => self.boolean().map(drop),
            b'n' => self.literal("null").then_some(()),
            _ => self.number_text().map(drop),
        }
    }

    /// Past the closing quote of a string whose opening quote is read.
    fn skip_string_rest(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        loop {
            let stop = quote_or_backslash(bytes, self.at)?;
            if bytes[stop] == b'"' {
                self.at = stop + 1;
                return Some(());
            }
            self.at = stop + 2; // the backslash and the byte it escapes
            if self.at > bytes.len() {
                return None;
            }
        }
    }
}

/// The index of the first `"` or `\\` in `bytes` from `from`: eight bytes a step (a word
/// whose bytes are tested at once), then byte by byte.
fn quote_or_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    // The high bit of each zero byte of `word` (and maybe of bytes after the first zero).
    let zeros = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = zeros(word ^ QUOTES) | zeros(word ^ BACKSLASHES);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let offset = bytes
        .get(at..)?
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\')?;
    Some(at + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_read_and_unused_values_skipped() {
        let line = br#" { "request_id" : "req_1", "status": 200, "time": 1.5e9,
            "stage_latency_ms": {"auth": 0.01, "nested": [1, {"a": "}]"}]},
            "request_body": "{\"model\": \"m\\u00e9\"}", "cost_usd": null, "ttft_ms": 2.5,
            "properties": {"z": "1", "a": "caf\u00e9 \ud83d\ude00"}, "stream": true,
            "spans": [{"span_id": "ab", "name": "request", "start_time": 1.5,
                       "duration_ms": -0.25, "attributes": {"k": "v\n"}, "extra": [false]}] } "#;
        let row = parse(line).expect("a row");
        assert_eq!(row.request_id, "req_1");
        assert_eq!(
            (row.status, row.stream, row.cost_usd, row.ttft_ms),
            (200, true, None, Some(2.5))
        );
        let properties: Vec<(&str, &str)> = row
            .properties
            .iter()
            .map(|(key, value)| (key.as_ref(), value.as_ref()))
            .collect();
        assert_eq!(properties, [("a", "café 😀"), ("z", "1")]);
        let span = &row.spans[0];
        assert_eq!(
            (span.span_id.as_ref(), span.name.as_ref()),
            ("ab", "request")
        );
        assert_eq!((span.start_time, span.duration_ms), (1.5, -0.25));
        assert_eq!(attribute(&span.attributes, "k"), Some("v\n"));
        assert!(matches!(row.request_id, Cow::Borrowed(_)));
    }

    #[test]
    fn the_first_quote_or_backslash_is_found_at_every_offset() {
        for length in 0..20 {
            for position in 0..length {
                for mark in [b'"', b'\\'] {
                    let mut bytes = vec![b'a'; length];
                    bytes[position] = mark;
                    if position + 1 < length {
                        bytes[position + 1] = b'"';
                    }
                    for from in 0..=position {
                        assert_eq!(quote_or_backslash(&bytes, from), Some(position));
                    }
                }
            }
            let plain = "\u{e9}a\u{1}\u{ff}".repeat(length);
            assert_eq!(quote_or_backslash(plain.as_bytes(), 0), None);
        }
    }

    #[test]
    fn what_is_not_a_row_is_none() {
        let good = r#"{"request_id":"r","status":1,"spans":[]}"#;
        assert!(parse(good.as_bytes()).is_some());
        let arrays = r#"{"request_id":"r","status":1,"span_rows":[ [ "a" , "", "n", 1, 2.5e0, "ok", {"k":"v"} ] ]}"#;
        let row = parse(arrays.as_bytes()).expect("spans as arrays");
        assert_eq!(
            (row.spans[0].name.as_ref(), row.spans[0].duration_ms),
            ("n", 2.5)
        );
        assert_eq!(attribute(&row.spans[0].attributes, "k"), Some("v"));
        for bad in [
            "",
            "not json",
            r#"{"request_id":"r","status":1}"#,
            r#"{"request_id":"r","status":"1","spans":[]}"#,
            r#"{"request_id":"r","status":1.5,"spans":[]}"#,
            r#"{"request_id":"r","status":1,"spans":[{"span_id":"a"}]}"#,
            r#"{"request_id":"r","status":1,"span_rows":[["a","","n",1,2,"ok"]]}"#,
            r#"{"request_id":"r","status":1,"span_rows":[["a","","n",1,2,"ok",{},3]]}"#,
            r#"{"request_id":"r","status":1,"span_rows":[["a","","n","1",2,"ok",{}]]}"#,
            r#"{"request_id":"r","status":1,"spans":[]"#,
            r#"{"request_id":"r","status":1,"spans":[]} x"#,
            r#"{"request_id":"r\q","status":1,"spans":[]}"#,
            r#"{"request_id":"r\ud800","status":1,"spans":[]}"#,
            r#"{"request_id":"r","status":1,"spans":[],"x":"\"#,
            r#"{"request_id":"r","status":1,"spans":[],"x":[1,2}"#,
            r#"{"request_id":"r","status":1,"spans":[],"cost_usd":.5}"#,
            r#"{"request_id":"r","status":1,"spans":[],"cost_usd":"x"}"#,
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(parse(b"{\"request_id\":\"\xff\",\"status\":1,\"spans\":[]}").is_none());
    }
}
