"""The aiohttp implementation of ``Upstream`` (``UPSTREAM_CLIENT = "aiohttp"``): for
environments that need what only aiohttp does, such as HTTP proxies.

The session honours ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (``trust_env``), asks
for compressed answers and decodes them. Each request carries its provider's connect limit;
the shared session's own is only the global default. aiohttp's errors become the seam's
``UpstreamError`` and ``UpstreamTimeout``, so providers never see aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from floopy.errors import UpstreamError, UpstreamTimeout
from floopy.upstream.base import Answer, Timeouts

# aiohttp wraps most socket errors in ClientError, but not every one (a reset while writing
# the body can surface as a bare OSError): both are a broken connection.
CLIENT_FAILURES = (aiohttp.ClientError, OSError)


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
        trust_env=True,
    )


def per_request(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """aiohttp's own limits for one request: only the connect limit. The first-byte and
    total limits are loop timers (here for a whole answer, ``providers/http.py`` for a
    stream), which say which ran out."""
    return aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect)


class AiohttpUpstream:
    def __init__(
        self, pool_size: int, connect_timeout: float, max_answer_bytes: int | None = None
    ) -> None:
        self._session = open_session(pool_size, connect_timeout)
        self._max_answer = max_answer_bytes

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> Answer:
        whole = asyncio.timeout(timeouts.total)
        try:
            async with whole:
                response = await self.open(url, headers, body, timeouts)
                try:
                    return Answer(response.status, response.headers, await self._whole(response))
                finally:
                    response.close()
        except TimeoutError:
            if whole.expired():
                raise UpstreamTimeout(
                    "no whole answer within the total timeout", phase="total"
                ) from None
            raise

    async def _whole(self, response: AiohttpResponse) -> bytes:
        """The body, refused past ``max_answer_bytes`` before more of it is buffered."""
        if self._max_answer is None:
            return await response.read()
        parts: list[bytes] = []
        size = 0
        async for part in response.chunks():
            size += len(part)
            if size > self._max_answer:
                refused = UpstreamError(f"sent an answer of more than {self._max_answer} bytes")
                refused.too_large = True
                raise refused
            parts.append(part)
        return b"".join(parts)

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> AiohttpResponse:
        head = asyncio.timeout(timeouts.first_byte)  # to the status and headers
        try:
            async with head:
                resp = await self._session.post(
                    url, data=body, headers=headers, timeout=per_request(timeouts)
                )
        except CLIENT_FAILURES as exc:
            if head.expired():
                raise UpstreamTimeout(
                    "no response within the first-byte timeout", phase="first_byte"
                ) from None
            raise seam_error(exc) from exc
        return AiohttpResponse(resp)

    async def close(self) -> None:
        await self._session.close()


class AiohttpResponse:
    """An open aiohttp response as the seam's ``Response``."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status

    @property
    def headers(self) -> dict[str, str]:
        return dict(self._resp.headers)

    def chunks(self) -> AsyncIterator[bytes]:
        return _Chunks(self._resp.content.iter_any().__aiter__())

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except CLIENT_FAILURES as exc:
            raise seam_error(exc) from exc

    def close(self) -> None:
        self._resp.close()


class _Chunks:
    """aiohttp's body iterator, its errors turned into the seam's."""

    def __init__(self, pieces: AsyncIterator[bytes]) -> None:
        self._pieces = pieces

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._pieces.__anext__()
        except CLIENT_FAILURES as exc:
            raise seam_error(exc) from exc


def seam_error(exc: aiohttp.ClientError | OSError) -> UpstreamError | UpstreamTimeout:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"no connection within the connect timeout: {exc}", phase="connect")
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        return UpstreamTimeout(str(exc) or "timed out")  # a socket's own limit
    return UpstreamError(str(exc) or type(exc).__name__)
