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

_HEAD, _CHUNK, _END, _ERROR = (
    _native.NativeUpstream.HEAD,
    _native.NativeUpstream.CHUNK,
    _native.NativeUpstream.END,
    _native.NativeUpstream.ERROR,
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
        self._streams: dict[int, NativeResponse] = {}
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

    def forget(self, call: int, *, cancel: bool) -> None:
        """A stream is over here: its later events, if any, are dropped."""
        if self._streams.pop(call, None) is not None and cancel:
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
