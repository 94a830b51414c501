"""The native implementation of ``Upstream`` (the default): ``floopy._native.NativeUpstream``
runs every call on its tokio thread; this side keeps, by call number, the future of each
fetch and the open response of each stream, and resolves them from the completion queue.

The queue's descriptor is watched with ``loop.add_reader``: one wake-up, one ``drain()``,
every call that finished meanwhile resolved in one callback. A stream's chunks wait in its
response until read; the native side stops reading from the provider once a stream has
``WINDOW_BYTES`` not yet read here (each read reports back with ``consumed``), so a slow
client slows its provider rather than filling the worker's memory. A caller cancelled while
waiting (a client gone, a time limit) cancels the native call, which closes its connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from floopy import _native, errors
from floopy.upstream.base import Answer, Timeouts

CLOSED = "the upstream client is closed"

# Unread bytes one stream may queue before the native side stops reading its provider.
WINDOW_BYTES = 256 * 1024

_ANSWER, _HEAD, _CHUNK, _END, _ERROR, _READY, _GONE = (
    _native.NativeUpstream.ANSWER,
    _native.NativeUpstream.HEAD,
    _native.NativeUpstream.CHUNK,
    _native.NativeUpstream.END,
    _native.NativeUpstream.ERROR,
    _native.NativeUpstream.READY,
    _native.NativeUpstream.GONE,
)


class NativeUpstream:
    """The worker's native client: its calls by number, resolved as the queue drains."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool_size: int,
        window_bytes: int = WINDOW_BYTES,
        max_answer_bytes: int | None = None,
    ) -> None:
        self._client = _native.NativeUpstream(
            max_connections=pool_size,
            window_bytes=window_bytes,
            max_answer_bytes=max_answer_bytes,
        )
        self._loop = loop
        self._fetches: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, NativeResponse | NativeRelay] = {}
        self._fd = self._client.fileno()
        self._closed = False
        loop.add_reader(self._fd, self._drain)

    @property
    def in_flight(self) -> int:
        """Native calls not yet over: what a cancelled or closed call no longer counts in."""
        return self._client.in_flight

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> Answer:
        self._check_open()
        call = self._client.post(
            url, headers, body, timeouts.connect, timeouts.first_byte, timeouts.total
        )
        future: asyncio.Future[Any] = self._loop.create_future()
        self._fetches[call] = future
        try:
            status, pairs, data = await future
        finally:
            if self._fetches.pop(call, None) is not None:  # cancelled while waiting
                self._client.cancel(call)
        return Answer(status, dict(pairs), data)

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> NativeResponse:
        self._check_open()
        call = self._client.post(
            url, headers, body, timeouts.connect, timeouts.first_byte, timeouts.total, stream=True
        )
        response = NativeResponse(self, call)
        self._streams[call] = response
        try:
            await response.opened()
        except BaseException:
            response.close()
            raise
        return response

    async def relay(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeouts: Timeouts,
        *,
        strip_usage: bool,
        max_capture_bytes: int,
        source: str = "openai",
        model: str = "",
        include_usage: bool = False,
        json_tool: str | None = None,
        fallback_id: str = "",
        messages_model: str | None = None,
    ) -> NativeRelay | Answer:
        """Opens a chat stream that the native thread reads, translates (``source``, and
        ``messages_model``: see ``_native.stream_translator``) and relays (see
        ``NativeRelay``); returns it once its status and headers are in, or the whole answer
        of a status other than 200. Its time limits (the first event within
        ``timeouts.first_byte`` of the start, then no silence longer than it, all of it
        within ``timeouts.total``) run on the native side."""
        self._check_open()
        call, capture = self._client.relay(
            url,
            headers,
            body,
            timeouts.connect,
            timeouts.first_byte,
            timeouts.total,
            first_event_timeout=timeouts.first_byte,
            idle_timeout=timeouts.first_byte,
            strip_usage=strip_usage,
            max_capture_bytes=max_capture_bytes,
            source=source,
            model=model,
            include_usage=include_usage,
            json_tool=json_tool,
            fallback_id=fallback_id,
            messages_model=messages_model,
        )
        relay = NativeRelay(self, call, capture)
        self._streams[call] = relay
        try:
            answer = await relay.opened()
        except BaseException:
            relay.close()
            raise
        if answer is not None:
            relay.close()
            return answer
        return relay

    async def close(self) -> None:
        """Stops the native thread; calls still waiting, and later ones, fail with
        ``UpstreamError``."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self._client.close()
        for future in self._fetches.values():
            if not future.done():
                future.set_exception(errors.UpstreamError(CLOSED))
        for response in list(self._streams.values()):
            response.deliver(_ERROR, errors.UpstreamError(CLOSED))
        self._fetches.clear()
        self._streams.clear()

    def _check_open(self) -> None:
        # Once closed, nothing drains the queue any more: a call would wait forever.
        if self._closed:
            raise errors.UpstreamError(CLOSED)

    def consumed(self, call: int, size: int) -> None:
        self._client.consumed(call, size)

    @property
    def native(self) -> _native.NativeUpstream:
        return self._client

    def forget(self, call: int, *, cancel: bool) -> None:
        """A stream is over here: its later events, if any, are dropped."""
        stream = self._streams.pop(call, None)
        if stream is not None and cancel:
            self._client.cancel(call)

    def _drain(self) -> None:
        for call, kind, value in self._client.drain():
            response = self._streams.get(call)
            if response is not None:
                response.deliver(kind, value)
                continue
            future = self._fetches.pop(call, None)
            if future is None or future.done():
                continue  # its caller was cancelled meanwhile
            if kind == _ERROR:
                future.set_exception(value)
            else:
                future.set_result(value)


class NativeResponse:
    """A native stream as the seam's ``Response``: its chunks as they are drained."""

    def __init__(self, owner: NativeUpstream, call: int) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._owner = owner
        self._call = call
        self._head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pieces: deque[bytes] = deque()
        self._error: BaseException | None = None
        self._ended = False
        self._closed = False
        self._wakeup: asyncio.Future[None] | None = None

    async def opened(self) -> None:
        await self._head

    def deliver(self, kind: int, value: Any) -> None:
        """One drained event of this call. Never raises: the other calls drained in the same
        batch must still get theirs."""
        if kind == _CHUNK:
            self._pieces.append(value)
        elif kind == _HEAD:
            self.status, pairs = value
            self.headers = dict(pairs)
            if not self._head.done():
                self._head.set_result(None)
        else:
            self._ended = True
            self._owner.forget(self._call, cancel=False)
            if kind == _ERROR:
                self._error = value
                if not self._head.done():
                    self._head.set_exception(value)
        self._wake()

    def chunks(self) -> NativeResponse:
        return self

    def __aiter__(self) -> NativeResponse:
        return self

    async def __anext__(self) -> bytes:
        while not self._pieces:
            if self._error is not None:
                raise self._error
            if self._ended or self._closed:
                raise StopAsyncIteration
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        piece = self._pieces.popleft()
        if not self._ended:
            self._owner.consumed(self._call, len(piece))
        return piece

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner.forget(self._call, cancel=not self._ended)
            self._pieces.clear()
            self._wake()

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)


class ClientGone(Exception):
    """The server refused a relayed stream's bytes: its client has gone."""

    def __init__(self, message: str = "the server refused the stream's bytes") -> None:
        super().__init__(message)


class NativeRelay:
    """A chat stream read, translated, relayed and captured on the native thread.

    Its bytes wait in a native outbox. Read here (``next_batch``), every batch that is ready
    comes at once, whatever number of chunks it holds. ``attach`` hands the outbox to the
    native side instead: the completion queue's callback writes each batch to the server's
    transport itself, so no Python code runs per chunk, until ``budget`` bytes went (then the
    stream is this side's again, to be paced against its client), the stream ends, or the
    transport refuses the bytes (``ClientGone``). ``capture`` is the native relay's view of
    the stream (text, usage, finish reason)."""

    def __init__(self, owner: NativeUpstream, call: int, capture: _native.RelayCapture) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.capture = capture
        self.error: BaseException | None = None
        self.ended = False
        self._owner = owner
        self._call = call
        self._head: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._ready = False
        self._gone = False
        self._attached = False
        self._handed_back: int | None = None
        self._closed = False
        self._wakeup: asyncio.Future[None] | None = None

    async def opened(self) -> Answer | None:
        """Once the status and headers are in: None for a 200, else the whole answer.
        Raises the call's failure before that."""
        return await self._head

    async def settled(self) -> None:
        """Returns once bytes are ready, or the stream is over (``error`` says if it
        failed)."""
        while not (self._ready or self.ended):
            await self._wait()

    def deliver(self, kind: int, value: Any) -> None:
        """One drained event of this call; never raises (see ``NativeResponse.deliver``)."""
        if kind == _READY:
            self._ready = True
            if value is not None:  # the native side spent its budget and handed back
                self._attached, self._handed_back = False, value
        elif kind == _HEAD:
            self.status, pairs = value
            self.headers = dict(pairs)
            if not self._head.done():
                self._head.set_result(None)
        elif kind == _GONE:
            self._attached, self._gone = False, True
        elif kind == _ANSWER:
            status, pairs, data = value
            self.ended = True
            self._owner.forget(self._call, cancel=False)
            if not self._head.done():
                self._head.set_result(Answer(status, dict(pairs), data))
        else:
            self.ended = True
            self._owner.forget(self._call, cancel=False)
            if kind == _ERROR:
                self.error = value
                if not self._head.done():
                    self._head.set_exception(value)
        self._wake()

    def take(self) -> bytes:
        """The bytes ready now (maybe none)."""
        self._ready = False
        return self._owner.native.take(self._call)

    async def next_batch(self) -> bytes:
        """Every byte ready, once some are; b"" at the end of the stream (its failure, if it
        failed, is in ``error``). Raises ClientGone if the transport refused bytes."""
        while True:
            if self._gone:
                raise ClientGone
            if self._ready or self.ended:
                batch = self.take()
                if batch or self.ended:
                    return batch
            await self._wait()

    async def attach(self, transport: Any, budget: int) -> int:
        """Lets the native side write to ``transport`` until the stream ends (returns 0), its
        ``budget`` is spent (returns the bytes it sent; what follows is read here again), or
        the transport refuses bytes (raises ClientGone)."""
        kind, sent = self._owner.native.attach(self._call, transport, budget)
        self._ready = False
        self._attached = kind == 0
        if kind == _GONE:
            raise ClientGone
        if kind == _READY:
            return int(sent)
        while self._attached and not self.ended:
            await self._wait()
        if self._gone:
            raise ClientGone
        if self.ended:
            self._owner.native.detach(self._call)
            self._attached = False
            return 0
        return self._handed_back or 0

    def close(self) -> None:
        """Ends the call (closing its connection if it was still going) and forgets it."""
        if not self._closed:
            self._closed = True
            self._owner.forget(self._call, cancel=not self.ended)
            self._owner.native.release(self._call)
            self._wake()

    async def _wait(self) -> None:
        if self._closed:
            raise ClientGone
        self._wakeup = asyncio.get_running_loop().create_future()
        await self._wakeup

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
