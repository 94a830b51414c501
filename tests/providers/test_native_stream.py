"""The native stream relay (``STREAM_RELAY = "native"``): an OpenAI chat stream read, relayed
and written on the native side, against a real HTTP server on loopback and a transport that
behaves as granian's (``send_bytes`` queues at once and returns a finished awaitable).

What the event loop sees is counted: once the stream is attached to the transport, no event
per chunk reaches Python. The endings are those of the Python relay: a clean end, a time
limit, a cut, a provider that refuses, a client that goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Generator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from floopy import errors
from floopy.providers.base import Call
from floopy.providers.native_stream import NativeOpenAIStream
from floopy.providers.openai import OpenAIProvider
from floopy.upstream import Timeouts
from floopy.upstream import native as native_upstream
from floopy.upstream.native import ClientGone, NativeUpstream

PATIENT = Timeouts(connect=5, first_byte=5, total=5)
CHUNKS = 20


def chunk(text: str, finish: str | None = None) -> bytes:
    doc = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


USAGE = (
    b'data: {"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":5,'
    b'"completion_tokens":20,"total_tokens":25}}\n\n'
)
WHOLE = [chunk(f"w{i} ") for i in range(CHUNKS)] + [chunk("", "stop"), USAGE, b"data: [DONE]\n\n"]


class Done:
    """granian's answer to an accepted ``send_bytes``: an awaitable already finished."""

    def __await__(self) -> Generator[Any, None, None]:
        return iter(())


class Refused:
    def __await__(self) -> Generator[Any, None, None]:
        raise RuntimeError("transport closed")
        yield  # pragma: no cover


class Transport:
    def __init__(self, *, refuse: bool = False) -> None:
        self.sent: list[bytes] = []
        self.refuse = refuse

    def send_bytes(self, data: bytes) -> Done | Refused:
        if self.refuse:
            return Refused()
        self.sent.append(data)
        return Done()


def handlers(seen: dict[str, Any]) -> dict[str, Callable[[web.Request], Awaitable[Any]]]:
    async def paced(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for event in WHOLE:
                await response.write(event)
                await asyncio.sleep(0.003)
        except (ConnectionError, RuntimeError):
            seen["gone"] = True
        return response

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for i in range(2000):
                await response.write(chunk(f"e{i} "))
                await asyncio.sleep(0.005)
        except (ConnectionError, RuntimeError):
            seen["gone"] = True
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk("a"))
        await asyncio.sleep(10)
        return response

    async def silent(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(10)
        return response

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk("a") + chunk("b"))
        await response.write_eof()
        return response

    async def refusing(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "slow down"}}, status=429)

    return {
        "/paced/chat/completions": paced,
        "/endless/chat/completions": endless,
        "/stall/chat/completions": stall,
        "/silent/chat/completions": silent,
        "/cut/chat/completions": cut,
        "/refusing/chat/completions": refusing,
    }


Scenario = Callable[[Callable[..., OpenAIProvider], dict[str, Any]], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        seen: dict[str, Any] = {}
        app = web.Application()
        app.add_routes([web.post(path, h) for path, h in handlers(seen).items()])
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        upstream = NativeUpstream(asyncio.get_running_loop(), 8)

        def provider(route: str, timeouts: Timeouts = PATIENT) -> OpenAIProvider:
            built = OpenAIProvider(
                "mock",
                "openai_compatible",
                base_url=f"{url}/{route}",
                api_key="sk-test",
                extra_headers={},
                upstream=upstream,
                timeouts=timeouts,
            )
            built.relays_natively = True
            return built

        try:
            await asyncio.wait_for(scenario(provider, seen), timeout=20)
        finally:
            await upstream.close()
            await runner.cleanup()

    asyncio.run(main())


CALL = Call(
    body=b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}',
    model="m",
    requested_model="m",
    stream=True,
    include_usage=True,
)


async def rest(stream: NativeOpenAIStream) -> bytes:
    return b"".join([piece async for piece in stream])


@pytest.fixture
def ready_events(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every READY the event loop is handed, by stream."""
    seen: list[int] = []
    deliver = native_upstream.NativeRelay.deliver

    def counting(self: native_upstream.NativeRelay, kind: int, value: Any) -> None:
        if kind == native_upstream._READY:
            seen.append(kind)
        deliver(self, kind, value)

    monkeypatch.setattr(native_upstream.NativeRelay, "deliver", counting)
    return seen


def test_an_attached_stream_is_written_whole_with_no_event_per_chunk(
    ready_events: list[int],
) -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        stream = await provider("paced").stream(CALL)
        assert isinstance(stream, NativeOpenAIStream)
        assert stream.first == WHOLE[0]
        before = len(ready_events)
        transport = Transport()
        assert await stream.relay_to(transport, 2**40) == 0
        assert len(ready_events) == before, "no READY reached Python while attached"
        assert await rest(stream) == b"", "a clean end adds nothing"
        assert stream.first + b"".join(transport.sent) == b"".join(WHOLE)
        assert len(transport.sent) < len(WHOLE)
        summary = stream.summary
        assert summary.content == "".join(f"w{i} " for i in range(CHUNKS))
        assert summary.finish_reason == "stop" and summary.completed
        assert summary.usage is not None and summary.usage.total_tokens == 25
        assert summary.error is None and summary.chunks == CHUNKS + 2

    run(scenario)


def test_the_usage_chunk_is_kept_from_a_client_that_did_not_ask() -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        stream = await provider("paced").stream(replace(CALL, include_usage=False))
        transport = Transport()
        await stream.relay_to(transport, 2**40)
        await rest(stream)
        relayed = stream.first + b"".join(transport.sent)
        assert relayed == b"".join(event for event in WHOLE if event != USAGE)
        assert stream.summary.usage is not None and stream.summary.usage.total_tokens == 25

    run(scenario)


def test_a_spent_budget_hands_the_stream_back_to_the_event_loop() -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        stream = await provider("paced").stream(CALL)
        transport = Transport()
        sent = await stream.relay_to(transport, 400)
        assert sent >= 400 and sent == sum(map(len, transport.sent))
        later = await rest(stream)
        assert stream.first + b"".join(transport.sent) + later == b"".join(WHOLE)
        assert stream.summary.completed

    run(scenario)


def test_the_stream_read_in_batches_without_a_transport() -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        stream = await provider("paced").stream(CALL)
        assert stream.first + await rest(stream) == b"".join(WHOLE)
        assert stream.summary.finish_reason == "stop"

    run(scenario)


def test_a_silence_under_way_ends_with_an_error_event() -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        limits = Timeouts(connect=5, first_byte=0.3, total=5)
        stream = await provider("stall", limits).stream(CALL)
        transport = Transport()
        assert await stream.relay_to(transport, 2**40) == 0
        last = await rest(stream)
        assert b"sent nothing for 0.3s (first_byte_timeout)" in last
        assert last.startswith(b"data: {") and b'"error"' in last
        assert isinstance(stream.summary.failure, errors.GatewayTimeout)
        assert not stream.summary.completed

    run(scenario)


def test_a_stream_cut_short_ends_with_an_error_event_never_a_clean_end() -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        stream = await provider("cut").stream(CALL)
        transport = Transport()
        await stream.relay_to(transport, 2**40)
        last = await rest(stream)
        assert b"mock ended the stream early" in last
        assert stream.summary.error == "mock ended the stream early"
        assert stream.summary.content == "ab"

    run(scenario)


def test_failures_before_the_first_event_raise_so_the_request_can_fall_back() -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        with pytest.raises(errors.RateLimitExceeded):
            await provider("refusing").stream(CALL)
        limits = Timeouts(connect=5, first_byte=0.3, total=5)
        with pytest.raises(errors.GatewayTimeout, match="sent no event in time"):
            await provider("silent", limits).stream(CALL)

    run(scenario)


def test_a_refused_write_is_a_client_gone_and_closing_ends_the_upstream_call() -> None:
    async def scenario(provider: Callable[..., OpenAIProvider], seen: dict[str, Any]) -> None:
        stream = await provider("endless").stream(CALL)
        with pytest.raises(ClientGone):
            await stream.relay_to(Transport(refuse=True), 2**40)
        await stream.close()
        for _ in range(100):
            if seen.get("gone"):
                break
            await asyncio.sleep(0.02)
        assert seen.get("gone"), "the provider saw its connection closed"
        assert stream.summary.content.startswith("e0 ")

    run(scenario)
