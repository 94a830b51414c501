"""The upstream client's protocol and the values it takes and gives (see ``floopy.upstream``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Timeouts:
    """One provider's time limits, in seconds, each counted from the start of its call:
    ``connect`` to open a connection, ``first_byte`` to the response headers (and, in
    ``providers/http.py``, to a stream's first event), ``total`` for the whole call."""

    connect: float
    first_byte: float
    total: float


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer, whatever its status."""

    status: int
    headers: dict[str, str]
    body: bytes


class Response(Protocol):
    """An answer whose status and headers are in and whose body is still arriving."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> dict[str, str]: ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as the connection delivers it (never empty pieces)."""
        ...

    async def read(self) -> bytes:
        """The rest of the body, whole."""
        ...

    def close(self) -> None:
        """Ends the call: a body not read to its end closes the connection (a client that
        went away must not keep the provider generating)."""
        ...


class Upstream(Protocol):
    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> Answer:
        """POSTs ``body`` and reads the whole answer within ``timeouts.total``."""
        ...

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> Response:
        """POSTs ``body`` and returns once status and headers are in (within the earlier of
        ``first_byte`` and ``total``); the caller reads the body and closes it."""
        ...

    async def close(self) -> None: ...
