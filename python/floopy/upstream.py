"""The pooled upstream HTTP client, one per worker process.

aiohttp carries the hot path: on this project's benchmark it forwarded about 25 times more
requests per second than httpx's async client at 32 connections (benches/RESULTS.md). The
session is opened inside the worker's event loop at start-up, never at import time, because
granian forks workers and a connection pool must not cross a fork.
"""

from __future__ import annotations

import aiohttp


def open_session(pool_size: int, connect_timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=pool_size,
        limit_per_host=pool_size,
        ttl_dns_cache=300,
        keepalive_timeout=30,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        # Bodies are forwarded as received; never let the client library re-encode them.
        skip_auto_headers=("User-Agent",),
        auto_decompress=True,
        raise_for_status=False,
    )
