"""The upstream HTTP client: how a worker's requests reach its providers.

One small protocol, ``Upstream``, with two implementations, chosen by ``UPSTREAM_CLIENT``:

- ``native`` (the default, ``upstream/native.py``): hyper in the native core
  (``rust/upstream``), on one tokio thread per worker, with HTTPS through rustls and HTTP/2
  where the provider offers it. Finished calls reach the event loop through a completion
  queue and one wake-up byte per batch, so the tokio thread never takes the GIL. On this
  project's benchmark (benches/RESULTS.md, "Upstream HTTP client") this design served 2.7
  times aiohttp's requests per second at 32 connections with 2.4 times less CPU per request;
  aiohttp itself served 12 times more than httpx.
- ``aiohttp`` (``upstream/aiohttp_client.py``): for what only aiohttp does, such as HTTP
  proxies (it honours ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY``) and compressed
  answers (it asks for gzip and decodes; the native client asks for ``identity``).

Both raise the same two classes of the error tree (``floopy.errors``), so providers never see
which one runs: ``UpstreamError`` (a ProviderError) when the provider cannot be reached or
breaks the connection, and ``UpstreamTimeout`` (a GatewayTimeout, its ``phase`` one of
``"connect"``, ``"first_byte"``, ``"total"``) when a time limit runs out. Neither knows the
provider's name; ``providers/http.py``, the one place providers call this module, adds it.

A client is opened inside the worker process, in its event loop, at start-up (``Worker.start``)
and closed with it, never at import time: granian forks its workers, and neither a connection
pool nor a thread survives a fork.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from floopy.errors import UpstreamError, UpstreamTimeout
from floopy.upstream.aiohttp_client import AiohttpUpstream
from floopy.upstream.base import Answer, Response, Timeouts, Upstream
from floopy.upstream.native import NativeUpstream

if TYPE_CHECKING:
    from floopy.settings import Settings

__all__ = [
    "Answer",
    "Response",
    "Timeouts",
    "Upstream",
    "UpstreamError",
    "UpstreamTimeout",
    "open_upstream",
]


def open_upstream(settings: Settings, loop: asyncio.AbstractEventLoop) -> Upstream:
    """The client ``UPSTREAM_CLIENT`` names, bound to this worker's event loop."""
    if settings.upstream_client == "aiohttp":
        return AiohttpUpstream(
            settings.upstream_pool_size,
            settings.upstream_connect_timeout,
            max_answer_bytes=settings.max_response_bytes,
        )
    return NativeUpstream(
        loop, settings.upstream_pool_size, max_answer_bytes=settings.max_response_bytes
    )
