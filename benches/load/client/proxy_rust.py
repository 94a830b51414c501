"""Bench proxy: hyper on a one-worker tokio runtime, awaited through pyo3-async-runtimes."""

from __future__ import annotations

import asyncio
import os

from floopy_bench_client import Client
from granian.rsgi import HTTPProtocol, Scope

UPSTREAM = os.environ["FLOOPY_BENCH_UPSTREAM"]
POOL_SIZE = 64
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]


class Proxy:
    client: Client

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # The tokio runtime starts here, in the forked worker, never in granian's parent.
        self.client = Client(UPSTREAM, POOL_SIZE)

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        body = await proto()
        if scope.path.startswith("/stream/"):
            stream = await self.client.stream(scope.path, body)
            transport = proto.response_stream(stream.status, SSE)
            while (chunk := await stream.next()) is not None:
                await transport.send_bytes(chunk)
        else:
            status, data = await self.client.post(scope.path, body)
            proto.response_bytes(status, JSON, data)


app = Proxy()
