"""Stage: parse. The body read within the size limit, then parsed by the endpoint (the
native parser for chat and messages: size, depth, model and messages).

Reads the scope and the body; sets ``ctx.body``, ``ctx.chat`` (chat and messages),
``ctx.stream`` and the exchange's parsed request. Answers early with 413 for a body over
``MAX_BODY_BYTES`` and 400 for one that does not parse. ``Parser`` holds the worker's
configured native parsers, headers included (auth reads them first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from granian._granian import RSGIProtocolClosed

from floopy import _native, errors
from floopy.settings import defaults

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.pipeline.exchange import Exchange


async def run(exchange: Exchange) -> None:
    worker = exchange.worker
    exchange.ctx.body = await read_body(
        exchange.scope, exchange.proto, worker.parser, worker.settings.body_read_timeout
    )
    exchange.request = request = exchange.endpoint.parse(exchange)
    exchange.ctx.stream = request.stream


class RequestHeaders(Protocol):
    """The server's view of the request headers (granian's ``scope.headers``)."""

    def items(self) -> Iterable[tuple[str, str]]: ...
    def keys(self) -> Iterable[str]: ...


class Parser:
    """The configured native parsers of one worker: built once, called per request."""

    def __init__(
        self, max_body_bytes: int, max_depth: int, max_header_value: int, max_properties: int
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self._body = _native.RequestParser(max_body_bytes=max_body_bytes, max_depth=max_depth)
        self._headers = _native.HeaderExtractor(
            max_value_len=max_header_value, max_properties=max_properties
        )

    def headers(self, raw: RequestHeaders) -> _native.FloopyHeaders:
        # granian leaves out of items() a value it cannot decode (anything outside printable
        # ASCII) but keeps its name in keys(): the names let the extractor refuse such a
        # floopy-* header with a 400 instead of reading the request as if it were absent.
        return self._headers.extract(raw.items(), names=raw.keys())

    def chat(self, body: bytes) -> _native.ChatRequest:
        return self._body.parse(body)

    def check_json(self, body: bytes) -> None:
        """Size, JSON syntax, depth and a top-level object, checked as for a chat body, for
        endpoints whose fields are their own (embeddings): every endpoint parses within the
        same limits."""
        try:
            self._body.parse(body)
        except errors.InvalidField:
            return  # the chat fields are not this endpoint's business

    def check_length(self, declared: int) -> None:
        if declared > self.max_body_bytes:
            raise payload_too_large(declared, self.max_body_bytes)


def payload_too_large(size: int, limit: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(
        f"request body is {size} bytes, over the limit of {limit} bytes (MAX_BODY_BYTES)"
    )


async def read_body(
    scope: Scope,
    proto: HTTPProtocol,
    parser: Parser,
    seconds: float = defaults.BODY_READ_TIMEOUT,
) -> bytes:
    """The whole body within ``seconds`` (408 past it); a client that goes away meanwhile
    is a 499, not a failure of the gateway's.

    The limit is one loop timer that cancels this task: ``asyncio.timeout`` costs several
    times more, and this runs for every request. A declared length is checked before."""
    declared = _declared_length(scope, parser)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    assert task is not None
    expired: list[bool] = []

    def expire() -> None:
        expired.append(True)
        task.cancel()

    timer = loop.call_later(seconds, expire)
    try:
        if declared is not None:
            return await proto()
        return await _read_chunked(proto, parser)
    except asyncio.CancelledError:
        if not expired:
            raise
        task.uncancel()
        raise errors.RequestTimeout(
            f"the request body did not arrive within {seconds:g}s (BODY_READ_TIMEOUT)"
        ) from None
    except RSGIProtocolClosed:
        raise errors.ClientDisconnected(
            "the client disconnected while sending the request body"
        ) from None
    finally:
        timer.cancel()


def _declared_length(scope: Scope, parser: Parser) -> int | None:
    """The Content-Length, within the limit; None when there is none (chunked)."""
    declared = scope.headers.get("content-length")
    if declared is None:
        return None
    try:
        size = int(declared)
    except ValueError:
        raise errors.BadRequest("Content-Length is not a number") from None
    parser.check_length(size)
    return size


async def _read_chunked(proto: HTTPProtocol, parser: Parser) -> bytes:
    """No declared length: stop reading as soon as the limit is passed."""
    parts: list[bytes] = []
    received = 0
    async for part in proto:
        received += len(part)
        if received > parser.max_body_bytes:
            raise payload_too_large(received, parser.max_body_bytes)
        parts.append(part)
    return b"".join(parts)
