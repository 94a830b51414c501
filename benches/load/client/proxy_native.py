"""Bench proxy: the gateway's own upstream client (``floopy.upstream.native``), called the
way providers call it, through the seam: ``post`` for a whole answer, ``open`` and
``chunks()`` for a stream. Unlike ``proxy_rust_pipe`` (the prototype), this is the code that
serves requests in the gateway: HTTPS-capable pools, time limits, bounded stream buffers."""

from __future__ import annotations

import asyncio
import os

from granian.rsgi import HTTPProtocol, Scope

from floopy.upstream import Timeouts
from floopy.upstream.native import NativeUpstream

UPSTREAM = os.environ["FLOOPY_BENCH_UPSTREAM"]
POOL_SIZE = 64
HEADERS = {"Content-Type": "application/json"}
LIMITS = Timeouts(connect=5, first_byte=60, total=600)
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]


class Proxy:
    upstream: NativeUpstream

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Inside the worker: the client's thread and pools must not cross granian's fork.
        self.upstream = NativeUpstream(loop, POOL_SIZE)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.upstream.close())

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        body = await proto()
        url = UPSTREAM + scope.path
        if scope.path.startswith("/stream/"):
            response = await self.upstream.open(url, HEADERS, body, LIMITS)
            try:
                transport = proto.response_stream(response.status, SSE)
                async for chunk in response.chunks():
                    await transport.send_bytes(chunk)
            finally:
                response.close()
        else:
            answer = await self.upstream.post(url, HEADERS, body, LIMITS)
            proto.response_bytes(answer.status, JSON, answer.body)


app = Proxy()
