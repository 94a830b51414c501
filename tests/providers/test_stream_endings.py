"""Every provider's stream, once under way, ends with a proper error event when a time limit
runs out or an upstream event outgrows the native parser's cap: the upstream connection is
dropped, the summary carries the failure (for the breaker and the log), and the client gets
an event its SDK raises, never a torn one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from floopy import errors
from floopy._native import OpenAIStreamRelay, SseParser
from floopy.providers.anthropic.stream import AnthropicStream, ChunkTranslator, EventRelay
from floopy.providers.base import Stream
from floopy.providers.gemini.stream import GeminiStream, StreamTranslator
from floopy.providers.http import Timeouts, UpstreamBody
from floopy.providers.openai import OpenAIStream
from floopy.upstream.aiohttp_client import AiohttpResponse

MIB = 1024 * 1024


def sse(data: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


OPENAI_CHUNK = sse(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
    }
)
MESSAGE_START = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    },
    "message_start",
)
PING = sse({"type": "ping"}, "ping")
GEMINI_CHUNK = sse({"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}}]})


@dataclass(frozen=True)
class Kind:
    """One provider stream: how to build it over a body, a first event and a later one, and
    the shape of its error events."""

    name: str
    build: Callable[[UpstreamBody], Stream]
    first: bytes
    later: bytes
    anthropic_events: bool = False


KINDS = [
    Kind(
        "openai", lambda body: OpenAIStream(body, OpenAIStreamRelay()), OPENAI_CHUNK, OPENAI_CHUNK
    ),
    Kind(
        "anthropic",
        lambda body: AnthropicStream(
            body, ChunkTranslator(model="m", include_usage=False, json_tool=None)
        ),
        MESSAGE_START,
        PING,
    ),
    Kind(
        "anthropic-native",
        lambda body: AnthropicStream(body, EventRelay()),
        MESSAGE_START,
        PING,
        anthropic_events=True,
    ),
    Kind(
        "gemini",
        lambda body: GeminiStream(body, StreamTranslator("m", False)),
        GEMINI_CHUNK,
        GEMINI_CHUNK,
    ),
]


class Trickle:
    """A response body arriving as (pause before it, bytes) pieces."""

    def __init__(self, pieces: list[tuple[float, bytes]]) -> None:
        self.content = self
        self.closed = False
        self._pieces = pieces

    async def _arrive(self) -> AsyncIterator[bytes]:
        for pause, piece in self._pieces:
            await asyncio.sleep(pause)
            yield piece

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._arrive()

    def close(self) -> None:
        self.closed = True


def relay(kind: Kind, pieces: list[tuple[float, bytes]], timeouts: Timeouts) -> Relayed:
    response = Trickle(pieces)

    async def run() -> tuple[bytes, Stream]:
        started = asyncio.get_running_loop().time()
        stream = kind.build(UpstreamBody(kind.name, AiohttpResponse(response), timeouts, started))  # type: ignore[arg-type]
        await stream.open()  # type: ignore[attr-defined]
        rest = [piece async for piece in stream]
        return stream.first + b"".join(rest), stream

    out, stream = asyncio.run(run())
    return Relayed(out, stream, response)


@dataclass
class Relayed:
    out: bytes
    stream: Stream
    response: Trickle

    def last_error(self, kind: Kind) -> dict[str, Any]:
        """The error of the stream's last event, which must be an error event."""
        events = SseParser().feed(self.out)
        last = events[-1]
        data = json.loads(last.data)
        if kind.anthropic_events:
            assert last.event == "error" and data["type"] == "error"
        else:
            assert last.event is None
        return dict(data["error"])


PATIENT = 60.0


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_a_stream_gone_silent_ends_with_a_timeout_event(kind: Kind) -> None:
    relayed = relay(kind, [(0, kind.first), (30, kind.later)], Timeouts(5, 0.1, PATIENT))
    error = relayed.last_error(kind)
    assert error["type"] == "timeout_error"
    if not kind.anthropic_events:
        assert error["code"] == "GATEWAY_TIMEOUT"
    assert "first_byte_timeout" in error["message"]
    summary = relayed.stream.summary
    assert isinstance(summary.failure, errors.GatewayTimeout)
    assert summary.error == summary.failure.message and not summary.completed
    assert relayed.response.closed
    assert b"[DONE]" not in relayed.out


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_a_stream_that_trickles_on_ends_at_the_total_limit(kind: Kind) -> None:
    pieces = [(0.0, kind.first)] + [(0.01, kind.later)] * 3000
    relayed = relay(kind, pieces, Timeouts(5, 1, 0.3))
    error = relayed.last_error(kind)
    assert error["type"] == "timeout_error" and "total_timeout" in error["message"]
    summary = relayed.stream.summary
    assert isinstance(summary.failure, errors.GatewayTimeout)
    assert relayed.response.closed


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_an_event_that_never_ends_stops_the_stream_at_16_mib(kind: Kind) -> None:
    megabyte = b"x" * MIB
    pieces = [(0.0, kind.first), (0.0, b"data: ")] + [(0.0, megabyte)] * 17
    relayed = relay(kind, pieces, Timeouts(5, 5, PATIENT))
    error = relayed.last_error(kind)
    assert error["message"] == f"{kind.name} sent an event of more than {16 * MIB} bytes"
    assert len(relayed.out) < MIB, "none of the oversized event reached the client"
    summary = relayed.stream.summary
    assert isinstance(summary.failure, errors.ProviderError)
    assert relayed.response.closed


def test_a_native_anthropic_stream_never_sends_a_torn_event() -> None:
    native = next(kind for kind in KINDS if kind.anthropic_events)
    delta = sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        "content_block_delta",
    )
    half = len(delta) // 2
    pieces = [(0.0, native.first + delta[:half]), (30, delta[half:])]
    relayed = relay(native, pieces, Timeouts(5, 0.1, PATIENT))
    assert relayed.out.startswith(native.first)
    assert delta[:half] not in relayed.out, "the torn half is held back, not relayed"
    for event in SseParser().feed(relayed.out):
        json.loads(event.data)  # every event the client gets is whole
    assert relayed.last_error(native)["type"] == "timeout_error"


def test_a_native_anthropic_stream_relays_every_byte_however_it_is_cut() -> None:
    native = next(kind for kind in KINDS if kind.anthropic_events)
    stop = sse({"type": "message_stop"}, "message_stop")
    data = native.first + b": a comment\n\n" + PING + stop
    for size in (1, 3, 7, 50):
        pieces = [(0.0, data[i : i + size]) for i in range(0, len(data), size)]
        relayed = relay(native, pieces, Timeouts(5, 5, PATIENT))
        assert relayed.out == data, size
        assert relayed.stream.summary.error is None
