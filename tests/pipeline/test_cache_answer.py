"""Cached answers put back together from streams, and replayed in either shape: what one
shape says, the other says too; a stream that did not finish is never an answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest

from floopy.context import RequestContext
from floopy.pipeline.cache import answer, replay
from floopy.pipeline.cache.answer import Entry
from floopy.pipeline.cache.tap import RecordedStream, whole_success
from floopy.providers.base import Completion, StreamSummary, Usage


def sse(*docs: Any) -> bytes:
    return b"".join(
        b"data: " + (d if isinstance(d, bytes) else json.dumps(d).encode()) + b"\n\n" for d in docs
    )


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "system_fingerprint": "fp",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
TOOL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
STREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({"tool_calls": [{"index": 0, **TOOL}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
    chunk({}, "tool_calls"),
    {**chunk({}), "choices": [], "usage": USAGE},
    b"[DONE]",
)


def test_a_finished_chat_stream_is_a_whole_completion() -> None:
    body = answer.from_chat_stream(STREAM, None)
    assert body is not None
    completion = json.loads(body)
    assert completion["object"] == "chat.completion"
    assert (completion["id"], completion["model"], completion["created"]) == ("chatcmpl-1", "m", 7)
    message = completion["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["usage"] == USAGE


def test_the_gateway_s_usage_fills_in_for_a_stream_without_its_usage_chunk() -> None:
    stream = sse(chunk({"content": "hi"}), chunk({}, "stop"), b"[DONE]")
    body = answer.from_chat_stream(stream, Usage(prompt_tokens=4, completion_tokens=1))
    assert body is not None
    assert json.loads(body)["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize(
    "stream",
    [
        sse(chunk({"content": "hi"}), b"[DONE]"),  # no finish reason
        sse(chunk({"content": "hi"}), chunk({}, "stop")),  # no [DONE]: cut after the finish
        sse(chunk({"content": "hi"}), {"error": {"message": "boom"}}, b"[DONE]"),
        sse(chunk({}, "stop", 0), chunk({"content": "x"}, None, 1), b"[DONE]"),  # one choice open
        b"",
    ],
)
def test_an_unfinished_or_failed_chat_stream_is_no_answer(stream: bytes) -> None:
    assert answer.from_chat_stream(stream, None) is None


def replayed(entry: Entry, include_usage: bool) -> bytes:
    async def collect() -> bytes:
        stream = replay.stream(entry, include_usage)
        return stream.first + b"".join([piece async for piece in stream])

    return asyncio.run(collect())


def chat_entry(body: bytes) -> Entry:
    return answer.entry("chat", body, "p", "m", None, "tool_calls")


def test_a_replayed_stream_spells_the_same_completion() -> None:
    body = answer.from_chat_stream(STREAM, None)
    assert body is not None
    again = replayed(chat_entry(body), include_usage=True)
    assert again.endswith(b"data: [DONE]\n\n")
    assert answer.from_chat_stream(again, None) == body
    without_usage = replayed(chat_entry(body), include_usage=False)
    assert b'"usage"' not in without_usage
    assert json.loads(answer.from_chat_stream(without_usage, None) or b"")["usage"] is None


def test_every_choice_replays_with_its_finish_reason() -> None:
    completion = {
        "id": "c",
        "created": 1,
        "model": "m",
        "object": "chat.completion",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": f"n{i}"}, "finish_reason": f}
            for i, f in enumerate(("stop", "length"))
        ],
        "usage": USAGE,
    }
    again = answer.from_chat_stream(
        replayed(chat_entry(msgspec.json.encode(completion)), True), None
    )
    assert again is not None
    choices = json.loads(again)["choices"]
    assert [(c["message"]["content"], c["finish_reason"]) for c in choices] == [
        ("n0", "stop"),
        ("n1", "length"),
    ]


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 1},
    },
}


def block_events(index: int, start: dict[str, Any], *deltas: dict[str, Any]) -> bytes:
    out = event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": start},
    )
    for delta in deltas:
        out += event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
    return out + event("content_block_stop", {"type": "content_block_stop", "index": index})


END = event(
    "message_delta",
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 12},
    },
) + event("message_stop", {"type": "message_stop"})
MESSAGES = (
    event("message_start", MESSAGE_START)
    + block_events(
        0,
        {"type": "thinking", "thinking": ""},
        {"type": "thinking_delta", "thinking": "hmm"},
        {"type": "signature_delta", "signature": "sig"},
    )
    + block_events(
        1,
        {"type": "text", "text": ""},
        {"type": "text_delta", "text": "Hi "},
        {"type": "text_delta", "text": "there"},
    )
    + block_events(
        2,
        {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        {"type": "input_json_delta", "partial_json": '{"a": '},
        {"type": "input_json_delta", "partial_json": "1}"},
    )
)


def test_a_finished_messages_stream_is_a_whole_message_and_replays_the_same() -> None:
    body = answer.from_messages_stream(MESSAGES + END)
    assert body is not None
    message = json.loads(body)
    assert message["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Hi there"},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 9, "output_tokens": 12}
    entry = answer.entry("messages", body, "p", "claude", None, "tool_calls")
    assert answer.from_messages_stream(replayed(entry, include_usage=False)) == body


@pytest.mark.parametrize(
    "stream",
    [
        MESSAGES,  # no message_delta, no message_stop
        MESSAGES + END.split(b"event: message_stop")[0],  # no message_stop
        MESSAGES + event("error", {"type": "error", "error": {"type": "overloaded_error"}}),
    ],
)
def test_an_unfinished_or_failed_messages_stream_is_no_answer(stream: bytes) -> None:
    assert answer.from_messages_stream(stream) is None


def test_entries_survive_encoding() -> None:
    entry = answer.entry("chat", b"{}", "p", "m", Usage(prompt_tokens=1), "stop")
    assert Entry.decode(entry.encode()) == entry


class FakeStream:
    def __init__(self, pieces: list[bytes], summary: StreamSummary) -> None:
        self.first, self._rest, self.summary = pieces[0], pieces[1:], summary

    async def __aiter__(self) -> Any:
        for piece in self._rest:
            yield piece

    async def close(self) -> None:
        pass


def recorded(limit: int = 1 << 20, **summary: Any) -> RecordedStream:
    pieces = [STREAM[:40], STREAM[40:]]
    stream = RecordedStream(FakeStream(pieces, StreamSummary(**summary)), limit)

    async def drain() -> None:
        async for _ in stream:
            pass

    asyncio.run(drain())
    return stream


def ctx(status: int = 200) -> RequestContext:
    context = RequestContext(request_id="r", method="POST", path="/", client_ip="127.0.0.1")
    context.status, context.provider, context.model = status, "p", "m"
    return context


def test_only_a_whole_success_is_stored() -> None:
    finished = {"finish_reason": "tool_calls", "completed": True}
    assert whole_success(ctx(), "chat", recorded(**finished), 1 << 20) is not None
    assert whole_success(ctx(499), "chat", recorded(**finished), 1 << 20) is None
    assert whole_success(ctx(), "chat", recorded(**finished, error="cut"), 1 << 20) is None
    assert whole_success(ctx(), "chat", recorded(limit=50, **finished), 1 << 20) is None
    done = Completion(body=b"{}", finish_reason="stop")
    assert whole_success(ctx(), "chat", done, 1 << 20) is not None
    assert whole_success(ctx(), "chat", Completion(body=b"{}"), 1 << 20) is None
    assert whole_success(ctx(), "chat", done, 1) is None  # larger than CACHE_MAX_ENTRY_BYTES
    failed = ctx()
    failed.error_code = "PROVIDER_ERROR"
    assert whole_success(failed, "chat", done, 1 << 20) is None
