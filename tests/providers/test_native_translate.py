"""The native stream translators write what the Python translators write, byte for byte:
Anthropic Messages events and Gemini ``streamGenerateContent`` events as OpenAI chunks, and
OpenAI chunks as Anthropic Messages events (``/v1/messages`` over chat), however the
provider's bytes are cut; and they capture the same text, finish reason, usage and ending
for the log.

Only the parts that are random or clock-made on both sides (``created``, an id the provider
did not give) are set equal before comparing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from floopy._native import RelayCapture, SseParser, stream_translator
from floopy.providers.anthropic.stream import ChunkTranslator
from floopy.providers.base import StreamSummary
from floopy.providers.bridge.stream import EventWriter, anthropic_closing
from floopy.providers.gemini.stream import BareErrorWatch, StreamTranslator
from floopy.providers.native_stream import summarize

FIXTURES = Path(__file__).parent.parent / "fixtures"
SPLITS = (1, 2, 7, 64, 1 << 20)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def native_out(translator: RelayCapture, data: bytes, size: int) -> bytes:
    out = b"".join(translator.feed(piece) for piece in pieces(data, size))
    return out + translator.finish()


def same_clock(out: bytes) -> bytes:
    return re.sub(rb'"created":\d+', b'"created":0', out)


def sse(data: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


# --- Anthropic -> OpenAI ---------------------------------------------------------------------


def python_anthropic(data: bytes, *, include_usage: bool, json_tool: str | None) -> Any:
    translator = ChunkTranslator(model="asked", include_usage=include_usage, json_tool=json_tool)
    parser = SseParser()
    out = translator.feed(parser.feed(data), data) + translator.feed(parser.finish(), b"")
    summary = StreamSummary()
    translator.tally.fill(summary)
    return out, summary


def text_block(index: int, text: str) -> bytes:
    start = {"type": "content_block_start", "index": index, "content_block": {"type": "text"}}
    delta = {"type": "text_delta", "text": text}
    return (
        sse(start | {"content_block": {"type": "text", "text": ""}}, "content_block_start")
        + sse({"type": "content_block_delta", "index": index, "delta": delta})
        + sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    )


def tool_block(index: int, name: str, parts: list[str], given: Any = None) -> bytes:
    block = {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": given or {}}
    out = sse({"type": "content_block_start", "index": index, "content_block": block})
    for part in parts:
        delta = {"type": "input_json_delta", "partial_json": part}
        out += sse({"type": "content_block_delta", "index": index, "delta": delta})
    return out + sse({"type": "content_block_stop", "index": index})


MESSAGE_START = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "model": "claude-x",
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1},
        },
    },
    "message_start",
)


def message_end(reason: str, output: int = 9) -> bytes:
    delta = {"type": "message_delta", "delta": {"stop_reason": reason}}
    usage = {"output_tokens": output, "output_tokens_details": {"thinking_tokens": 2}}
    return sse(delta | {"usage": usage}) + sse({"type": "message_stop"}, "message_stop")


ANTHROPIC_STREAMS = {
    "text": MESSAGE_START
    + sse({"type": "ping"}, "ping")
    + text_block(0, 'Hé "you"\n\u2028\x01')
    + message_end("end_turn"),
    "tools": MESSAGE_START
    + text_block(0, "Let me look.")
    + tool_block(1, "get_weather", ['{"ci', 'ty": "Paris"}'])
    + tool_block(2, "get_time", [], given={"z": 1, "a": [1.5, None, True]})
    + message_end("tool_use"),
    "json-tool": MESSAGE_START
    + tool_block(0, "json_out", ['{"a"', ": 1}"])
    + message_end("tool_use"),
    "thinking-and-unknown": MESSAGE_START
    + sse({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta"}})
    + sse({"type": "something_new", "index": "x"})
    + b"data: not json\n\n"
    + text_block(1, "ok")
    + message_end("max_tokens"),
    "error-later": MESSAGE_START
    + text_block(0, "par")
    + sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    "cut": MESSAGE_START + text_block(0, "half"),
    "last-event-unterminated": MESSAGE_START + message_end("end_turn")[:-2],
}
for path in sorted((FIXTURES / "anthropic").glob("*.sse")):
    ANTHROPIC_STREAMS[f"fixture-{path.stem}"] = path.read_bytes()


@pytest.mark.parametrize("name", sorted(ANTHROPIC_STREAMS))
@pytest.mark.parametrize("include_usage", [False, True])
def test_anthropic_streams_are_translated_byte_for_byte(name: str, include_usage: bool) -> None:
    data = ANTHROPIC_STREAMS[name]
    json_tool = "json_out" if name == "json-tool" else None
    expected, summary = python_anthropic(data, include_usage=include_usage, json_tool=json_tool)
    for size in SPLITS:
        translator = stream_translator(
            "anthropic", model="asked", include_usage=include_usage, json_tool=json_tool
        )
        out = native_out(translator, data, size)
        assert same_clock(out) == same_clock(expected), size
        assert_same_summary(translator, summary)


def test_an_anthropic_error_first_is_marked_for_raising() -> None:
    error = sse({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})
    translator = stream_translator("anthropic", model="m")
    assert b"rate_limit_error: slow" in native_out(translator, error, 5)
    assert translator.error_before_output and translator.error_type == "rate_limit_error"
    later = stream_translator("anthropic", model="m")
    native_out(later, MESSAGE_START + error, 5)
    assert not later.error_before_output and later.error == "rate_limit_error: slow"


# --- Gemini -> OpenAI ------------------------------------------------------------------------


def python_gemini(data: bytes, *, include_usage: bool, fallback: str) -> Any:
    translator = StreamTranslator("asked", include_usage)
    bare = BareErrorWatch()
    parser = SseParser()
    bare.feed(data)
    out = b"".join(translator.event(event.data) for event in parser.feed(data))
    out += b"".join(translator.event(event.data) for event in parser.finish())
    bare.finish()
    out += translator.fail(bare.error) if bare.error is not None else translator.end()
    summary = StreamSummary()
    summary.content, summary.truncated = str(translator.content), translator.content.truncated
    summary.finish_reason = translator.finish_reason
    summary.usage = translator.usage
    summary.chunks = translator.chunks
    summary.completed = translator.error is None and translator.finished
    if translator.error is not None:
        summary.error = translator.error.message or translator.error.status
    if re.fullmatch("chatcmpl-[0-9a-f]{32}", translator.id):  # made up: set equal here
        out = out.replace(translator.id.encode(), f"chatcmpl-{fallback}".encode())
    return out, summary


def candidate(parts: list[dict[str, Any]], finish: str | None = None, index: int = 0) -> Any:
    found: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
    if finish:
        found["finishReason"] = finish
    return found


USAGE = {
    "promptTokenCount": 7,
    "candidatesTokenCount": 3,
    "totalTokenCount": 12,
    "thoughtsTokenCount": 2,
}
CALL = {"functionCall": {"name": "find", "args": {"to": "Porto", "when": {"day": 1, "at": "9"}}}}

GEMINI_STREAMS = {
    "text": sse({"candidates": [candidate([{"text": "Hel"}])], "responseId": "r1"})
    + sse({"candidates": [candidate([{"text": 'lo "é"\n'}], "STOP")], "usageMetadata": USAGE}),
    "no-response-id": sse({"candidates": [candidate([{"text": "x"}], "MAX_TOKENS")]}),
    "thought-and-call": sse(
        {
            "candidates": [
                candidate(
                    [
                        {"text": "thinking", "thought": True},
                        CALL | {"thoughtSignature": "c2ln"},
                        {"functionCall": {"name": "none", "id": "given"}},
                    ],
                    "STOP",
                )
            ],
            "modelVersion": "gemini-y",
            "responseId": "r2",
        }
    ),
    "two-candidates": sse(
        {
            "candidates": [candidate([{"text": "b"}], index=1), candidate([{"text": "a"}])],
            "responseId": "r3",
        }
    )
    + sse({"candidates": [candidate([], "SAFETY", index=1)], "usageMetadata": USAGE}),
    "blocked-prompt": sse({"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r4"}),
    "cut": sse({"candidates": [candidate([{"text": "half"}])], "responseId": "r5"}),
    "error-event": sse({"candidates": [candidate([{"text": "a"}])], "responseId": "r6"})
    + sse({"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}),
    "bare-error-line": sse({"candidates": [candidate([{"text": "a"}])], "responseId": "r7"})
    + b'{"error": {"code": 503, "message": "", "status": "UNAVAILABLE"}}\n',
    "bare-error-first": b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}\n',
    "bare-error-over-lines": b'{\n  "error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}\n',
    "crlf": sse({"candidates": [candidate([{"text": "x"}], "STOP")], "responseId": "r8"}).replace(
        b"\n", b"\r\n"
    ),
    "empty": b"",
}
for path in sorted((FIXTURES / "gemini").glob("*.sse")):
    GEMINI_STREAMS[f"fixture-{path.stem}"] = path.read_bytes()


@pytest.mark.parametrize("name", sorted(GEMINI_STREAMS))
@pytest.mark.parametrize("include_usage", [False, True])
def test_gemini_streams_are_translated_byte_for_byte(name: str, include_usage: bool) -> None:
    data = GEMINI_STREAMS[name]
    expected, summary = python_gemini(data, include_usage=include_usage, fallback="f00d")
    for size in SPLITS:
        translator = stream_translator(
            "gemini", model="asked", include_usage=include_usage, fallback_id="f00d"
        )
        out = native_out(translator, data, size)
        assert same_clock(out) == same_clock(expected), size
        assert_same_summary(translator, summary, with_ttft=False)


def test_a_gemini_error_before_any_chunk_is_marked_for_raising() -> None:
    translator = stream_translator("gemini", model="m")
    native_out(translator, GEMINI_STREAMS["bare-error-first"], 3)
    assert translator.error_before_output and translator.error_code == 429
    assert translator.error == "RESOURCE_EXHAUSTED"
    cut = stream_translator("gemini", model="m")
    native_out(cut, b"", 1)
    assert cut.error_before_output and cut.error_code == 0


# --- OpenAI -> Anthropic Messages ------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]})


def tool(index: int, **fields: Any) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, **fields}]}


OPENAI_USAGE = sse(
    {
        "id": "chatcmpl-1",
        "choices": [],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 2},
        },
    }
)
DONE = b"data: [DONE]\n\n"

OPENAI_STREAMS = {
    "text": chunk({"role": "assistant", "content": ""})
    + chunk({"content": "Hel"})
    + chunk({"content": 'lo "é"'})
    + chunk({}, "stop")
    + OPENAI_USAGE
    + DONE,
    "tools": chunk({"content": "Looking"})
    + chunk(tool(0, id="call_a", function={"name": "get", "arguments": ""}))
    + chunk(tool(0, function={"arguments": '{"a":'}))
    + chunk(tool(1, id="call_b", function={"name": "put", "arguments": "{}"}))
    + chunk(tool(0, function={"arguments": "1}"}))
    + chunk({"content": "and text again"})
    + chunk({}, "tool_calls")
    + DONE,
    "finish-without-done": chunk({"content": "x"}) + chunk({}, "length"),
    "error-chunk": chunk({"content": "x"})
    + sse({"error": {"message": "boom", "type": "rate_limit_error"}})
    + DONE,
    "odd-error-type": sse({"error": {"message": "odd", "type": "server_error", "code": None}}),
    "comments-and-junk": b": keep-alive\n\n" + b"data: {oops\n\n" + chunk({"content": "y"}) + DONE,
}
for path in sorted((FIXTURES / "openai").glob("chat_*.sse")):
    OPENAI_STREAMS[f"fixture-{path.stem}"] = path.read_bytes()


def same_message_id(out: bytes) -> bytes:
    return re.sub(rb'"id":"msg_[0-9a-f]+"', b'"id":"msg_0"', same_clock(out))


@pytest.mark.parametrize("name", sorted(OPENAI_STREAMS))
def test_openai_chunks_are_written_as_messages_events_byte_for_byte(name: str) -> None:
    data = OPENAI_STREAMS[name]
    writer = EventWriter("claude-asked")
    expected = writer.start() + writer.feed(data)
    finished = writer.ended or writer._finish is not None
    expected += writer.end()
    for size in SPLITS:
        translator = stream_translator("openai", messages_model="claude-asked", fallback_id="ab")
        out = native_out(translator, data, size)
        if not finished:  # the caller ends it, with the inner stream's closing error
            assert b"message_stop" not in out
            continue
        assert same_message_id(out) == same_message_id(expected), size


def test_the_closing_error_of_a_messages_stream_is_the_python_relays() -> None:
    writer = EventWriter("m")
    writer.start()
    writer.feed(chunk({"content": "x"}))
    closing = b'data: {"error":{"message":"p ended the stream early","type":"api_error"}}\n\n'
    assert anthropic_closing(closing) == writer.feed(closing)
    assert anthropic_closing(closing).startswith(b"event: error\n")


def test_nothing_goes_out_for_messages_before_the_first_chunk() -> None:
    translator = stream_translator("openai", messages_model="m", fallback_id="ab")
    first = chunk({"content": "x"})
    assert translator.feed(first[:10]) == b""
    out = translator.feed(first[10:])
    assert out.startswith(b"event: message_start\n") and b'"id":"msg_ab"' in out


# --- the capture -----------------------------------------------------------------------------


def assert_same_summary(
    translator: RelayCapture, expected: StreamSummary, *, with_ttft: bool = True
) -> None:
    summary = StreamSummary()
    summarize(translator, summary)
    for field in ("content", "truncated", "finish_reason", "usage", "chunks", "completed", "error"):
        assert getattr(summary, field) == getattr(expected, field), field
    if with_ttft:
        assert (summary.ttft_ms is None) == (expected.ttft_ms is None)


@pytest.mark.parametrize(
    "source, make",
    [
        ("anthropic", lambda: ANTHROPIC_STREAMS["tools"]),
        ("gemini", lambda: GEMINI_STREAMS["text"]),
    ],
)
def test_the_capture_keeps_at_most_its_cap(source: str, make: Callable[[], bytes]) -> None:
    translator = stream_translator(source, model="m", max_capture_bytes=4)
    native_out(translator, make(), 3)
    assert len(translator.content.encode()) <= 4 and translator.truncated


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="source must be"):
        stream_translator("cohere")
