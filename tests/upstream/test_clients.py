"""The upstream seam (``floopy.upstream``), both clients against a real HTTP server on
loopback: answers, streams, the same exceptions for refused connections and time limits, and
a closed stream closing its connection. Then what only the native client has: its calls
counted in flight, cancellation, many calls resolved through one completion queue, closing
while calls wait, and bad input refused before anything is sent."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from floopy import _native, errors
from floopy.settings import load_settings
from floopy.upstream import (
    Timeouts,
    Upstream,
    UpstreamError,
    UpstreamTimeout,
    open_upstream,
)
from floopy.upstream.aiohttp_client import AiohttpUpstream
from floopy.upstream.native import NativeUpstream

CLIENTS = ["native", "aiohttp"]
PATIENT = Timeouts(connect=5, first_byte=5, total=5)
JSON = {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}


@dataclass
class Server:
    """What the test server saw: a drip stream's reads, and whether its client left."""

    url: str
    drip_sent: int = 0
    drip_client_gone: asyncio.Event = field(default_factory=asyncio.Event)


def routes(server: Server) -> list[web.RouteDef]:
    async def echo(request: web.Request) -> web.Response:
        seen = {"headers": dict(request.headers), "body": await request.text()}
        return web.json_response(seen, status=201, headers={"X-Request-Id": "req-1"})

    async def bulky(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 200_000, content_type="application/json")

    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "overloaded"}}, status=503)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.json_response({})

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(3):
            await response.write(f"data: {i}\n\n".encode())
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: 0\n\n")
        await asyncio.sleep(10)
        return response

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for _ in range(500):
                await response.write(b"data: drip\n\n")
                server.drip_sent += 1
                await asyncio.sleep(0.01)
        except (ConnectionError, RuntimeError):  # aiohttp: "Cannot write to closing transport"
            server.drip_client_gone.set()
        return response

    handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
        "/echo": echo,
        "/bulky": bulky,
        "/failing": failing,
        "/slow": slow,
        "/events": events,
        "/stall": stall,
        "/drip": drip,
    }
    return [web.post(path, handler) for path, handler in handlers.items()]


def open_client(kind: str, **options: Any) -> Upstream:
    if kind == "native":
        return NativeUpstream(asyncio.get_running_loop(), 8, **options)
    return AiohttpUpstream(8, 5.0, max_answer_bytes=options.get("max_answer_bytes"))


def run(kind: str, scenario: Callable[[Upstream, Server], Awaitable[None]], **options: Any) -> None:
    """Runs ``scenario`` with a fresh client of ``kind`` and a fresh server, in one loop."""

    async def main() -> None:
        server = Server(url="")
        app = web.Application()
        app.add_routes(routes(server))
        runner = web.AppRunner(app, shutdown_timeout=0.1)  # slow handlers are abandoned
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        client = open_client(kind, **options)
        try:
            await asyncio.wait_for(scenario(client, server), timeout=20)
        finally:
            await client.close()
            await runner.cleanup()

    asyncio.run(main())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def all_chunks(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


# --- the seam, both clients --------------------------------------------------------------------


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_whole_answer_past_the_cap_is_refused_unbuffered(kind: str) -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        with pytest.raises(errors.UpstreamError) as caught:
            await client.post(f"{server.url}/bulky", JSON, b"{}", PATIENT)
        assert caught.value.too_large

    run(kind, scenario, max_answer_bytes=100_000)


@pytest.mark.parametrize("kind", CLIENTS)
def test_post_reads_status_headers_and_body(kind: str) -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        answer = await client.post(f"{server.url}/echo", JSON, b'{"model": "m"}', PATIENT)
        assert answer.status == 201
        assert {k.lower(): v for k, v in answer.headers.items()}["x-request-id"] == "req-1"
        seen = json.loads(answer.body)
        assert seen["body"] == '{"model": "m"}'
        assert seen["headers"]["Authorization"] == "Bearer sk-test"
        if kind == "native":  # the native client never asks for a compressed answer
            assert seen["headers"]["Accept-Encoding"] == "identity"

    run(kind, scenario)


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_stream_arrives_in_pieces_and_ends(kind: str) -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        response = await client.open(f"{server.url}/events", JSON, b"{}", PATIENT)
        try:
            assert response.status == 200
            assert response.headers["content-type" if kind == "native" else "Content-Type"] == (
                "text/event-stream"
            )
            chunks = await all_chunks(response.chunks())
        finally:
            response.close()
        assert b"".join(chunks) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert all(chunks)

    run(kind, scenario)


@pytest.mark.parametrize("kind", CLIENTS)
def test_an_error_status_opened_as_a_stream_reads_whole(kind: str) -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        response = await client.open(f"{server.url}/failing", JSON, b"{}", PATIENT)
        try:
            assert response.status == 503
            assert json.loads(await response.read()) == {"error": {"message": "overloaded"}}
        finally:
            response.close()

    run(kind, scenario)


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_refused_connection_is_an_upstream_error(kind: str) -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        url = f"http://127.0.0.1:{closed_port()}/v1/chat/completions"
        with pytest.raises(UpstreamError):
            await client.post(url, JSON, b"{}", PATIENT)
        with pytest.raises(UpstreamError):
            await client.open(url, JSON, b"{}", PATIENT)

    run(kind, scenario)


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_whole_answer_is_held_to_the_total_limit_by_the_client_itself(kind: str) -> None:
    # The first-byte limit (5 s) is looser than the total (1.5 s): the total runs out first,
    # with no timer of the caller's around the call.
    async def scenario(client: Upstream, server: Server) -> None:
        with pytest.raises(UpstreamTimeout) as whole:
            await client.post(f"{server.url}/slow", JSON, b"{}", Timeouts(5, 5, 1.5))
        assert whole.value.phase == "total"

    run(kind, scenario)


@pytest.mark.parametrize("kind", CLIENTS)
def test_breaking_off_a_stream_closes_its_connection(kind: str) -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        response = await client.open(f"{server.url}/drip", JSON, b"{}", PATIENT)
        first = await response.chunks().__anext__()
        assert first.startswith(b"data: drip")
        response.close()
        await asyncio.wait_for(server.drip_client_gone.wait(), timeout=5)
        assert server.drip_sent < 500

    run(kind, scenario)


# --- the native client's own time limits -------------------------------------------------------


def test_native_limits_raise_the_seam_s_timeout_naming_the_phase() -> None:
    # Limits of 1.5 s: far from both the answers that come at once and the 10 s stalls, so a
    # loaded machine cannot tip the outcome.
    async def scenario(client: Upstream, server: Server) -> None:
        hurried = Timeouts(connect=5, first_byte=1.5, total=5)
        with pytest.raises(UpstreamTimeout) as head:
            await client.open(f"{server.url}/slow", JSON, b"{}", hurried)
        assert head.value.phase == "first_byte"
        with pytest.raises(UpstreamTimeout) as whole:
            await client.post(f"{server.url}/slow", JSON, b"{}", Timeouts(5, 5, 1.5))
        assert whole.value.phase == "total"
        response = await client.open(f"{server.url}/stall", JSON, b"{}", Timeouts(5, 5, 1.5))
        chunks = response.chunks()
        assert await chunks.__anext__() == b"data: 0\n\n"
        with pytest.raises(UpstreamTimeout) as mid_stream:
            await chunks.__anext__()
        assert mid_stream.value.phase == "total"
        assert isinstance(mid_stream.value, errors.GatewayTimeout)

    run("native", scenario)


# --- the native client's bridge ------------------------------------------------------------------


def test_a_cancelled_call_is_no_longer_in_flight_and_its_stream_connection_closes() -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        assert isinstance(client, NativeUpstream)
        waiting = asyncio.ensure_future(client.post(f"{server.url}/slow", JSON, b"{}", PATIENT))
        await asyncio.sleep(0.1)
        assert client.in_flight == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert client.in_flight == 0
        # A task cancelled while reading a stream (a client gone) ends the provider's call.
        response = await client.open(f"{server.url}/drip", JSON, b"{}", PATIENT)
        reading = asyncio.ensure_future(all_chunks(response.chunks()))
        await asyncio.sleep(0.05)
        reading.cancel()
        response.close()
        assert client.in_flight == 0
        await asyncio.wait_for(server.drip_client_gone.wait(), timeout=5)

    run("native", scenario)


def test_many_calls_at_once_each_get_their_own_answer() -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        bodies = [json.dumps({"n": n}).encode() for n in range(200)]
        answers = await asyncio.gather(
            *(client.post(f"{server.url}/echo", JSON, body, PATIENT) for body in bodies)
        )
        assert [json.loads(a.body)["body"] for a in answers] == [b.decode() for b in bodies]

    run("native", scenario)


def test_a_small_window_still_delivers_the_whole_stream() -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        response = await client.open(f"{server.url}/drip", JSON, b"{}", PATIENT)
        received = 0
        async for chunk in response.chunks():
            received += len(chunk)
            if received >= 40 * len(b"data: drip\n\n"):
                break
        response.close()
        assert received >= 40 * len(b"data: drip\n\n")

    run("native", scenario, window_bytes=16)


def test_closing_fails_waiting_calls_and_later_ones() -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        waiting = asyncio.ensure_future(client.post(f"{server.url}/slow", JSON, b"{}", PATIENT))
        await asyncio.sleep(0.05)
        await client.close()
        with pytest.raises(UpstreamError):
            await waiting
        with pytest.raises(UpstreamError):
            await client.post(f"{server.url}/echo", JSON, b"{}", PATIENT)

    run("native", scenario)


@pytest.mark.parametrize("argument", ["max_connections", "window_bytes"])
def test_negative_client_sizes_are_value_errors_naming_them(argument: str) -> None:
    with pytest.raises(ValueError, match=rf"^{argument} must not be negative, got -1$"):
        _native.NativeUpstream(**{argument: -1})


def test_bad_urls_headers_and_limits_are_refused_before_sending() -> None:
    async def scenario(client: Upstream, server: Server) -> None:
        with pytest.raises(errors.InvalidField) as url:
            await client.post("not a url", JSON, b"{}", PATIENT)
        assert url.value.param == "url"
        with pytest.raises(errors.InvalidField) as header:
            await client.post(f"{server.url}/echo", {"x-key": "sk-secret\n"}, b"{}", PATIENT)
        assert header.value.param == "x-key" and "sk-secret" not in str(header.value)
        with pytest.raises(ValueError, match="connect_timeout"):
            await client.post(f"{server.url}/echo", JSON, b"{}", Timeouts(-1, 5, 5))
        assert isinstance(client, NativeUpstream) and client.in_flight == 0

    run("native", scenario)


# --- choosing the client -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "cls"), [("native", NativeUpstream), ("aiohttp", AiohttpUpstream)]
)
def test_upstream_client_setting_picks_the_implementation(setting: str, cls: type) -> None:
    settings = load_settings({"FLOOPY_UPSTREAM_CLIENT": setting})

    async def main() -> None:
        client = open_upstream(settings, asyncio.get_running_loop())
        try:
            assert isinstance(client, cls)
        finally:
            await client.close()

    asyncio.run(main())
