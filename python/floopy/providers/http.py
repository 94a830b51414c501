"""Calling a provider over HTTP: the time limits and transport failures every provider shares.

A provider that cannot be reached, or does not answer in time, becomes the gateway's
ProviderError or GatewayTimeout (which the dispatcher may fall back from); reading what an
answer means, and mapping an upstream error body, is each provider's own business.

This is the one place providers reach the network: through the worker's ``Upstream``
(``floopy.upstream``: the native client, or aiohttp). Their ``UpstreamError`` and
``UpstreamTimeout`` do not know the provider; ``_named`` is the one place that names it in
the ProviderError or GatewayTimeout the client sees.

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
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar

from floopy import errors
from floopy.providers.base import CONTENT_LIMIT, StreamSummary
from floopy.upstream import Answer, Response, Timeouts, Upstream
from floopy.upstream.native import NativeUpstream

if TYPE_CHECKING:
    from floopy.providers.base import Call
    from floopy.providers.native_stream import NativeCall

__all__ = [
    "Answer",
    "HttpProvider",
    "RelayedStream",
    "Timeouts",
    "UpstreamBody",
    "open_failure",
    "open_stream",
    "oversized_event",
    "post",
    "stream_failure",
]


async def post(
    upstream: Upstream,
    provider: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
) -> Answer:
    """POSTs ``body`` and reads the whole answer, whatever its status: the status and
    headers within ``timeouts.first_byte``, all of it within ``timeouts.total``. The
    upstream client keeps both limits itself (its ``post`` contract), on its own clock: no
    loop timer here."""
    try:
        return await upstream.post(url, headers, body, timeouts)
    except TRANSPORT_FAILURES as exc:
        raise _named(provider, exc, "is unreachable", _ran_out(timeouts, exc)) from exc


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
    except TRANSPORT_FAILURES as exc:
        raise _named(provider, exc, "is unreachable", _ran_out(timeouts, exc)) from exc


S = TypeVar("S", bound="RelayedStream")


class HttpProvider:
    """The skeleton every HTTP provider shares: its name, the worker's upstream client, its
    time limits and request headers; a whole answer and an opened stream, each non-200
    answer turned into the provider's own error (``_error``). ``content_limit`` is how much
    of a stream's text its summary keeps for the log.

    With ``relays_natively`` (STREAM_RELAY "native") and the native upstream client, a
    provider's chat streams are read, translated and relayed on the native thread
    (``native_call``)."""

    kind: str
    relays_natively = False

    def __init__(
        self,
        name: str,
        *,
        upstream: Upstream,
        timeouts: Timeouts,
        headers: dict[str, str],
        content_limit: int = CONTENT_LIMIT,
    ) -> None:
        self.name = name
        self._upstream = upstream
        self._timeouts = timeouts
        self._headers = headers
        self._content_limit = content_limit

    async def close(self) -> None:
        """The upstream client belongs to the worker, which closes it."""

    async def _post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        """The whole answer of a 200; any other status raises the provider's error."""
        answer = await post(
            self._upstream, self.name, url, body, headers or self._headers, self._timeouts
        )
        if answer.status != 200:
            raise self._error(answer)
        return answer

    async def _relay(
        self,
        url: str,
        body: bytes,
        relayed: Callable[[UpstreamBody], S],
        headers: dict[str, str] | None = None,
    ) -> S:
        """The stream ``relayed`` makes of the open upstream body, once its first event is in
        hand; a non-200 answer raises the provider's error."""
        opened = await open_stream(
            self._upstream, self.name, url, body, headers or self._headers, self._timeouts
        )
        if isinstance(opened, Answer):
            raise self._error(opened)
        stream = relayed(opened)
        await stream.open()
        return stream

    def native_call(self, call: Call) -> NativeCall | None:
        """How the native client relays ``call``'s stream; None when it does not (the
        Python relay reads it)."""
        return None

    def _native_upstream(self) -> NativeUpstream | None:
        """The native client, when this provider's streams are relayed by it; else None."""
        upstream = self._upstream
        if self.relays_natively and isinstance(upstream, NativeUpstream):
            return upstream
        return None

    def _error(self, answer: Answer) -> errors.FloopyError:
        """The client-facing error of a non-200 answer."""
        raise NotImplementedError


# The upstream client's failures, and our own timers running out (asyncio's TimeoutError).
TRANSPORT_FAILURES = (TimeoutError, errors.UpstreamError, errors.UpstreamTimeout)


def _named(
    provider: str, exc: Exception, broken: str, ran_out: str
) -> errors.ProviderError | errors.GatewayTimeout:
    """A transport failure as the client sees it, named after the provider: a broken or
    unreachable provider is a ProviderError, a time limit a GatewayTimeout (both may fall
    back). ``broken`` and ``ran_out`` word it for the moment it happened."""
    if isinstance(exc, errors.UpstreamError):
        if exc.too_large:
            return errors.ProviderError(f"{provider} {exc} (MAX_RESPONSE_BYTES)")
        return errors.ProviderError(f"{provider} {broken}: {exc}")
    return errors.GatewayTimeout(f"{provider} {ran_out}")


def open_failure(
    provider: str, exc: Exception, timeouts: Timeouts
) -> errors.ProviderError | errors.GatewayTimeout:
    """A transport failure before any answer came, as the client sees it."""
    return _named(provider, exc, "is unreachable", _ran_out(timeouts, exc))


def stream_failure(
    provider: str, exc: Exception, ran_out: str
) -> errors.ProviderError | errors.GatewayTimeout:
    """A transport failure of a stream under way; ``ran_out`` words a time limit."""
    return _named(provider, exc, "broke the stream", ran_out)


def _ran_out(timeouts: Timeouts, exc: Exception) -> str:
    phase = getattr(exc, "phase", None)
    if phase == "connect":
        return f"could not be connected to within {timeouts.connect:g}s (connect_timeout)"
    if phase == "first_byte":
        return f"sent no response within {timeouts.first_byte:g}s (first_byte_timeout)"
    return "did not answer in time"


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
        except TRANSPORT_FAILURES as exc:
            self.close()
            raise _named(self.provider, exc, "broke the stream", what_ran_out) from exc

    def _past_total(self) -> str:
        return f"did not finish within {self._timeouts.total:g}s (total_timeout)"


def oversized_event(provider: str, limit: int) -> errors.ProviderError:
    """An upstream event too long to be real (a line that never ends): the native parser
    dropped it rather than buffer it, and the stream ends here."""
    return errors.ProviderError(f"{provider} sent an event of more than {limit} bytes")


class RelayedStream:
    """An upstream stream turned into OpenAI-format SSE bytes, chunk by chunk (see
    ``base.Stream``). Each provider says what a chunk becomes (``_feed``), what the end of
    the upstream stream adds (``_finish``), when the stream counts as open, and what its
    summary holds; reading, failing and closing are the same for all of them.

    ``open`` reads until the first event: until then a failure raises, so the request can
    still fall back. Iterating relays the rest; a failure after that (a time limit, a broken
    connection, an oversized event) ends the stream with an error event instead."""

    def __init__(self, body: UpstreamBody) -> None:
        self.provider = body.provider
        self.first = b""
        self.summary = StreamSummary()
        self._body = body
        self._relaying = False  # iterating, and not yet summarized

    async def open(self) -> None:
        try:
            while not self._opened():
                chunk = await self._body.first_chunk()
                if not chunk:
                    self.first += self._finish()
                    break
                self.first += self._feed(chunk)
        except errors.FloopyError:
            await self.close()
            raise
        failure = self._open_failure()
        if failure is not None:
            await self.close()
            raise failure

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._relaying = True
        try:
            while chunk := await self._body.next_chunk():
                out = self._feed(chunk)
                if out:
                    yield out
            tail = self._finish()
            if tail:
                yield tail
        except errors.FloopyError as exc:  # a time limit ran out, the stream broke or bloated
            self.summary.fail(exc)
            await self.close()
        finally:
            self._relaying = False
            self._summarize()
        last = self._closing_event()
        if last:
            yield last

    async def close(self) -> None:
        """Ends the upstream call. A stream closed while its relay waits between pieces (for
        a slow client, which then went away) is summarized here: its iteration may never
        resume to do it, and the log wants what came so far."""
        self._body.close()
        if self._relaying:
            self._relaying = False
            self._summarize()

    def _closed_early(self) -> errors.ProviderError:
        return errors.ProviderError(f"{self.provider} closed the stream before any event")

    def _ended_early(self, completed: bool, relayed_error: bool) -> errors.FloopyError | None:
        """For a stream that did not end as it should: the failure to end it with, the
        summary noting it. None when it completed, or when the provider's own error event
        was already relayed."""
        summary = self.summary
        if summary.error is None and not completed:
            summary.error = f"{self.provider} ended the stream early"
        if summary.error is None or relayed_error:
            return None
        return summary.failure or errors.ProviderError(summary.error)

    def _opened(self) -> bool:
        """Whether the first event is in hand (``open`` stops reading)."""
        return bool(self.first)

    def _feed(self, chunk: bytes) -> bytes:
        """What the next upstream chunk becomes for the client (maybe nothing yet)."""
        raise NotImplementedError

    def _finish(self) -> bytes:
        """What the end of the upstream stream adds; called once."""
        raise NotImplementedError

    def _open_failure(self) -> errors.FloopyError | None:
        """After ``open`` read: why the stream cannot be answered, if it cannot."""
        return None if self.first else self._closed_early()

    def _summarize(self) -> None:
        """Fills ``summary`` once the stream has ended, however it ended."""
        raise NotImplementedError

    def _closing_event(self) -> bytes:
        """The error event that ends a stream cut short, or b"" after a clean end."""
        raise NotImplementedError
