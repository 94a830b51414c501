"""Bench proxy: httpx's AsyncClient, the reference the foundation issue measured first."""

from __future__ import annotations

import asyncio
import os

import httpx
from granian.rsgi import HTTPProtocol, Scope

UPSTREAM = os.environ["FLOOPY_BENCH_UPSTREAM"]
POOL_SIZE = 64
HEADERS = {"Content-Type": "application/json"}
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]


class Proxy:
    client: httpx.AsyncClient

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Opened in the worker, after granian's fork, like every client here.
        limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        self.client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0, connect=5.0))

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.client.aclose())

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        body = await proto()
        url = UPSTREAM + scope.path
        if scope.path.startswith("/stream/"):
            async with self.client.stream("POST", url, content=body, headers=HEADERS) as resp:
                transport = proto.response_stream(resp.status_code, SSE)
                async for chunk in resp.aiter_raw():
                    await transport.send_bytes(chunk)
        else:
            resp = await self.client.post(url, content=body, headers=HEADERS)
            proto.response_bytes(resp.status_code, JSON, resp.content)


app = Proxy()
