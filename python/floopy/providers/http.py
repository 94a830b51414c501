"""Calling a provider over HTTP: the time limits and transport failures every provider shares.

A provider that cannot be reached, or does not answer in time, becomes the gateway's
ProviderError or GatewayTimeout (which the dispatcher may fall back from); reading what an
answer means, and mapping an upstream error body, is each provider's own business.

This is the one place providers reach the network: through the worker's ``Upstream``
(``floopy.upstream``: the native client, or aiohttp), whose ``UpstreamError`` and
``UpstreamTimeout`` become the gateway's errors here.

Each provider has its own ``Timeouts``, all counted from the moment its call starts:

- ``connect``: to open a connection, given to the client with each request;
- ``first_byte``: to the response headers and the first event of a stream; later in a
  stream, the longest silence between two reads;
- ``total``: the whole call, a stream to its last byte.

The silence and the total limits of a stream are one timer per read in ``UpstreamBody``, so
each can say which limit ran out (the native client also enforces ``total`` on its side).
"""

from __future__ import annotations

import asyncio

from floopy import errors
from floopy.upstream import Answer, Response, Timeouts, Upstream

__all__ = ["Answer", "Timeouts", "UpstreamBody", "open_stream", "oversized_event", "post"]


async def post(
    upstream: Upstream,
    provider: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
) -> Answer:
    """POSTs ``body`` and reads the whole answer, whatever its status, within
    ``timeouts.total``."""
    try:
        async with asyncio.timeout(timeouts.total):
            return await upstream.post(url, headers, body, timeouts)
    except TimeoutError as exc:
        raise _timed_out(provider, timeouts, exc) from None
    except OSError as exc:
        raise errors.ProviderError(f"{provider} is unreachable: {exc}") from exc


async def open_stream(
    upstream: Upstream,
    provider: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
) -> UpstreamBody | Answer:
    """POSTs ``body`` and returns the open body once the status is 200 (the caller reads
    and closes it), or the whole answer of any other status. The call's clock starts here."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout_at(started + min(timeouts.first_byte, timeouts.total)):
            response = await upstream.open(url, headers, body, timeouts)
            if response.status == 200:
                return UpstreamBody(provider, response, timeouts, started)
            try:
                return Answer(response.status, response.headers, await response.read())
            finally:
                response.close()
    except TimeoutError as exc:
        raise _timed_out(provider, timeouts, exc) from None
    except OSError as exc:
        raise errors.ProviderError(f"{provider} is unreachable: {exc}") from exc


def _timed_out(provider: str, timeouts: Timeouts, exc: TimeoutError) -> errors.GatewayTimeout:
    if getattr(exc, "phase", None) == "connect":
        return errors.GatewayTimeout(
            f"{provider} could not be connected to within {timeouts.connect:g}s (connect_timeout)"
        )
    return errors.GatewayTimeout(f"{provider} did not answer in time")


class UpstreamBody:
    """The body of a provider's open stream, read chunk by chunk within the call's limits.

    Until the first event, reads must end by ``first_byte`` after the call started; after
    it, no read may wait longer than ``first_byte`` (a stream gone silent), and none past
    ``total`` after the call started (a stream that trickles on forever). A read that runs
    out closes the upstream connection and raises GatewayTimeout; a broken connection raises
    ProviderError. Both reach the client as a real error before the first event (and can
    fall back), or as an error event ending a stream under way."""

    def __init__(
        self, provider: str, response: Response, timeouts: Timeouts, started: float
    ) -> None:
        self.provider = provider
        self._response = response
        self._timeouts = timeouts
        self._first_by = started + timeouts.first_byte
        self._ends = started + timeouts.total
        self._chunks = response.chunks().__aiter__()

    async def first_chunk(self) -> bytes:
        """The next chunk before the first event; b"" at the end of the body."""
        if self._first_by < self._ends:
            return await self._read(self._first_by, "sent no event in time (first_byte_timeout)")
        return await self._read(self._ends, self._past_total())

    async def next_chunk(self) -> bytes:
        """The next chunk of a stream under way; b"" at the end of the body."""
        quiet_until = asyncio.get_running_loop().time() + self._timeouts.first_byte
        if quiet_until < self._ends:
            silence = f"sent nothing for {self._timeouts.first_byte:g}s (first_byte_timeout)"
            return await self._read(quiet_until, silence)
        return await self._read(self._ends, self._past_total())

    def close(self) -> None:
        """Drops the upstream connection (a stream ended early must not be reused)."""
        self._response.close()

    async def _read(self, until: float, what_ran_out: str) -> bytes:
        try:
            if asyncio.get_running_loop().time() >= until:
                raise TimeoutError  # even if bytes are waiting: the limit has passed
            async with asyncio.timeout_at(until):
                return await self._chunks.__anext__()
        except StopAsyncIteration:
            return b""
        except TimeoutError:
            self.close()
            raise errors.GatewayTimeout(f"{self.provider} {what_ran_out}") from None
        except OSError as exc:  # the seam's UpstreamError: the connection broke
            self.close()
            raise errors.ProviderError(f"{self.provider} broke the stream: {exc}") from exc

    def _past_total(self) -> str:
        return f"did not finish within {self._timeouts.total:g}s (total_timeout)"


def oversized_event(provider: str, limit: int) -> errors.ProviderError:
    """An upstream event too long to be real (a line that never ends): the native parser
    dropped it rather than buffer it, and the stream ends here."""
    return errors.ProviderError(f"{provider} sent an event of more than {limit} bytes")
