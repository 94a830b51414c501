//! Server-sent events (`text/event-stream`, as the WHATWG HTML standard defines it), parsed
//! incrementally: upstream bytes arrive in pieces of any size, and every event keeps its exact
//! bytes so that a relay can forward it unchanged.
//!
//! Two departures from the standard, both for relaying:
//! - `finish` delivers an event left without its blank line at end of stream (some upstreams
//!   close right after their last `data:` line); the standard would drop it.
//! - Bytes that dispatch no event (comments such as keep-alives, a lone `id:`) still come out,
//!   through [`SseParser::feed_blocks`], so a relay forwards them at once.
//!
//! One guard the standard leaves out: a block (an event, its blank line included) may be at
//! most `max_event_bytes` long, so an upstream that never ends a line or an event cannot make
//! the parser buffer without bound. A longer block is dropped and the parser stops: it is
//! [`oversized`](SseParser::oversized) and ignores the rest of the stream, which its user
//! ends with an error.
//!
//! [`openai`] builds on this parser to relay an OpenAI chat-completions stream; [`anthropic`]
//! and [`gemini`] translate those providers' streams into OpenAI chunks, and [`messages`]
//! OpenAI chunks into Anthropic Messages events, all behind one [`StreamTranslate`].

pub mod anthropic;
pub mod gemini;
pub(crate) mod json;
pub mod messages;
pub mod openai;
pub mod translate;

pub use anthropic::AnthropicToOpenAI;
pub use gemini::GeminiToOpenAI;
pub use messages::MessagesWriter;
pub use openai::{
    Clock, OpenAIStreamRelay, Stopwatch, StreamCapture, StreamUsage, ToolCall,
    DEFAULT_MAX_CAPTURE_BYTES,
};
pub use translate::{StreamTranslate, ToMessages};

use memchr::{memchr, memchr2};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The default longest block, in bytes (16 MiB): far beyond any real event, small enough that
/// a runaway stream costs bounded memory.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event, owning its text and its bytes as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name; `None` when absent or empty (the standard's "message").
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The last event id seen in the stream (it carries over events, as in the standard).
    pub id: Option<String>,
    /// The event's bytes exactly as received, its blank-line terminator included.
    pub raw: Vec<u8>,
}

/// An event borrowed from the parser's buffers, valid during one `feed_blocks` callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    pub event: Option<&'a str>,
    pub data: &'a str,
    pub id: Option<&'a str>,
}

impl EventView<'_> {
    pub fn to_event(self, raw: &[u8]) -> SseEvent {
        SseEvent {
            event: self.event.map(str::to_owned),
            data: self.data.to_owned(),
            id: self.id.map(str::to_owned),
            raw: raw.to_vec(),
        }
    }
}

/// The incremental parser. One per stream; `finish` ends the stream and resets it.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the open block: its complete lines, then the start of a partial line.
    buf: Vec<u8>,
    /// Where the partial line begins in `buf`.
    line_start: usize,
    /// Where the search for the partial line's end resumes, so a line that arrives byte by
    /// byte is scanned once.
    scan_from: usize,
    bom_checked: bool,
    fields: Fields,
    max_event_bytes: usize,
    /// A block outgrew `max_event_bytes`: everything from it on is dropped.
    oversized: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser whose blocks may be at most `max_event_bytes` long, blank line included.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            line_start: 0,
            scan_from: 0,
            bom_checked: false,
            fields: Fields::default(),
            max_event_bytes,
            oversized: false,
        }
    }

    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Whether a block outgrew `max_event_bytes`. It was dropped, and so is everything fed
    /// after it, until `finish` readies the parser for a new stream.
    pub fn oversized(&self) -> bool {
        self.oversized
    }

    /// Bytes held for the block still open: received, but not yet part of a whole block.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.feed_blocks(chunk, |raw, event| {
            if let Some(event) = event {
                events.push(event.to_event(raw));
            }
        });
        events
    }

    /// Ends the stream: returns the event left without its blank line, if any.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.finish_blocks(|raw, event| {
            if let Some(event) = event {
                events.push(event.to_event(raw));
            }
        });
        events
    }

    /// Feeds bytes and calls `on_block` for every block they close (the bytes up to and
    /// including a blank line), with the block's raw bytes and the event it dispatches, if any.
    /// The raw bytes of all blocks, in order, are the input, less what is still pending.
    pub fn feed_blocks(
        &mut self,
        chunk: &[u8],
        mut on_block: impl FnMut(&[u8], Option<EventView<'_>>),
    ) {
        if self.oversized {
            return;
        }
        self.buf.extend_from_slice(chunk);
        self.process(false, &mut on_block);
    }

    /// Ends the stream like [`finish`](Self::finish), reporting the last block (if any bytes
    /// are pending) to `on_block`. The parser is then ready for a new stream.
    pub fn finish_blocks(&mut self, mut on_block: impl FnMut(&[u8], Option<EventView<'_>>)) {
        if !self.oversized {
            self.process(true, &mut on_block);
        }
        *self = Self::with_max_event_bytes(self.max_event_bytes);
    }

    /// The data of each event `chunk` completes (`None`: the end of the body, what it
    /// leaves), copied out of the parser's buffers: for translators that decode each event
    /// whole.
    pub fn datas(&mut self, chunk: Option<&[u8]>) -> Vec<String> {
        let mut datas = Vec::new();
        let mut collect = |_: &[u8], event: Option<EventView<'_>>| {
            if let Some(event) = event {
                datas.push(event.data.to_owned());
            }
        };
        match chunk {
            Some(chunk) => self.feed_blocks(chunk, &mut collect),
            None => self.finish_blocks(&mut collect),
        }
        datas
    }

    fn process(&mut self, at_eof: bool, on_block: &mut impl FnMut(&[u8], Option<EventView<'_>>)) {
        if !self.skip_bom(at_eof) {
            // Bytes that may begin a BOM belong to the first block: they count towards its
            // limit while they wait, or a stream cut short after them would be dropped
            // unannounced at `finish`.
            if self.buf.len() > self.max_event_bytes {
                self.drop_oversized();
            }
            return;
        }
        let mut block_start = 0;
        while let Some((line_end, next)) = self.next_line(at_eof) {
            let line = &self.buf[self.line_start..line_end];
            if line.is_empty() {
                if next - block_start > self.max_event_bytes {
                    self.drop_oversized();
                    return;
                }
                on_block(&self.buf[block_start..next], self.fields.view());
                self.fields.end_block();
                block_start = next;
            } else {
                self.fields.apply(line);
            }
            self.line_start = next;
            self.scan_from = next;
        }
        if self.buf.len() - block_start > self.max_event_bytes {
            self.drop_oversized();
        } else if at_eof {
            // `finish_blocks` resets the parser afterwards, so nothing is consumed here.
            self.flush_tail(block_start, on_block);
        } else {
            self.consume(block_start);
        }
    }

    /// Gives up on the stream: the open block is too long to be an event anyone sends.
    fn drop_oversized(&mut self) {
        self.oversized = true;
        self.buf = Vec::new(); // frees the memory, not just the length
        self.line_start = 0;
        self.scan_from = 0;
        self.fields.end_block();
    }

    /// A BOM is only possible at the very start; wait until three bytes tell whether it is one.
    fn skip_bom(&mut self, at_eof: bool) -> bool {
        if self.bom_checked {
            return true;
        }
        let seen = self.buf.len().min(BOM.len());
        if self.buf[..seen] != BOM[..seen] {
            self.bom_checked = true;
            return true;
        }
        if seen < BOM.len() && !at_eof {
            return false;
        }
        if seen == BOM.len() {
            self.line_start = BOM.len();
            self.scan_from = BOM.len();
        }
        self.bom_checked = true;
        true
    }

    /// The end of the partial line and where the next line starts, once known. A CR as the
    /// last byte received leaves the line open until the next byte says whether a LF follows,
    /// so that a CRLF split across reads stays one line end, whatever the partition.
    fn next_line(&mut self, at_eof: bool) -> Option<(usize, usize)> {
        let Some(offset) = memchr2(b'\n', b'\r', &self.buf[self.scan_from..]) else {
            self.scan_from = self.buf.len();
            return None;
        };
        let end = self.scan_from + offset;
        if self.buf[end] == b'\n' {
            return Some((end, end + 1));
        }
        match self.buf.get(end + 1) {
            Some(b'\n') => Some((end, end + 2)),
            Some(_) => Some((end, end + 1)),
            None if at_eof => Some((end, end + 1)),
            None => {
                self.scan_from = end;
                None
            }
        }
    }

    /// At end of stream: the unterminated last line counts as a line, and whatever the open
    /// block holds comes out as a block.
    fn flush_tail(
        &mut self,
        block_start: usize,
        on_block: &mut impl FnMut(&[u8], Option<EventView<'_>>),
    ) {
        let tail = &self.buf[self.line_start..];
        if !tail.is_empty() {
            self.fields.apply(tail);
        }
        if block_start < self.buf.len() {
            on_block(&self.buf[block_start..], self.fields.view());
            self.fields.end_block();
        }
    }

    fn consume(&mut self, len: usize) {
        self.buf.drain(..len);
        self.line_start -= len;
        self.scan_from -= len;
    }
}

/// The fields of the event being built, plus the last event id, which outlives events.
#[derive(Debug, Default)]
struct Fields {
    event: String,
    data: String,
    has_data: bool,
    last_id: String,
}

impl Fields {
    fn apply(&mut self, line: &[u8]) {
        if line[0] == b':' {
            return;
        }
        let (name, value) = match memchr(b':', line) {
            Some(colon) => (&line[..colon], strip_one_space(&line[colon + 1..])),
            None => (line, &line[line.len()..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                push_lossy(&mut self.data, value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                push_lossy(&mut self.event, value);
            }
            // The standard ignores an id holding NUL, so a stream cannot poison reconnection.
            b"id" if !value.contains(&0) => {
                self.last_id.clear();
                push_lossy(&mut self.last_id, value);
            }
            // `retry:` steers browser reconnection, which a relay leaves to its client.
            _ => {}
        }
    }

    /// The event a blank line would dispatch now: none unless a `data:` line was seen.
    fn view(&self) -> Option<EventView<'_>> {
        self.has_data.then(|| EventView {
            event: non_empty(&self.event),
            data: &self.data,
            id: non_empty(&self.last_id),
        })
    }

    fn end_block(&mut self) {
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

fn strip_one_space(value: &[u8]) -> &[u8] {
    value.strip_prefix(b" ").unwrap_or(value)
}

/// Lines are split on CR and LF, bytes that never occur inside a UTF-8 sequence, so decoding
/// line by line gives the text that decoding the whole stream would.
fn push_lossy(target: &mut String, bytes: &[u8]) {
    target.push_str(&String::from_utf8_lossy(bytes));
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: Option<&str>, data: &str, id: Option<&str>, raw: &[u8]) -> SseEvent {
        SseEvent {
            event: name.map(str::to_owned),
            data: data.to_owned(),
            id: id.map(str::to_owned),
            raw: raw.to_vec(),
        }
    }

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = parser.feed(input);
        events.extend(parser.finish());
        events
    }

    fn parse_bytewise(input: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events: Vec<_> = input.iter().flat_map(|b| parser.feed(&[*b])).collect();
        events.extend(parser.finish());
        events
    }

    fn data_of(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn lf_stream_yields_events_with_their_raw_bytes() {
        let events = parse_whole(b"data: one\n\ndata: two\n\n");
        assert_eq!(
            events,
            vec![
                event(None, "one", None, b"data: one\n\n"),
                event(None, "two", None, b"data: two\n\n"),
            ]
        );
    }

    #[test]
    fn event_completes_only_on_its_blank_line() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: one\n").is_empty());
        assert_eq!(data_of(&parser.feed(b"\n")), ["one"]);
    }

    #[test]
    fn crlf_split_across_feeds_is_one_line_end() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        assert!(parser.feed(b"\n\r").is_empty());
        let events = parser.feed(b"\ndata: b\r\n\r\n");
        assert_eq!(
            events,
            vec![
                event(None, "a", None, b"data: a\r\n\r\n"),
                event(None, "b", None, b"data: b\r\n\r\n"),
            ]
        );
    }

    #[test]
    fn cr_only_line_ends() {
        let input = b"event: ping\rdata: x\rdata: y\r\rdata: z\r\r";
        let events = parse_whole(input);
        assert_eq!(
            events,
            vec![
                event(
                    Some("ping"),
                    "x\ny",
                    None,
                    b"event: ping\rdata: x\rdata: y\r\r"
                ),
                event(None, "z", None, b"data: z\r\r"),
            ]
        );
        assert_eq!(parse_bytewise(input), events);
    }

    #[test]
    fn cr_at_end_of_read_waits_for_the_next_byte() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: x\r\r").is_empty());
        assert_eq!(parser.feed(b"d")[0].raw, b"data: x\r\r");
    }

    #[test]
    fn comments_are_skipped_and_comment_only_blocks_dispatch_nothing() {
        let input = b": keep-alive\n\n:another\ndata: x\n: inside\n\n";
        let events = parse_whole(input);
        assert_eq!(
            events,
            vec![event(None, "x", None, b":another\ndata: x\n: inside\n\n")]
        );
    }

    #[test]
    fn blocks_cover_every_byte_including_comment_only_ones() {
        let input = b": keep-alive\n\ndata: x\n\n: bye";
        let mut parser = SseParser::new();
        let mut raws: Vec<Vec<u8>> = Vec::new();
        let mut dispatched = Vec::new();
        parser.feed_blocks(input, |raw, ev| {
            raws.push(raw.to_vec());
            dispatched.push(ev.is_some());
        });
        parser.finish_blocks(|raw, ev| {
            raws.push(raw.to_vec());
            dispatched.push(ev.is_some());
        });
        assert_eq!(raws, [&b": keep-alive\n\n"[..], b"data: x\n\n", b": bye"]);
        assert_eq!(dispatched, [false, true, false]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = parse_whole(b"data: a\ndata:b\ndata\ndata:  c\n\n");
        assert_eq!(data_of(&events), ["a\nb\n\n c"]);
    }

    #[test]
    fn only_one_space_after_the_colon_is_stripped() {
        assert_eq!(data_of(&parse_whole(b"data:  two\n\n")), [" two"]);
        assert_eq!(data_of(&parse_whole(b"data:none\n\n")), ["none"]);
    }

    #[test]
    fn empty_data_line_dispatches_an_empty_event() {
        assert_eq!(data_of(&parse_whole(b"data:\n\n")), [""]);
        assert_eq!(data_of(&parse_whole(b"data\n\ndata\ndata\n\n")), ["", "\n"]);
    }

    #[test]
    fn event_names_reset_after_each_event() {
        let events = parse_whole(b"event: delta\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n");
        let names: Vec<_> = events.iter().map(|e| e.event.as_deref()).collect();
        assert_eq!(names, [Some("delta"), None, None]);
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_its_name_does_not_leak() {
        let events = parse_whole(b"event: lonely\n\ndata: x\n\n");
        assert_eq!(events, vec![event(None, "x", None, b"data: x\n\n")]);
    }

    #[test]
    fn last_event_id_carries_over_and_rejects_nul() {
        let events =
            parse_whole(b"id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n");
        let ids: Vec<_> = events.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("7"), Some("7"), Some("7"), None]);
    }

    #[test]
    fn unknown_fields_and_retry_are_ignored() {
        let events = parse_whole(b"retry: 10\nfoo: bar\ndata: x\n\n");
        assert_eq!(
            events,
            vec![event(None, "x", None, b"retry: 10\nfoo: bar\ndata: x\n\n")]
        );
    }

    #[test]
    fn leading_bom_is_ignored_but_kept_in_raw() {
        let input = b"\xEF\xBB\xBFdata: x\n\n";
        let events = parse_whole(input);
        assert_eq!(events, vec![event(None, "x", None, input)]);
        assert_eq!(parse_bytewise(input), events);
    }

    #[test]
    fn bom_later_in_the_stream_is_data() {
        let events = parse_whole(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n");
        assert_eq!(data_of(&events), ["a"]);
    }

    #[test]
    fn stream_shorter_than_a_bom_still_parses_at_finish() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"\xEF").is_empty());
        assert!(parser.finish().is_empty());
        assert_eq!(data_of(&parse_whole(b"data")), [""]);
    }

    #[test]
    fn finish_flushes_an_event_without_its_blank_line() {
        let mut parser = SseParser::new();
        assert_eq!(data_of(&parser.feed(b"data: a\n\ndata: b\n")), ["a"]);
        assert_eq!(parser.finish(), vec![event(None, "b", None, b"data: b\n")]);
        assert_eq!(
            parse_whole(b"data: c"),
            vec![event(None, "c", None, b"data: c")]
        );
        assert_eq!(
            parse_whole(b"data: d\r"),
            vec![event(None, "d", None, b"data: d\r")]
        );
    }

    #[test]
    fn finish_resets_the_parser_for_a_new_stream() {
        let mut parser = SseParser::new();
        parser.feed(b"id: 1\nevent: e\ndata: partial");
        parser.finish();
        assert_eq!(
            parser.feed(b"data: next\n\n"),
            vec![event(None, "next", None, b"data: next\n\n")]
        );
    }

    #[test]
    fn done_sentinel_is_an_ordinary_event() {
        let events = parse_whole(b"data: {\"a\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(data_of(&events), ["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(data_of(&parse_whole(b"data: a\xFFb\n\n")), ["a\u{FFFD}b"]);
    }

    #[test]
    fn the_default_cap_is_16_mib() {
        assert_eq!(SseParser::new().max_event_bytes(), 16 * 1024 * 1024);
        assert_eq!(DEFAULT_MAX_EVENT_BYTES, 16 * 1024 * 1024);
    }

    #[test]
    fn a_line_that_never_ends_stops_the_parser_at_the_cap() {
        let mut parser = SseParser::with_max_event_bytes(64);
        assert!(parser.feed(b"data: ").is_empty());
        for _ in 0..3 {
            assert!(parser.feed(&[b'x'; 16]).is_empty());
        }
        assert!(parser.feed(&[b'x'; 10]).is_empty());
        assert!(!parser.oversized(), "64 bytes are not over the cap");
        assert_eq!(parser.pending(), 64);
        assert!(parser.feed(b"x").is_empty());
        assert!(parser.oversized());
        assert_eq!(parser.pending(), 0, "the oversized bytes are dropped");
        assert!(
            parser.feed(b"\n\ndata: later\n\n").is_empty(),
            "the rest of the stream is ignored"
        );
        assert!(parser.finish().is_empty());
    }

    #[test]
    fn finish_after_an_oversized_event_readies_the_parser_with_its_cap() {
        let mut parser = SseParser::with_max_event_bytes(10);
        parser.feed(b"data: 0123456789");
        assert!(parser.oversized());
        parser.finish();
        assert!(!parser.oversized());
        assert_eq!(parser.max_event_bytes(), 10);
        assert_eq!(data_of(&parser.feed(b"data: a\n\n")), ["a"]);
    }

    #[test]
    fn events_before_the_oversized_one_still_come_out() {
        let mut parser = SseParser::with_max_event_bytes(16);
        let events = parser.feed(b"data: one\n\ndata: two\n\ndata: far too long here\n\n");
        assert_eq!(data_of(&events), ["one", "two"]);
        assert!(parser.oversized());
    }

    #[test]
    fn the_cap_counts_the_whole_block_and_is_inclusive() {
        let exact = b"data: 0123456789\n\n"; // 18 bytes
        let mut parser = SseParser::with_max_event_bytes(exact.len());
        assert_eq!(data_of(&parser.feed(exact)), ["0123456789"]);
        assert!(!parser.oversized());
        let mut parser = SseParser::with_max_event_bytes(exact.len() - 1);
        assert!(parser.feed(exact).is_empty());
        assert!(parser.oversized());
    }

    #[test]
    fn many_short_lines_count_towards_one_event() {
        let mut parser = SseParser::with_max_event_bytes(32);
        for _ in 0..5 {
            assert!(parser.feed(b"data: abcd\n").is_empty());
        }
        assert!(parser.oversized());
    }

    #[test]
    fn an_oversized_event_is_refused_however_it_is_cut() {
        let input: &[u8] = b"data: ok\n\ndata: this event is too long\n\ndata: after\n\n";
        for cut in 0..=input.len() {
            let mut parser = SseParser::with_max_event_bytes(20);
            let mut events = parser.feed(&input[..cut]);
            events.extend(parser.feed(&input[cut..]));
            assert_eq!(data_of(&events), ["ok"], "cut at {cut}");
            assert!(parser.oversized(), "cut at {cut}");
        }
    }

    #[test]
    fn the_start_of_a_bom_counts_towards_the_limit_while_it_waits() {
        let mut parser = SseParser::with_max_event_bytes(1);
        parser.feed(b"\xEF");
        assert!(!parser.oversized());
        parser.feed(b"\xBB");
        assert!(parser.oversized(), "two bytes held over a limit of one");
        assert_eq!(parser.pending(), 0);
        let mut whole = SseParser::with_max_event_bytes(1);
        whole.feed(b"\xEF\xBB");
        assert!(whole.oversized());
    }

    #[test]
    fn pending_counts_the_bytes_of_the_open_block() {
        let mut parser = SseParser::new();
        parser.feed(b"data: a\n\ndata: b");
        assert_eq!(parser.pending(), b"data: b".len());
        parser.feed(b"\n\n");
        assert_eq!(parser.pending(), 0);
    }

    #[test]
    fn every_partition_into_two_feeds_matches_feeding_whole() {
        let input: &[u8] =
            b"\xEF\xBB\xBF: hi\r\n\r\nevent: a\r\nid: 1\r\ndata: x\r\ndata: y\r\n\r\n\
                             data: z\r\rdata: w\n\n: tail\ndata: last";
        let whole = parse_whole(input);
        assert_eq!(data_of(&whole), ["x\ny", "z", "w", "last"]);
        for cut in 0..=input.len() {
            let mut parser = SseParser::new();
            let mut events = parser.feed(&input[..cut]);
            events.extend(parser.feed(&input[cut..]));
            events.extend(parser.finish());
            assert_eq!(events, whole, "cut at {cut}");
        }
        assert_eq!(parse_bytewise(input), whole);
    }
}
