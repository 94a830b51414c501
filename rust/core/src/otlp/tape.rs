//! A request's row as the worker hands it to the export, so that the export thread reads
//! nothing back from JSON: the row's strings one after another in one text (with where each
//! ends), its integers and its numbers, each in the order they were written. The spans come
//! first, as the trace writes its `span_rows` (`push_span`), then the row's own fields
//! (`push_fields`, in the order `TEXTS`, `INTEGERS` and `NUMBERS` name them). Writing is a few
//! copies on the request path; `row` reads the tape back as the `Row` the encoder takes,
//! every string borrowed from the text.

use std::borrow::Cow;

use super::row::{Attributes, Row, SpanRow};
use crate::trace::SpanRow as TraceSpan;

/// The row's strings, in the order `push_fields` takes them.
pub const TEXTS: [&str; 17] = [
    "request_id",
    "organization",
    "project",
    "user_id",
    "session_id",
    "session_name",
    "session_path",
    "method",
    "path",
    "requested_model",
    "model",
    "provider",
    "error_code",
    "cache_status",
    "cache_tier",
    "firewall_verdict",
    "finish_reason",
];

/// The row's integers (a bool as 0 or 1), in the order `push_fields` takes them.
pub const INTEGERS: [&str; 6] = [
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "fallback_used",
    "stream",
];

/// The row's numbers that may be missing, in the order `push_fields` takes them.
pub const NUMBERS: [&str; 2] = ["ttft_ms", "cost_usd"];

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tape {
    text: String,
    ends: Vec<u32>,
    integers: Vec<i64>,
    numbers: Vec<f64>,
    spans: usize,
}

impl Tape {
    /// An empty tape with room for a row of `spans` spans, so that writing it seldom
    /// grows a buffer.
    pub fn with_spans(spans: usize) -> Tape {
        Tape {
            text: String::with_capacity(64 * spans + 512),
            ends: Vec::with_capacity(8 * spans + 48),
            integers: Vec::with_capacity(spans + 8),
            numbers: Vec::with_capacity(2 * spans + 2),
            spans: 0,
        }
    }

    /// Appends one span and its attributes. A time that is not finite is kept as 0, as the
    /// log's JSON keeps it.
    pub fn push_span<'a>(
        &mut self,
        span: &TraceSpan<'_>,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for text in [span.span_id, span.parent_id, span.name, span.status] {
            self.push_text(text);
        }
        for number in [span.start_time, span.duration_ms] {
            self.numbers
                .push(if number.is_finite() { number } else { 0.0 });
        }
        let count = self.push_pairs(attributes);
        self.integers.push(count);
        self.spans += 1;
    }

    /// Appends the row's own fields, after its spans: `texts` and `integers` in the order
    /// `TEXTS` and `INTEGERS` name them, `numbers` as `NUMBERS` does, then its properties.
    pub fn push_fields<'a>(
        &mut self,
        texts: impl IntoIterator<Item = &'a str>,
        integers: [i64; INTEGERS.len()],
        numbers: [Option<f64>; NUMBERS.len()],
        properties: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for text in texts {
            self.push_text(text);
        }
        let count = self.push_pairs(properties);
        self.end_row(integers, numbers, count);
    }

    /// Appends one string of the row: after the spans, the row's `TEXTS` in their order,
    /// then each property's name and value; `end_row` ends it.
    pub fn push_text(&mut self, text: &str) {
        self.text.push_str(text);
        self.ends.push(self.text.len() as u32);
    }

    /// Ends the row whose strings `push_text` appended: its `integers` in the order
    /// `INTEGERS` names them, `numbers` as `NUMBERS` does (a missing or not finite one as
    /// None, as the log's JSON writes null), and how many properties it has.
    pub fn end_row(
        &mut self,
        integers: [i64; INTEGERS.len()],
        numbers: [Option<f64>; NUMBERS.len()],
        properties: i64,
    ) {
        self.integers.extend_from_slice(&integers);
        self.numbers.extend(
            numbers
                .iter()
                .map(|number| number.filter(|n| n.is_finite()).unwrap_or(f64::NAN)),
        );
        self.integers.push(properties);
    }

    /// How many spans the tape holds.
    pub fn spans(&self) -> usize {
        self.spans
    }

    /// The row written, or None when what was written is not one (fields missing, or more
    /// than a row).
    pub(super) fn row(&self) -> Option<Row<'_>> {
        let mut cursor = Cursor {
            tape: self,
            text: 0,
            integer: 0,
            number: 0,
        };
        let mut spans = Vec::with_capacity(self.spans);
        for _ in 0..self.spans {
            let [span_id, parent_id, name, status] = cursor.texts()?;
            let [start_time, duration_ms] = cursor.numbers()?;
            let attributes = cursor.pairs()?;
            spans.push(SpanRow {
                span_id,
                parent_id,
                name,
                start_time,
                duration_ms,
                status,
                attributes,
            });
        }
        let [request_id, organization, project, user_id, session_id, session_name, session_path, method, path, requested_model, model, provider, error_code, cache_status, cache_tier, firewall_verdict, finish_reason] =
            cursor.texts()?;
        let [status, prompt_tokens, completion_tokens, cached_tokens, fallback_used, stream] =
            cursor.integers()?;
        let [ttft_ms, cost_usd] = cursor.numbers()?.map(|n| (!n.is_nan()).then_some(n));
        let properties = cursor.pairs()?;
        cursor.at_end().then_some(Row {
            request_id,
            organization,
            project,
            user_id,
            session_id,
            session_name,
            session_path,
            properties,
            method,
            path,
            requested_model,
            model,
            provider,
            fallback_used: fallback_used != 0,
            status,
            error_code,
            ttft_ms,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            cost_usd,
            cache_status,
            cache_tier,
            firewall_verdict,
            stream: stream != 0,
            finish_reason,
            spans,
        })
    }

    /// Each pair's name then value; how many pairs.
    fn push_pairs<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> i64 {
        let mut count = 0;
        for (name, value) in pairs {
            self.push_text(name);
            self.push_text(value);
            count += 1;
        }
        count
    }
}

/// Where `Tape::row` has read to in each of the tape's sequences.
struct Cursor<'a> {
    tape: &'a Tape,
    text: usize,
    integer: usize,
    number: usize,
}

impl<'a> Cursor<'a> {
    fn text(&mut self) -> Option<Cow<'a, str>> {
        let ends = &self.tape.ends;
        let end = *ends.get(self.text)? as usize;
        let start = match self.text {
            0 => 0,
            index => ends[index - 1] as usize,
        };
        self.text += 1;
        self.tape.text.get(start..end).map(Cow::Borrowed)
    }

    fn texts<const N: usize>(&mut self) -> Option<[Cow<'a, str>; N]> {
        let mut texts = [const { Cow::Borrowed("") }; N];
        for text in &mut texts {
            *text = self.text()?;
        }
        Some(texts)
    }

    fn integers<const N: usize>(&mut self) -> Option<[i64; N]> {
        let found = self.tape.integers.get(self.integer..self.integer + N)?;
        self.integer += N;
        found.try_into().ok()
    }

    fn numbers<const N: usize>(&mut self) -> Option<[f64; N]> {
        let found = self.tape.numbers.get(self.number..self.number + N)?;
        self.number += N;
        found.try_into().ok()
    }

    /// A count, then that many name and value pairs, sorted by name (stable), as the JSON
    /// reader gives an object of strings.
    fn pairs(&mut self) -> Option<Attributes<'a>> {
        let [count] = self.integers()?;
        let count = usize::try_from(count).ok()?;
        let mut pairs = Vec::with_capacity(count);
        for _ in 0..count {
            let [name, value] = self.texts()?;
            pairs.push((name, value));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Some(pairs)
    }

    fn at_end(&self) -> bool {
        let tape = self.tape;
        (self.text, self.integer, self.number)
            == (tape.ends.len(), tape.integers.len(), tape.numbers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span<'a>(span_id: &'a str, parent_id: &'a str, name: &'a str) -> TraceSpan<'a> {
        TraceSpan {
            span_id,
            parent_id,
            name,
            start_time: 1.5,
            duration_ms: f64::INFINITY,
            status: "ok",
        }
    }

    fn tape() -> Tape {
        let mut tape = Tape::default();
        tape.push_span(&span("a1", "", "request"), [("trace_id", "ff")]);
        tape.push_span(&span("a2", "a1", "auth"), [("z", "1"), ("b", "2")]);
        let mut texts = TEXTS.map(|name| name.to_string());
        texts[0] = "req_é".into();
        tape.push_fields(
            texts.iter().map(String::as_str),
            [200, 3, 5, 1, 1, 0],
            [Some(2.5), Some(f64::NAN)],
            [("env", "dev")],
        );
        tape
    }

    #[test]
    fn a_row_is_read_back_as_it_was_written() {
        let tape = tape();
        assert_eq!(tape.spans(), 2);
        let row = tape.row().expect("a row");
        assert_eq!(row.request_id, "req_é");
        assert_eq!(
            (row.project.as_ref(), row.finish_reason.as_ref()),
            ("project", "finish_reason")
        );
        assert_eq!(
            (
                row.status,
                row.prompt_tokens,
                row.completion_tokens,
                row.cached_tokens
            ),
            (200, 3, 5, 1)
        );
        assert!(row.fallback_used && !row.stream);
        assert_eq!((row.ttft_ms, row.cost_usd), (Some(2.5), None));
        assert_eq!(row.properties, [("env".into(), "dev".into())]);
        let names: Vec<&str> = row.spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["request", "auth"]);
        let auth = &row.spans[1];
        assert_eq!(
            (auth.span_id.as_ref(), auth.parent_id.as_ref()),
            ("a2", "a1")
        );
        assert_eq!((auth.start_time, auth.duration_ms), (1.5, 0.0));
        let keys: Vec<&str> = auth.attributes.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "z"]);
        assert!(matches!(row.request_id, Cow::Borrowed(_)));
    }

    #[test]
    fn a_tape_that_is_not_one_row_reads_as_none() {
        assert!(Tape::default().row().is_none());
        let mut spans_only = Tape::default();
        spans_only.push_span(&span("a1", "", "request"), []);
        assert!(spans_only.row().is_none());
        let mut short = Tape::default();
        short.push_fields(["r"; 16], [0; 6], [None; 2], []);
        assert!(short.row().is_none());
        let mut long = tape();
        long.push_text("more");
        assert!(long.row().is_none());
    }
}
