//! Request rows (the log's JSON lines, a request with its spans inside) to one OTLP
//! `ExportTraceServiceRequest`, in protobuf's wire format.
//!
//! The resource and the instrumentation scope are written by the caller (with the official
//! messages) and passed in as their encoded bytes; each row becomes its spans, with the same
//! ids, named and attributed as OpenTelemetry's semantic conventions say: the root (kind
//! SERVER, `{gen_ai.operation.name} {gen_ai.request.model}`) with the GenAI, HTTP and
//! `floopy.*` attributes, each `provider_attempt` (kind CLIENT) with the GenAI ones of its
//! try, every other span INTERNAL with the log's attributes. A row that is not valid JSON of
//! that shape, or whose ids are not hex of the W3C sizes, is skipped and counted. A row may
//! also come as the `Tape` the worker wrote for the export, which is read without parsing.

mod row;
mod tape;

use row::{attribute, Row, SpanRow};
pub use tape::{Tape, INTEGERS, NUMBERS, TEXTS};

/// A request to export: the log's JSON line, or the tape the worker wrote for it.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Line(&'a [u8]),
    Tape(&'a Tape),
}

impl Source<'_> {
    fn row(&self) -> Option<Row<'_>> {
        match self {
            Source::Line(line) => row::parse(line),
            Source::Tape(tape) => tape.row(),
        }
    }
}

const KIND_INTERNAL: u64 = 1;
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const STATUS_ERROR: u64 = 2;

/// An attribute value, as `AnyValue` holds it.
enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
    StrArray(&'a str),
}

/// The encoded request, and how many spans it holds and rows it skipped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The request's bytes are `buffer[start..]` (see `body`).
    buffer: Vec<u8>,
    start: usize,
    pub spans: usize,
    pub skipped: usize,
}

impl Encoded {
    /// The `ExportTraceServiceRequest`'s bytes.
    pub fn body(&self) -> &[u8] {
        &self.buffer[self.start..]
    }
}

/// Room for the messages' heads before the spans: three tags and three lengths (of at most
/// ten bytes each) beside the resource's and the scope's own bytes.
fn head_room(resource: &[u8], scope: &[u8]) -> usize {
    3 * 11 + field_len(resource.len()) + field_len(scope.len())
}

/// One `ExportTraceServiceRequest` holding every span of `rows`, under one resource and one
/// scope (each already encoded as its message's bytes).
///
/// The spans are written once, each straight after the last, behind room left for the
/// heads of the messages that hold them; those heads, whose lengths are known only then,
/// are written into that room last, ending where the spans begin. No span is copied after
/// it is written.
pub fn export_request(rows: &[Source<'_>], resource: &[u8], scope: &[u8]) -> Encoded {
    let room = head_room(resource, scope);
    let mut buffer = vec![0u8; room];
    buffer.reserve(rows.len() * 2048);
    let mut span = Vec::with_capacity(1024);
    let (mut count, mut skipped) = (0, 0);
    for row in rows {
        match row
            .row()
            .and_then(|row| add_request(&mut buffer, &mut span, &row))
        {
            Some(n) => count += n,
            None => skipped += 1,
        }
    }
    // ExportTraceServiceRequest.resource_spans (1) = ResourceSpans { resource (1),
    // scope_spans (2) = ScopeSpans { scope (1), spans (2)... } }
    let scope_spans_len = field_len(scope.len()) + (buffer.len() - room);
    let resource_spans_len = field_len(resource.len()) + field_len(scope_spans_len);
    let mut head = Vec::with_capacity(room);
    put_tag(&mut head, 1, 2);
    put_varint(&mut head, resource_spans_len as u64);
    put_bytes(&mut head, 1, resource);
    put_tag(&mut head, 2, 2);
    put_varint(&mut head, scope_spans_len as u64);
    put_bytes(&mut head, 1, scope);
    let start = room - head.len();
    buffer[start..room].copy_from_slice(&head);
    Encoded {
        buffer,
        start,
        spans: count,
        skipped,
    }
}

/// gen_ai.operation.name of an API path.
fn operation(path: &str) -> &'static str {
    match path {
        "/v1/embeddings" => "embeddings",
        "/v1/messages/count_tokens" => "count_tokens",
        _ => "chat",
    }
}

/// Appends the row's spans (each a `ScopeSpans.spans` field); None, and nothing appended,
/// when an id is not valid. `span` is scratch room for one span.
fn add_request(out: &mut Vec<u8>, span: &mut Vec<u8>, row: &Row) -> Option<usize> {
    let mark = out.len();
    let added = add_spans(out, span, row);
    if added.is_none() {
        out.truncate(mark);
    }
    added
}

fn add_spans(out: &mut Vec<u8>, span: &mut Vec<u8>, row: &Row) -> Option<usize> {
    let root = row.spans.first()?;
    let trace_hex = attribute(&root.attributes, "trace_id").unwrap_or_else(|| {
        row.request_id
            .get(row.request_id.len().saturating_sub(32)..)
            .unwrap_or("")
    });
    let trace_id = hex::<16>(trace_hex)?;
    let operation = operation(&row.path);
    for (index, record) in row.spans.iter().enumerate() {
        span.clear();
        put_bytes(span, 1, &trace_id);
        put_bytes(span, 2, &hex::<8>(&record.span_id)?);
        if !record.parent_id.is_empty() {
            put_bytes(span, 4, &hex::<8>(&record.parent_id)?);
        }
        let start = (record.start_time * 1e9) as u64;
        let end = start.saturating_add((record.duration_ms * 1e6).max(0.0) as u64);
        if index == 0 {
            if row.requested_model.is_empty() {
                put_bytes(span, 5, operation.as_bytes());
            } else {
                // "{operation} {requested_model}"
                let model = row.requested_model.as_bytes();
                put_tag(span, 5, 2);
                put_varint(span, (operation.len() + 1 + model.len()) as u64);
                span.extend_from_slice(operation.as_bytes());
                span.push(b' ');
                span.extend_from_slice(model);
            }
            put_varint_field(span, 6, KIND_SERVER);
        } else {
            put_bytes(span, 5, record.name.as_bytes());
            let kind = if record.name == "provider_attempt" {
                KIND_CLIENT
            } else {
                KIND_INTERNAL
            };
            put_varint_field(span, 6, kind);
        }
        put_fixed64_field(span, 7, start);
        put_fixed64_field(span, 8, end);
        if index == 0 {
            root_attributes(span, row, operation);
        } else {
            for (key, value) in &record.attributes {
                put_attribute(span, key, Value::Str(value));
            }
            if record.name == "provider_attempt" {
                attempt_attributes(span, record, operation);
            }
        }
        if !record.status.is_empty() && record.status != "ok" {
            let message = attribute(&record.attributes, "error.message")
                .or_else(|| attribute(&record.attributes, "error"))
                .unwrap_or(&record.status);
            let mut status = Vec::with_capacity(message.len() + 8);
            put_bytes(&mut status, 2, message.as_bytes());
            put_varint_field(&mut status, 3, STATUS_ERROR);
            put_bytes(span, 15, &status);
        }
        put_bytes(out, 2, span);
    }
    Some(row.spans.len())
}

fn root_attributes(span: &mut Vec<u8>, row: &Row, operation: &str) {
    let texts = [
        ("gen_ai.operation.name", operation),
        ("gen_ai.system", row.provider.as_ref()),
        ("gen_ai.provider.name", row.provider.as_ref()),
        ("gen_ai.request.model", row.requested_model.as_ref()),
        ("gen_ai.response.model", row.model.as_ref()),
        ("http.request.method", row.method.as_ref()),
        ("url.path", row.path.as_ref()),
        ("error.type", row.error_code.as_ref()),
        ("session.id", row.session_id.as_ref()),
        ("user.id", row.user_id.as_ref()),
        ("floopy.request_id", row.request_id.as_ref()),
        ("floopy.organization", row.organization.as_ref()),
        ("floopy.project", row.project.as_ref()),
        ("floopy.cache.status", row.cache_status.as_ref()),
        ("floopy.cache.tier", row.cache_tier.as_ref()),
        ("floopy.firewall.verdict", row.firewall_verdict.as_ref()),
        ("floopy.session.name", row.session_name.as_ref()),
        ("floopy.session.path", row.session_path.as_ref()),
    ];
    for (key, value) in texts {
        if !value.is_empty() {
            put_attribute(span, key, Value::Str(value));
        }
    }
    put_attribute(span, "http.response.status_code", Value::Int(row.status));
    put_attribute(span, "floopy.stream", Value::Bool(row.stream));
    put_attribute(span, "floopy.fallback_used", Value::Bool(row.fallback_used));
    if let Some(cost) = row.cost_usd {
        put_attribute(span, "floopy.cost_usd", Value::Double(cost));
    }
    if let Some(ttft) = row.ttft_ms {
        put_attribute(span, "floopy.ttft_ms", Value::Double(ttft));
    }
    if row.prompt_tokens != 0 || row.completion_tokens != 0 {
        put_attribute(
            span,
            "gen_ai.usage.input_tokens",
            Value::Int(row.prompt_tokens),
        );
        put_attribute(
            span,
            "gen_ai.usage.output_tokens",
            Value::Int(row.completion_tokens),
        );
    }
    if row.cached_tokens != 0 {
        let key = "gen_ai.usage.cache_read.input_tokens";
        put_attribute(span, key, Value::Int(row.cached_tokens));
    }
    if !row.finish_reason.is_empty() {
        let key = "gen_ai.response.finish_reasons";
        put_attribute(span, key, Value::StrArray(&row.finish_reason));
    }
    let mut key = String::new();
    for (name, value) in &row.properties {
        key.clear();
        key.push_str("floopy.property.");
        key.push_str(name);
        put_attribute(span, &key, Value::Str(value));
    }
}

fn attempt_attributes(span: &mut Vec<u8>, record: &SpanRow, operation: &str) {
    put_attribute(span, "gen_ai.operation.name", Value::Str(operation));
    if let Some(provider) = attribute(&record.attributes, "provider") {
        put_attribute(span, "gen_ai.system", Value::Str(provider));
        put_attribute(span, "gen_ai.provider.name", Value::Str(provider));
    }
    if let Some(model) = attribute(&record.attributes, "model") {
        put_attribute(span, "gen_ai.request.model", Value::Str(model));
    }
}

/// Lower- or upper-case hex of exactly N bytes, not all zero.
fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (NIBBLES[pair[0] as usize], NIBBLES[pair[1] as usize]);
        invalid |= (high | low) & 0x80;
        *byte = (high << 4) | (low & 0x0f);
    }
    (invalid == 0 && out.iter().any(|&byte| byte != 0)).then_some(out)
}

/// Each byte's value as a hex digit, or 0x80 when it is not one.
const NIBBLES: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut digit = 0;
    while digit < 10 {
        table[b'0' as usize + digit] = digit as u8;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        table[b'a' as usize + letter] = 10 + letter as u8;
        table[b'A' as usize + letter] = 10 + letter as u8;
        letter += 1;
    }
    table
};

/// A `KeyValue` as the span's (or resource's) attributes field 9, written in place: the
/// lengths are worked out first, so no buffer is built per attribute.
fn put_attribute(out: &mut Vec<u8>, key: &str, value: Value<'_>) {
    let any_len = match &value {
        Value::Str(text) => field_len(text.len()),
        Value::Bool(_) => 2,
        Value::Int(number) => 1 + varint_len(*number as u64),
        Value::Double(_) => 9,
        Value::StrArray(text) => field_len(field_len(field_len(text.len()))),
    };
    put_tag(out, 9, 2);
    put_varint(out, (field_len(key.len()) + field_len(any_len)) as u64);
    put_bytes(out, 1, key.as_bytes());
    put_tag(out, 2, 2);
    put_varint(out, any_len as u64);
    match value {
        Value::Str(text) => put_bytes(out, 1, text.as_bytes()),
        Value::Bool(flag) => put_varint_field(out, 2, u64::from(flag)),
        Value::Int(number) => put_varint_field(out, 3, number as u64),
        Value::Double(number) => {
            put_tag(out, 4, 1);
            out.extend_from_slice(&number.to_le_bytes());
        }
        Value::StrArray(text) => {
            put_tag(out, 5, 2);
            put_varint(out, field_len(field_len(text.len())) as u64);
            put_tag(out, 1, 2);
            put_varint(out, field_len(text.len()) as u64);
            put_bytes(out, 1, text.as_bytes());
        }
    }
}

/// The bytes of a length-delimited field with a one-byte tag and `len` bytes of payload.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_tag(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    put_varint(out, (field << 3) | wire_type);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_tag(out, field, 0);
    put_varint(out, value);
}

fn put_fixed64_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_tag(out, field, 1);
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_tag(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = r#"{"request_id":"req_0af7651916cd43dd8448eb211c80319c","status":200,
        "path":"/v1/chat/completions","requested_model":"gpt-4o-mini","provider":"mock",
        "prompt_tokens":3,"completion_tokens":5,"properties":{"env":"dev"},
        "spans":[
          {"span_id":"00f067aa0ba902b7","parent_id":"","name":"request","start_time":1.5,
           "duration_ms":2.0,"status":"ok","attributes":{}},
          {"span_id":"00f067aa0ba902b8","parent_id":"00f067aa0ba902b7",
           "name":"provider_attempt","start_time":1.5,"duration_ms":1.0,"status":"error",
           "attributes":{"provider":"mock","model":"m","error":"PROVIDER_ERROR"}}]}"#;

    fn export_lines<R: AsRef<[u8]>>(rows: &[R], resource: &[u8], scope: &[u8]) -> Encoded {
        let rows: Vec<Source> = rows.iter().map(|row| Source::Line(row.as_ref())).collect();
        export_request(&rows, resource, scope)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    #[test]
    fn a_row_becomes_its_spans_under_the_resource_and_scope() {
        let encoded = export_lines(&[ROW.as_bytes()], b"\x0a\x00", b"\x0a\x06floopy");
        assert_eq!((encoded.spans, encoded.skipped), (2, 0));
        let body = encoded.body();
        let trace_id = hex::<16>("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert!(contains(body, &trace_id));
        assert!(contains(body, b"chat gpt-4o-mini"));
        assert!(contains(body, b"gen_ai.usage.output_tokens"));
        assert!(contains(body, b"floopy.property.env"));
        assert!(contains(body, b"PROVIDER_ERROR"));
        assert!(contains(body, b"\x0a\x06floopy"));
    }

    #[test]
    fn spans_as_arrays_export_as_spans_as_objects_do() {
        let arrays = r#"{"request_id":"req_0af7651916cd43dd8448eb211c80319c","status":200,
            "path":"/v1/chat/completions","requested_model":"gpt-4o-mini","provider":"mock",
            "prompt_tokens":3,"completion_tokens":5,"properties":{"env":"dev"},
            "span_rows":[
              ["00f067aa0ba902b7","","request",1.5,2.0,"ok",{}],
              ["00f067aa0ba902b8","00f067aa0ba902b7","provider_attempt",1.5,1.0,"error",
               {"provider":"mock","model":"m","error":"PROVIDER_ERROR"}]]}"#;
        let as_objects = export_lines(&[ROW.as_bytes()], b"", b"");
        let as_arrays = export_lines(&[arrays.as_bytes()], b"", b"");
        assert_eq!((as_arrays.spans, as_arrays.skipped), (2, 0));
        assert_eq!(as_arrays.body(), as_objects.body());
    }

    #[test]
    fn a_tape_exports_as_its_json_line_does() {
        let mut tape = Tape::default();
        let span = |span_id, parent_id, name, duration_ms, status| crate::trace::SpanRow {
            span_id,
            parent_id,
            name,
            start_time: 1.5,
            duration_ms,
            status,
        };
        tape.push_span(&span("00f067aa0ba902b7", "", "request", 2.0, "ok"), []);
        let attempt = span(
            "00f067aa0ba902b8",
            "00f067aa0ba902b7",
            "provider_attempt",
            1.0,
            "error",
        );
        let attributes = [
            ("provider", "mock"),
            ("model", "m"),
            ("error", "PROVIDER_ERROR"),
        ];
        tape.push_span(&attempt, attributes);
        let texts = TEXTS.map(|name| match name {
            "request_id" => "req_0af7651916cd43dd8448eb211c80319c",
            "path" => "/v1/chat/completions",
            "requested_model" => "gpt-4o-mini",
            "provider" => "mock",
            _ => "",
        });
        tape.push_fields(texts, [200, 3, 5, 0, 0, 0], [None, None], [("env", "dev")]);
        let from_tape = export_request(&[Source::Tape(&tape)], b"", b"");
        let from_line = export_lines(&[ROW.as_bytes()], b"", b"");
        assert_eq!((from_tape.spans, from_tape.skipped), (2, 0));
        assert_eq!(from_tape.body(), from_line.body());
        let mut broken = tape.clone();
        broken.push_fields([], [0; 6], [None; 2], []);
        let skipped = export_request(&[Source::Tape(&broken), Source::Tape(&tape)], b"", b"");
        assert_eq!((skipped.spans, skipped.skipped), (2, 1));
    }

    #[test]
    fn bad_rows_and_ids_are_skipped_and_counted() {
        let zero_span = ROW.replace("00f067aa0ba902b8", "0000000000000000");
        let short_id = ROW.replace(
            "00f067aa0ba902b7\",\"parent_id\":\"\"",
            "abc\",\"parent_id\":\"\"",
        );
        let rows = [
            b"not json".to_vec(),
            zero_span.into_bytes(),
            short_id.into_bytes(),
        ];
        let encoded = export_lines(&rows, b"", b"");
        assert_eq!((encoded.spans, encoded.skipped), (0, 3));
    }

    #[test]
    fn out_of_range_times_and_counts_do_not_panic() {
        let row = ROW
            .replace("\"start_time\":1.5", "\"start_time\":1e300")
            .replace("\"duration_ms\":1.0", "\"duration_ms\":1e300")
            .replace("\"prompt_tokens\":3", "\"prompt_tokens\":-3");
        assert!(row.contains("1e300,\"duration_ms\":1e300") && row.contains(":-3"));
        let encoded = export_lines(&[row.as_bytes()], b"", b"");
        assert_eq!((encoded.spans, encoded.skipped), (2, 0));
    }

    #[test]
    fn hex_ids_are_checked() {
        assert_eq!(hex::<2>("0aFF"), Some([0x0a, 0xff]));
        assert_eq!(hex::<2>("0000"), None);
        assert_eq!(hex::<2>("0a"), None);
        assert_eq!(hex::<2>("0g00"), None);
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint_len(value), out.len(), "{value}");
        }
    }

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        put_varint(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
    }
}
