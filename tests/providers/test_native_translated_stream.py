"""Every provider kind's chat stream through both relays (``STREAM_RELAY`` "python" and
"native"), against a real HTTP server on loopback: OpenAI streams as they are, Anthropic and
Gemini streams as OpenAI chunks, and an OpenAI stream as Anthropic events for
``/v1/messages``. The client gets the same bytes and the log the same summary whichever
relay reads the stream, for a clean end, a stream cut short, a silence under way, a stream
that trickles on past its total limit, an event too long to be real, and a provider error
before the first event (which raises, so the request can still fall back)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from floopy import errors
from floopy.providers.anthropic import AnthropicProvider
from floopy.providers.base import Call, Stream
from floopy.providers.gemini.provider import GeminiProvider
from floopy.providers.http import HttpProvider
from floopy.providers.native_stream import NativeOpenAIStream
from floopy.providers.openai import OpenAIProvider
from floopy.providers.operations import MessagesOverChat
from floopy.upstream import Timeouts
from floopy.upstream.native import NativeUpstream

PATIENT = Timeouts(connect=5, first_byte=5, total=5)
HASTY = Timeouts(connect=5, first_byte=0.3, total=5)
SHORT = Timeouts(connect=5, first_byte=1, total=0.3)
MIB = 1024 * 1024
RELAYS = ("python", "native")


def sse(data: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def block_delta(index: int, text: str) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return sse({"type": "content_block_delta", "index": index, "delta": delta}, "x")


ANTHROPIC_START = sse(
    {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5}},
    },
    "message_start",
)
ANTHROPIC = {
    "whole": [
        ANTHROPIC_START,
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        *[block_delta(0, f"w{i} ") for i in range(12)],
        sse({"type": "content_block_stop", "index": 0}),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 12},
            }
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ],
    "cut": [ANTHROPIC_START, block_delta(0, "half")],
    "error-first": [
        sse({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    ],
}


def gemini_event(text: str, finish: str | None = None, **more: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    return sse({"candidates": [candidate], "responseId": "r1", **more})


GEMINI = {
    "whole": [
        *[gemini_event(f"w{i} ") for i in range(12)],
        gemini_event("", "STOP", usageMetadata={"promptTokenCount": 4, "candidatesTokenCount": 12}),
    ],
    "cut": [gemini_event("half")],
    "error-first": [
        b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}\n'
    ],
}


def openai_chunk(text: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    return sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]})


OPENAI = {
    "whole": [
        *[openai_chunk(f"w{i} ") for i in range(12)],
        openai_chunk("", "stop"),
        sse({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 12}}),
        b"data: [DONE]\n\n",
    ],
    "cut": [openai_chunk("half")],
    "error-first": [sse({"error": {"message": "boom", "type": "server_error"}})],
}


@dataclass(frozen=True)
class Kind:
    name: str
    path: str  # the provider's stream path under its base URL
    events: dict[str, list[bytes]]
    build: Callable[..., HttpProvider]
    open: Callable[[HttpProvider], Awaitable[Stream]]
    later: bytes  # an event that may come any number of times


CHAT = Call(
    body=b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}',
    model="m",
    requested_model="m",
    stream=True,
    include_usage=True,
)
MESSAGES = Call(
    body=b'{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}',
    model="m",
    requested_model="m",
    stream=True,
    include_usage=False,
    api="messages",
)


def wire(base_url: str, upstream: NativeUpstream, timeouts: Timeouts) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "api_key": "k",
        "extra_headers": {},
        "upstream": upstream,
        "timeouts": timeouts,
    }


KINDS = [
    Kind(
        "openai",
        "/chat/completions",
        OPENAI,
        lambda name, **w: OpenAIProvider(name, "openai_compatible", **w),
        lambda provider: provider.stream(CHAT),
        openai_chunk("x"),
    ),
    Kind(
        "anthropic",
        "/v1/messages",
        ANTHROPIC,
        lambda name, **w: AnthropicProvider(name, **w, max_output_tokens={}, default_max_tokens=50),
        lambda provider: provider.stream(CHAT),
        sse({"type": "ping"}, "ping"),
    ),
    Kind(
        "gemini",
        "/models/m:streamGenerateContent",
        GEMINI,
        lambda name, **w: GeminiProvider(name, **w),
        lambda provider: provider.stream(CHAT),
        gemini_event("x"),
    ),
    Kind(
        "messages-over-openai",
        "/chat/completions",
        OPENAI,
        lambda name, **w: OpenAIProvider(name, "openai_compatible", **w),
        lambda provider: MessagesOverChat(provider).messages_stream(MESSAGES),  # type: ignore[arg-type]
        openai_chunk("x"),
    ),
]


def routes(kind: Kind) -> list[web.RouteDef]:
    def handler(name: str, pause: float) -> Callable[[web.Request], Awaitable[Any]]:
        async def answer(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for event in kind.events[name]:
                await response.write(event)
                await asyncio.sleep(0.002)
            await asyncio.sleep(pause)
            return response

        return answer

    async def refusing(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "slow down"}}, status=429)

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(kind.events["whole"][0])
        try:
            for _ in range(3000):
                await asyncio.sleep(0.01)
                await response.write(kind.later)
        except (ConnectionError, RuntimeError):
            pass  # the gateway hung up
        return response

    async def oversized(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(kind.events["whole"][0] + b"data: ")
        try:
            for _ in range(17):
                await response.write(b"x" * MIB)
        except (ConnectionError, RuntimeError):
            pass
        return response

    found = [web.post(f"/{name}{kind.path}", handler(name, 0)) for name in kind.events]
    stall = handler("cut", 10)
    return [
        *found,
        web.post(f"/stall{kind.path}", stall),
        web.post(f"/refusing{kind.path}", refusing),
        web.post(f"/trickle{kind.path}", trickle),
        web.post(f"/oversized{kind.path}", oversized),
    ]


class Done:
    def __await__(self) -> Any:
        return iter(())


class Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, data: bytes) -> Done:
        self.sent.append(data)
        return Done()


async def read(stream: Stream) -> bytes:
    out = stream.first
    if isinstance(stream, NativeOpenAIStream):  # the way around the event loop
        transport = Transport()
        await stream.relay_to(transport, 2**40)
        out += b"".join(transport.sent)
    return out + b"".join([piece async for piece in stream])


Outcome = tuple[bytes, Any] | type[BaseException]


def outcome(kind: Kind, relay: str, route: str, timeouts: Timeouts = PATIENT) -> Any:
    async def main() -> Any:
        app = web.Application()
        app.add_routes(routes(kind))
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/{route}"
        upstream = NativeUpstream(asyncio.get_running_loop(), 4)
        provider = kind.build("p", **wire(url, upstream, timeouts))
        provider.relays_natively = relay == "native"
        try:
            try:
                stream = await asyncio.wait_for(kind.open(provider), 10)
            except errors.FloopyError as exc:
                return type(exc), exc.message, exc.status
            assert isinstance(stream, NativeOpenAIStream) == (relay == "native")
            out = await asyncio.wait_for(read(stream), 10)
            return out, stream.summary
        finally:
            await upstream.close()
            await runner.cleanup()

    return asyncio.run(main())


def normal(out: bytes) -> bytes:
    out = re.sub(rb'"created":\d+', b'"created":0', out)
    return re.sub(rb'"id":"msg_[0-9a-f]{32}"', b'"id":"msg_0"', out)


def both(kind: Kind, route: str, timeouts: Timeouts = PATIENT) -> tuple[Any, Any]:
    return tuple(outcome(kind, relay, route, timeouts) for relay in RELAYS)  # type: ignore[return-value]


kinds = pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)


@kinds
def test_a_whole_stream_is_the_same_through_both_relays(kind: Kind) -> None:
    (python, python_summary), (native, native_summary) = both(kind, "whole")
    assert normal(native) == normal(python)
    assert native_summary.completed and native_summary.error is None
    assert "w11 " in native_summary.content
    for field in ("content", "finish_reason", "usage", "chunks", "completed", "error"):
        assert getattr(native_summary, field) == getattr(python_summary, field), field
    assert native_summary.ttft_ms is not None


@kinds
def test_a_stream_cut_short_ends_with_the_same_error_event(kind: Kind) -> None:
    (python, python_summary), (native, native_summary) = both(kind, "cut")
    assert normal(native) == normal(python)
    assert b"[DONE]" not in native and b"message_stop" not in native
    assert b"error" in native.rsplit(b"\n\n", 2)[-2]
    assert native_summary.error == python_summary.error and not native_summary.completed


@kinds
def test_a_silence_under_way_ends_with_the_same_timeout_event(kind: Kind) -> None:
    (python, python_summary), (native, native_summary) = both(kind, "stall", HASTY)
    assert normal(native) == normal(python)
    assert b"first_byte_timeout" in native
    assert isinstance(native_summary.failure, errors.GatewayTimeout)
    assert native_summary.error == python_summary.error


@kinds
def test_a_stream_that_trickles_on_ends_at_the_total_limit(kind: Kind) -> None:
    for relay in RELAYS:
        out, summary = outcome(kind, relay, "trickle", SHORT)
        assert b"total_timeout" in out.rsplit(b"\n\n", 2)[-2], relay
        assert isinstance(summary.failure, errors.GatewayTimeout), relay
        assert not summary.completed


@kinds
def test_an_event_that_never_ends_stops_the_stream_at_16_mib(kind: Kind) -> None:
    (python, python_summary), (native, native_summary) = both(kind, "oversized")
    assert normal(native) == normal(python)
    assert f"p sent an event of more than {16 * MIB} bytes".encode() in native
    assert len(native) < MIB, "none of the oversized event reached the client"
    assert isinstance(native_summary.failure, errors.ProviderError)
    assert native_summary.error == python_summary.error


@kinds
@pytest.mark.parametrize("route", ["error-first", "refusing"])
def test_an_error_before_the_first_event_is_the_same_error(kind: Kind, route: str) -> None:
    """Raised as the HTTP error it stands for, so the request can fall back; an OpenAI
    error chunk is a stream event, relayed (as Anthropic's error on /v1/messages)."""
    python, native = both(kind, route)
    if isinstance(native[0], bytes):
        assert kind.name in ("openai", "messages-over-openai") and route == "error-first"
        assert normal(native[0]) == normal(python[0])
        assert b"boom" in native[0]
        return
    assert native == python
    assert issubclass(native[0], errors.FloopyError)
