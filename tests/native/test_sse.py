"""The native SSE parser and OpenAI stream relay, through the Python binding."""

import itertools
import json
import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floopy._native import OpenAIStreamRelay, SseEvent, SseParser, StreamUsage, ToolCall

ToolCallTuple = tuple[int, str | None, str | None, str]

# --- helpers ----------------------------------------------------------------------------------


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def as_tuples(events: list[SseEvent]) -> list[tuple[str | None, str, str | None, bytes]]:
    return [(e.event, e.data, e.id, e.raw) for e in events]


def parse_pieces(pieces: list[bytes]) -> list[SseEvent]:
    parser = SseParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    return events + parser.finish()


def relay_pieces(
    pieces: list[bytes], strip_usage: bool = False
) -> tuple[list[bytes], OpenAIStreamRelay]:
    relay = OpenAIStreamRelay(strip_usage=strip_usage)
    out = [relay.feed(piece) for piece in pieces]
    out.append(relay.finish())
    return out, relay


def call_tuples(calls: list[ToolCall]) -> list[ToolCallTuple]:
    return [(c.index, c.id, c.name, c.arguments) for c in calls]


def usage_tuple(usage: StreamUsage | None) -> tuple[int, ...] | None:
    if usage is None:
        return None
    return (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
    )


def captured(relay: OpenAIStreamRelay) -> tuple[object, ...]:
    return (
        relay.content,
        relay.finish_reason,
        usage_tuple(relay.usage),
        call_tuples(relay.tool_calls),
        relay.model,
        relay.response_id,
        relay.chunk_count,
        relay.done,
        relay.error,
    )


class ReferenceReader:
    """A plain reading of the WHATWG rules on the whole input, plus Floopy's one departure:
    an event left without its blank line at end of stream is still delivered."""

    def __init__(self) -> None:
        self.events: list[tuple[str | None, str, str | None]] = []
        self.event = ""
        self.data: list[str] = []
        self.last_id = ""

    def read(self, stream: bytes) -> list[tuple[str | None, str, str | None]]:
        text = stream.decode("utf-8", errors="replace").removeprefix("\ufeff")
        *lines, tail = re.split("\r\n|\r|\n", text)
        for line in lines:
            if line:
                self.apply(line)
            else:
                self.dispatch()
        if tail:
            self.apply(tail)
        self.dispatch()
        return self.events

    def dispatch(self) -> None:
        if self.data:
            self.events.append((self.event or None, "\n".join(self.data), self.last_id or None))
        self.event, self.data = "", []

    def apply(self, line: str) -> None:
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value


# --- strategies -------------------------------------------------------------------------------

field_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12
)
line_ends = st.sampled_from(["\n", "\r\n", "\r"])
sse_lines = st.one_of(
    field_text.map(lambda text: f"data: {text}"),
    field_text.map(lambda text: f"data:{text}"),
    st.just("data"),
    field_text.map(lambda text: f": {text}"),
    st.sampled_from(["event: delta", "event:", "event: message_stop", "id: 42", "id", "retry: 5"]),
    st.just(""),
)


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(sse_lines, line_ends), max_size=16))
    body = "".join(line + end for line, end in lines)
    if draw(st.booleans()):
        body += draw(sse_lines)  # a last line without its line end
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + body).encode()


@st.composite
def streams_and_cuts(draw: st.DrawFn, streams: st.SearchStrategy[bytes]) -> tuple[bytes, list[int]]:
    stream = draw(streams)
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=24))
    return stream, cuts


def chunk(choices: list[dict[str, Any]] | None = None, **fields: object) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "model": "gpt-test",
    }
    body["choices"] = [] if choices is None else choices
    body.update(fields)
    return body


def delta_chunk(
    delta: dict[str, Any], finish_reason: str | None = None, index: int = 0
) -> dict[str, Any]:
    return chunk([{"index": index, "delta": delta, "finish_reason": finish_reason}])


USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 7,
    "total_tokens": 27,
    "prompt_tokens_details": {"cached_tokens": 8},
    "completion_tokens_details": {"reasoning_tokens": 3},
}


def sse_body(payloads: list[object], newline: str = "\n", ascii_only: bool = True) -> bytes:
    parts = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=ascii_only)
        parts.append(f"data: {data}{newline}{newline}")
    return "".join(parts).encode()


@st.composite
def openai_streams(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """An OpenAI-shaped stream and the capture it should produce."""
    pieces = draw(st.lists(field_text, max_size=6))
    calls = draw(st.lists(st.tuples(st.integers(0, 2), field_text), max_size=6))
    payloads: list[object] = [delta_chunk({"role": "assistant", "content": ""})]
    payloads += [delta_chunk({"content": piece}) for piece in pieces]
    started: set[int] = set()
    for index, fragment in calls:
        call: dict[str, Any] = {"index": index, "function": {"arguments": fragment}}
        if index not in started:
            started.add(index)
            call.update(id=f"call_{index}", type="function")
            call["function"]["name"] = f"tool_{index}"
        payloads.append(delta_chunk({"tool_calls": [call]}))
    payloads.append(delta_chunk({}, finish_reason="tool_calls" if calls else "stop"))
    with_usage = draw(st.booleans())
    if with_usage:
        payloads.append(chunk(usage=USAGE))
    payloads.append("[DONE]")
    body = sse_body(payloads, draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()))
    if draw(st.booleans()):
        body = b": keep-alive\n\n" + body
    arguments: dict[int, str] = {}
    for index, fragment in calls:
        arguments[index] = arguments.get(index, "") + fragment
    expected = {
        "content": "".join(pieces),
        "tool_calls": [(i, f"call_{i}", f"tool_{i}", arguments[i]) for i in sorted(arguments)],
        "with_usage": with_usage,
    }
    return body, expected


# --- parser: properties -----------------------------------------------------------------------


@given(streams_and_cuts(sse_streams()))
def test_events_do_not_depend_on_how_the_stream_is_split(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    whole = as_tuples(parse_pieces([stream]))
    assert as_tuples(parse_pieces(split_at(stream, cuts))) == whole


@given(sse_streams())
def test_events_match_a_reference_reading_of_the_standard(stream: bytes) -> None:
    events = parse_pieces([stream])
    assert [(e.event, e.data, e.id) for e in events] == ReferenceReader().read(stream)


@given(streams_and_cuts(st.binary(max_size=64)))
def test_arbitrary_bytes_never_fail_and_split_the_same(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    assert as_tuples(parse_pieces(split_at(stream, cuts))) == as_tuples(parse_pieces([stream]))


@given(sse_streams())
def test_byte_by_byte_feeding_matches_feeding_whole(stream: bytes) -> None:
    pieces = [stream[i : i + 1] for i in range(len(stream))]
    assert as_tuples(parse_pieces(pieces)) == as_tuples(parse_pieces([stream]))


# --- parser: cases ----------------------------------------------------------------------------


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"event: delta\r\ndata: a\r") == []
    assert parser.feed(b"\n\r") == []
    [event] = parser.feed(b"\n")
    assert as_tuples([event]) == [("delta", "a", None, b"event: delta\r\ndata: a\r\n\r\n")]


def test_cr_only_comments_and_multi_line_data() -> None:
    stream = b": hello\rid: 9\rdata: one\rdata:two\r\rdata: three\r\r"
    assert as_tuples(parse_pieces([stream])) == [
        (None, "one\ntwo", "9", b": hello\rid: 9\rdata: one\rdata:two\r\r"),
        (None, "three", "9", b"data: three\r\r"),
    ]


def test_leading_bom_is_ignored_and_kept_in_raw() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    assert as_tuples(parse_pieces([stream[:2], stream[2:]])) == [(None, "x", None, stream)]


def test_finish_flushes_an_event_without_its_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: [DONE]") == []
    assert as_tuples(parser.finish()) == [(None, "[DONE]", None, b"data: [DONE]")]


def test_event_objects_are_frozen_and_comparable() -> None:
    [event] = parse_pieces([b"event: e\ndata: d\n\n"])
    with pytest.raises(AttributeError):
        event.data = "changed"
    assert event == parse_pieces([b"event: e\ndata: d\n\n"])[0]
    assert event != parse_pieces([b"event: e\ndata: other\n\n"])[0]


# --- relay: properties ------------------------------------------------------------------------


@settings(max_examples=150)
@given(st.data(), openai_streams())
def test_relay_is_transparent_and_split_independent(
    data: st.DataObject, case: tuple[bytes, dict[str, Any]]
) -> None:
    stream, expected = case
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24))
    whole_out, whole = relay_pieces([stream])
    split_out, split = relay_pieces(split_at(stream, cuts))
    assert b"".join(whole_out) == stream
    assert b"".join(split_out) == stream
    assert captured(split) == captured(whole)
    assert whole.content == expected["content"]
    assert call_tuples(whole.tool_calls) == expected["tool_calls"]
    assert whole.done
    assert (whole.usage is not None) == expected["with_usage"]


@given(st.data(), openai_streams())
def test_stripping_relay_is_split_independent(
    data: st.DataObject, case: tuple[bytes, dict[str, Any]]
) -> None:
    stream, expected = case
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24))
    whole_out, whole = relay_pieces([stream], strip_usage=True)
    split_out, split = relay_pieces(split_at(stream, cuts), strip_usage=True)
    assert b"".join(split_out) == b"".join(whole_out)
    assert captured(split) == captured(whole)
    assert (b'"usage"' in b"".join(whole_out)) is False
    assert (whole.usage is not None) == expected["with_usage"]


# --- relay: cases -----------------------------------------------------------------------------

TEXT_STREAM = sse_body(
    [
        delta_chunk({"role": "assistant", "content": "", "refusal": None}),
        delta_chunk({"content": "Bonjour"}),
        delta_chunk({"content": ', le "monde"\n'}),
        delta_chunk({"content": "çà"}),
        delta_chunk({}, finish_reason="stop"),
        chunk(usage=USAGE),
        "[DONE]",
    ],
    ascii_only=False,
)


def test_text_stream_is_relayed_and_captured() -> None:
    out, relay = relay_pieces([TEXT_STREAM[:100], TEXT_STREAM[100:101], TEXT_STREAM[101:]])
    assert b"".join(out) == TEXT_STREAM
    assert relay.content == 'Bonjour, le "monde"\nçà'
    assert relay.finish_reason == "stop"
    assert relay.model == "gpt-test"
    assert relay.response_id == "chatcmpl-7"
    assert relay.chunk_count == 6
    assert relay.done
    assert relay.error is None
    assert relay.tool_calls == []
    assert usage_tuple(relay.usage) == (20, 7, 27, 8, 3)
    assert relay.usage == relay_pieces([TEXT_STREAM])[1].usage


def test_feed_returns_whole_events_only() -> None:
    relay = OpenAIStreamRelay()
    first_event_end = TEXT_STREAM.index(b"\n\n") + 2
    assert relay.feed(TEXT_STREAM[: first_event_end - 1]) == b""
    assert (
        relay.feed(TEXT_STREAM[first_event_end - 1 : first_event_end])
        == (TEXT_STREAM[:first_event_end])
    )


def test_include_usage_without_strip_relays_the_usage_chunk() -> None:
    out, relay = relay_pieces([TEXT_STREAM], strip_usage=False)
    assert b'"usage"' in b"".join(out)
    assert relay.usage is not None and relay.usage.total_tokens == 27


def test_strip_usage_captures_but_drops_only_the_usage_chunk() -> None:
    out, relay = relay_pieces([TEXT_STREAM], strip_usage=True)
    usage_event = sse_body([chunk(usage=USAGE)])
    assert b"".join(out) == TEXT_STREAM.replace(usage_event, b"")
    assert b"".join(out).endswith(b"data: [DONE]\n\n")
    assert relay.usage is not None and relay.usage.cached_tokens == 8


def test_tool_call_arguments_split_across_chunks_are_assembled() -> None:
    stream = sse_body(
        [
            delta_chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_abc",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                }
            ),
            delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"'}}]}),
            delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "city"}}]}),
            delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '":"'}}]}),
            delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'Lyon"}'}}]}),
            delta_chunk({}, finish_reason="tool_calls"),
            "[DONE]",
        ],
        newline="\r\n",
    )
    out, relay = relay_pieces([stream[i : i + 7] for i in range(0, len(stream), 7)])
    assert b"".join(out) == stream
    assert call_tuples(relay.tool_calls) == [(0, "call_abc", "get_weather", '{"city":"Lyon"}')]
    assert relay.finish_reason == "tool_calls"
    assert relay.content == ""
    assert json.loads(relay.tool_calls[0].arguments) == {"city": "Lyon"}


def test_keep_alive_comments_are_forwarded_at_once() -> None:
    relay = OpenAIStreamRelay()
    assert relay.feed(b": keep-alive\n\n") == b": keep-alive\n\n"
    assert relay.chunk_count == 0


def test_non_json_data_is_forwarded_and_ignored() -> None:
    stream = b'data: <html>oops</html>\n\nevent: weird\ndata: {"choices": 3}\n\n'
    out, relay = relay_pieces([stream], strip_usage=True)
    assert b"".join(out) == stream
    assert relay.chunk_count == 0
    assert relay.content == ""
    assert not relay.done


def test_in_stream_error_is_captured() -> None:
    stream = sse_body([delta_chunk({"content": "par"}), {"error": {"message": "overloaded"}}])
    out, relay = relay_pieces([stream])
    assert b"".join(out) == stream
    assert relay.error == "overloaded"
    assert relay.content == "par"
    assert not relay.done


def test_ttft_waits_for_the_first_content() -> None:
    relay = OpenAIStreamRelay()
    relay.feed(sse_body([delta_chunk({"role": "assistant", "content": ""})]))
    assert relay.ttft_ms is None
    time.sleep(0.02)
    relay.feed(sse_body([delta_chunk({"content": "hi"})]))
    first = relay.ttft_ms
    assert first is not None and first >= 20.0
    relay.feed(sse_body([delta_chunk({"content": " again"})]))
    assert relay.ttft_ms == first


def test_capture_starts_empty() -> None:
    relay = OpenAIStreamRelay()
    assert captured(relay) == ("", None, None, [], None, None, 0, False, None)
    assert relay.ttft_ms is None


# --- the cap on one event's bytes -------------------------------------------------------------

MIB = 1024 * 1024
DONE = b"data: [DONE]\n\n"


def content_event(text: str) -> bytes:
    return sse_body([delta_chunk({"content": text})])


def test_the_default_cap_is_16_mib() -> None:
    assert SseParser().max_event_bytes == 16 * MIB
    assert OpenAIStreamRelay().max_event_bytes == 16 * MIB
    assert SseParser(max_event_bytes=10).max_event_bytes == 10


@pytest.mark.parametrize("cap", [0, -1])
def test_a_cap_below_one_byte_is_refused(cap: int) -> None:
    with pytest.raises(ValueError, match=r"^max_event_bytes "):
        SseParser(max_event_bytes=cap)
    with pytest.raises(ValueError, match=r"^max_event_bytes "):
        OpenAIStreamRelay(max_event_bytes=cap)


def test_a_line_that_never_ends_is_dropped_at_the_cap() -> None:
    parser = SseParser(max_event_bytes=64)
    assert [e.data for e in parser.feed(b"data: one\n\ndata: ")] == ["one"]
    assert parser.pending == len(b"data: ")
    for _ in range(7):
        assert parser.feed(b"x" * 8) == []
    assert not parser.oversized  # 62 bytes so far
    assert parser.feed(b"xxx") == []
    assert parser.oversized and parser.pending == 0
    assert parser.feed(b"\n\ndata: after\n\n") == [], "the rest of the stream is ignored"
    assert parser.finish() == []
    assert not parser.oversized and parser.max_event_bytes == 64, "ready for a new stream"


def test_an_upstream_that_never_ends_a_line_costs_bounded_memory() -> None:
    parser = SseParser()
    megabyte = b"x" * MIB
    parser.feed(b"data: ")
    for _ in range(16):
        parser.feed(megabyte)
        assert parser.pending <= 16 * MIB
    parser.feed(megabyte)
    assert parser.oversized and parser.pending == 0


def test_the_relay_drops_an_oversized_event_and_the_rest_but_not_what_came_before() -> None:
    first = content_event("Hel")
    relay = OpenAIStreamRelay(max_event_bytes=len(first))
    assert relay.feed(first + b'data: {"choices": [' + b" " * len(first)) == first
    assert relay.oversized and relay.error is None, "not the provider's error event"
    assert relay.feed(b"]}\n\n" + DONE) == b""
    assert relay.finish() == b""
    assert relay.oversized and relay.content == "Hel" and not relay.done


def test_a_stream_within_the_cap_is_not_oversized() -> None:
    stream = content_event("Hi") + DONE
    relay = OpenAIStreamRelay(max_event_bytes=len(stream))
    assert relay.feed(stream) == stream and not relay.oversized


# --- the cap on the capture --------------------------------------------------------------------


def test_the_capture_keeps_at_most_its_cap_and_relays_everything() -> None:
    body = content_event("héllo") + content_event(" world") + DONE
    relay = OpenAIStreamRelay(max_capture_bytes=4)
    assert relay.max_capture_bytes == 4
    assert relay.feed(body) + relay.finish() == body
    assert relay.content == "hél", "cut at a character boundary, within 4 bytes"
    assert relay.truncated and relay.done


def test_the_default_capture_cap_is_256_kib_and_a_short_stream_is_whole() -> None:
    relay = OpenAIStreamRelay()
    assert relay.max_capture_bytes == 256 * 1024
    relay.feed(content_event("short"))
    assert relay.content == "short" and not relay.truncated


def test_a_negative_capture_cap_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^max_capture_bytes "):
        OpenAIStreamRelay(max_capture_bytes=-1)
