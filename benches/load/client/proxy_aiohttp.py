"""Bench proxy: aiohttp's pooled ClientSession, set up like python/floopy/upstream.py."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import yarl
from granian.rsgi import HTTPProtocol, Scope

UPSTREAM = os.environ["FLOOPY_BENCH_UPSTREAM"]
POOL_SIZE = 64
HEADERS = {"Content-Type": "application/json"}
# Every proxy answers with fixed headers, so only the client's own work differs between them.
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]


async def _open() -> aiohttp.ClientSession:
    # Inside the worker's running loop: granian forks, and a pool must not cross a fork.
    connector = aiohttp.TCPConnector(
        limit=POOL_SIZE, limit_per_host=POOL_SIZE, ttl_dns_cache=300, keepalive_timeout=30
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        skip_auto_headers=("User-Agent",),
        raise_for_status=False,
    )


class Proxy:
    session: aiohttp.ClientSession
    urls: dict[str, yarl.URL]

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.session = loop.run_until_complete(_open())
        self.urls = {}

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.session.close())

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        body = await proto()
        async with self.session.post(self._url(scope.path), data=body, headers=HEADERS) as resp:
            if scope.path.startswith("/stream/"):
                transport = proto.response_stream(resp.status, SSE)
                async for chunk in resp.content.iter_any():
                    await transport.send_bytes(chunk)
            else:
                proto.response_bytes(resp.status, JSON, await resp.read())

    def _url(self, path: str) -> yarl.URL:
        # Parsed once per path, as a provider holds its endpoint: aiohttp's best case.
        url = self.urls.get(path)
        if url is None:
            url = self.urls[path] = yarl.URL(UPSTREAM + path)
        return url


app = Proxy()
