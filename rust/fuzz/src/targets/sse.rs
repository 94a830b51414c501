//! The SSE parser and the OpenAI stream relay. Invariants: no panic; any split of the same
//! bytes gives the same blocks, events, relayed bytes and capture (chunking invariance); the
//! blocks put back together are the input, and so is the relay's output unless it strips the
//! usage chunk or a block outgrew the limit; the parser never holds more than its limit.
//! The translators (Anthropic and Gemini events to OpenAI chunks, OpenAI chunks to Anthropic
//! events) never panic, and the Anthropic and Messages ones give the same bytes and capture
//! however the input is cut. (Gemini's watch for a bare JSON error line follows the Python
//! relay's, which sees a line start after a CR only at a read boundary.)

use floopy_core::sse::{
    AnthropicToOpenAI, Clock, EventView, GeminiToOpenAI, OpenAIStreamRelay, SseEvent, SseParser,
    StreamCapture, StreamTranslate, ToMessages,
};

use super::{rng_for, Target};
use crate::gen;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "sse",
    about: "SSE parser and OpenAI relay: chunking invariance, lossless relay, bounded buffer",
    generate,
    check,
    dictionary: DICTIONARY,
    max_len: 32 * 1024,
};

const DICTIONARY: &[&[u8]] = &[
    b"data: ",
    b"data:",
    b"event: ",
    b"id: ",
    b"retry: 10",
    b": keep-alive",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"\xef\xbb\xbf",
    b"[DONE]",
    b"{\"choices\":[]}",
    b"\"delta\":{\"content\":\"x\"}",
    b"\"usage\":{\"prompt_tokens\":1}",
    b"\"index\":0",
    b"\"tool_calls\":[{\"index\":4294967295}]",
    b"\"error\":{\"message\":\"m\"}",
    b"\xff",
    b"{\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}",
    b"{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"input\":{\"a\":1}}}",
    b"{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"x\"}}",
    b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}",
    b"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"STOP\"}]}",
    b"{\"functionCall\":{\"name\":\"f\",\"args\":{\"b\":1}}}",
    b"{\"error\":{\"code\":429}}",
];

/// A clock that never moves, so that captures compare equal across runs.
struct Frozen;

impl Clock for Frozen {
    fn elapsed_ms(&self) -> f64 {
        1.0
    }
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.one_in(10) {
        out.extend_from_slice(b"\xef\xbb\xbf");
    }
    for _ in 0..rng.small(10) {
        let newline: &[u8] = rng.pick(&[b"\n".as_slice(), b"\r\n", b"\r"]);
        for _ in 0..rng.between(1, 3) {
            let line = match rng.below(8) {
                0 => ": keep-alive".to_owned(),
                1 => format!("event: {}", rng.pick(&["message", "error", "", "x y"])),
                2 => format!("id: {}", rng.below(100)),
                3 => "data: [DONE]".to_owned(),
                4 => "retry: 1000".to_owned(),
                _ => format!("data: {}", chunk(rng)),
            };
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(newline);
        }
        if !rng.one_in(8) {
            out.extend_from_slice(newline);
        }
    }
    out
}

/// An OpenAI chunk, or any JSON now and then.
fn chunk(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => {
            let mut other = String::new();
            gen::value(rng, 3, &mut other);
            other
        }
        1 => format!(
            "{{\"choices\":[],\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":2,\"total_tokens\":3}}}}",
            gen::number(rng)
        ),
        2 => format!(
            "{{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":{},\"id\":\"c\",\"function\":{{\"name\":\"f\",\"arguments\":{}}}}}]}}}}]}}",
            rng.below(4),
            gen::string(rng)
        ),
        3 => "{\"error\":{\"message\":\"overloaded\"}}".to_owned(),
        _ => format!(
            "{{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{{\"index\":{},\"delta\":{{\"content\":{}}},\"finish_reason\":{}}}]}}",
            rng.below(2),
            gen::string(rng),
            rng.pick(&["null", "\"stop\"", "\"length\""])
        ),
    }
}

/// Block limits: the default, and small ones that streams outgrow.
const LIMITS: [usize; 3] = [floopy_core::sse::DEFAULT_MAX_EVENT_BYTES, 1, 40];

fn check(input: &[u8]) -> bool {
    let mut rng = rng_for(input);
    let splits = partitions(input.len(), &mut rng);
    let mut accepted = false;
    for max_event_bytes in LIMITS {
        let whole = parse(input, &[input.len()], max_event_bytes);
        if !whole.oversized {
            assert_eq!(whole.blocks.concat(), input, "the blocks are not the input");
        }
        let relayed = relay(input, &[input.len()], max_event_bytes, false);
        if !relayed.1.oversized {
            assert_eq!(relayed.0, input, "the relay changed the stream");
        }
        let stripped = relay(input, &[input.len()], max_event_bytes, true);
        for splits in &splits {
            let parsed = parse(input, splits, max_event_bytes);
            assert_eq!(parsed, whole, "limit {max_event_bytes}, split {splits:?}");
            let split = relay(input, splits, max_event_bytes, false);
            assert_eq!(split, relayed, "limit {max_event_bytes}, split {splits:?}");
            let split = relay(input, splits, max_event_bytes, true);
            assert_eq!(split, stripped, "limit {max_event_bytes}, split {splits:?}");
        }
        for make in [anthropic as Make, messages] {
            let whole = translate(make(max_event_bytes), input, &[input.len()]);
            for splits in &splits {
                let split = translate(make(max_event_bytes), input, splits);
                assert_eq!(split, whole, "limit {max_event_bytes}, split {splits:?}");
            }
        }
        for splits in &splits {
            translate(gemini(max_event_bytes), input, splits);
        }
        accepted |= !whole.oversized && whole.events.iter().any(|event| !event.data.is_empty());
    }
    accepted
}

/// Piece lengths: byte by byte, pairs, and a few random cuts.
fn partitions(len: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut all = vec![vec![2; len.div_ceil(2)]];
    if len <= 8192 {
        all.push(vec![1; len]);
    }
    for _ in 0..3 {
        let mut pieces = Vec::new();
        let mut left = len;
        while left > 0 {
            let piece = rng.between(1, left.min(64));
            pieces.push(piece);
            left -= piece;
        }
        all.push(pieces);
    }
    all
}

fn pieces<'a>(input: &'a [u8], splits: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut start = 0;
    splits.iter().map(move |&len| {
        let end = (start + len).min(input.len());
        let piece = &input[start..end];
        start = end;
        piece
    })
}

#[derive(Debug, PartialEq)]
struct Parsed {
    blocks: Vec<Vec<u8>>,
    events: Vec<SseEvent>,
    oversized: bool,
}

fn parse(input: &[u8], splits: &[usize], max_event_bytes: usize) -> Parsed {
    let mut parser = SseParser::with_max_event_bytes(max_event_bytes);
    let mut parsed = Parsed {
        blocks: Vec::new(),
        events: Vec::new(),
        oversized: false,
    };
    let mut on_block = |raw: &[u8], event: Option<EventView<'_>>| {
        parsed.blocks.push(raw.to_vec());
        parsed.events.extend(event.map(|event| event.to_event(raw)));
    };
    for piece in pieces(input, splits) {
        parser.feed_blocks(piece, &mut on_block);
        assert!(
            parser.pending() <= max_event_bytes,
            "{} bytes pending over the limit of {max_event_bytes}",
            parser.pending()
        );
    }
    let oversized = parser.oversized();
    parser.finish_blocks(&mut on_block);
    parsed.oversized = oversized;
    parsed
}

fn relay(
    input: &[u8],
    splits: &[usize],
    max_event_bytes: usize,
    strip_usage: bool,
) -> (Vec<u8>, StreamCapture) {
    let mut relay =
        OpenAIStreamRelay::with_clock(strip_usage, Frozen).with_max_event_bytes(max_event_bytes);
    let mut out = Vec::new();
    for piece in pieces(input, splits) {
        out.extend(relay.feed(piece));
    }
    out.extend(relay.finish());
    (out, relay.capture().clone())
}

type Make = fn(usize) -> Box<dyn StreamTranslate>;

fn anthropic(max_event_bytes: usize) -> Box<dyn StreamTranslate> {
    let translator = AnthropicToOpenAI::with_clock("m", true, Some("json"), Frozen);
    Box::new(
        translator
            .with_created(0)
            .with_max_event_bytes(max_event_bytes),
    )
}

fn gemini(max_event_bytes: usize) -> Box<dyn StreamTranslate> {
    let translator = GeminiToOpenAI::with_clock("m", true, "id", Frozen);
    Box::new(
        translator
            .with_created(0)
            .with_max_event_bytes(max_event_bytes),
    )
}

fn messages(max_event_bytes: usize) -> Box<dyn StreamTranslate> {
    let inner = OpenAIStreamRelay::with_clock(false, Frozen).with_max_event_bytes(max_event_bytes);
    Box::new(ToMessages::new(Box::new(inner), "m", "id"))
}

fn translate(
    mut translator: Box<dyn StreamTranslate>,
    input: &[u8],
    splits: &[usize],
) -> (Vec<u8>, StreamCapture) {
    let mut out = Vec::new();
    for piece in pieces(input, splits) {
        translator.feed(piece, &mut out);
        if translator.capture().oversized {
            break; // the caller stops the stream here
        }
    }
    translator.finish(&mut out);
    (out, translator.capture().clone())
}
