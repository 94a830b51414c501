"""Bench proxy: the same hyper client, bridged by a wake-up socket instead of per-call GIL hops.

The tokio thread queues finished calls and writes one byte; the event loop reads it, drains the
queue and resolves every waiting future in one callback (see rust_client/src/pipe.rs).
"""

from __future__ import annotations

import asyncio
import itertools
import os

import floopy_bench_client as native
from granian.rsgi import HTTPProtocol, Scope

UPSTREAM = os.environ["FLOOPY_BENCH_UPSTREAM"]
POOL_SIZE = 64
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]


class Bridge:
    """Numbers calls, keeps their futures (responses) or queues (streams), resolves them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._client = native.PipeClient(UPSTREAM, POOL_SIZE)
        self._loop = loop
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[tuple[int, bytes]] | asyncio.Queue[object]] = {}
        loop.add_reader(self._client.fileno(), self._drain)

    def post(self, path: str, body: bytes) -> asyncio.Future[tuple[int, bytes]]:
        call = next(self._ids)
        future: asyncio.Future[tuple[int, bytes]] = self._loop.create_future()
        self._waiting[call] = future
        self._client.post(call, path, body)
        return future

    async def stream(self, path: str, body: bytes) -> tuple[int, asyncio.Queue[object]]:
        call = next(self._ids)
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._waiting[call] = queue
        self._client.stream(call, path, body)
        status = await queue.get()
        if isinstance(status, ConnectionError):
            raise status
        return int(status), queue  # type: ignore[call-overload]

    def close(self) -> None:
        self._loop.remove_reader(self._client.fileno())

    def _drain(self) -> None:
        for call, kind, value in self._client.drain():
            waiting = self._waiting.get(call)
            if kind in (native.RESPONSE, native.ERROR, native.END):
                self._waiting.pop(call, None)
            if waiting is None:
                continue
            outcome = ConnectionError(value) if kind == native.ERROR else value
            if isinstance(waiting, asyncio.Queue):
                waiting.put_nowait(outcome)
            elif not waiting.done():  # a cancelled caller has gone away
                if isinstance(outcome, ConnectionError):
                    waiting.set_exception(outcome)
                else:
                    waiting.set_result(outcome)


class Proxy:
    bridge: Bridge

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.bridge = Bridge(loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.bridge.close()

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        body = await proto()
        if scope.path.startswith("/stream/"):
            status, queue = await self.bridge.stream(scope.path, body)
            transport = proto.response_stream(status, SSE)
            while (chunk := await queue.get()) is not None:
                if isinstance(chunk, ConnectionError):
                    raise chunk
                await transport.send_bytes(chunk)  # type: ignore[arg-type]
        else:
            status, data = await self.bridge.post(scope.path, body)
            proto.response_bytes(status, JSON, data)


app = Proxy()
