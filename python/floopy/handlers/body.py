"""Reading a request body within the size limit, before anything parses it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy import errors
from floopy.pipeline.parse import Parser, payload_too_large

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope


async def read_body(scope: Scope, proto: HTTPProtocol, parser: Parser) -> bytes:
    declared = scope.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise errors.BadRequest("Content-Length is not a number") from None
        parser.check_length(size)
        return await proto()
    # No declared length (chunked): stop reading as soon as the limit is passed.
    parts: list[bytes] = []
    received = 0
    async for part in proto:
        received += len(part)
        if received > parser.max_body_bytes:
            raise payload_too_large(received, parser.max_body_bytes)
        parts.append(part)
    return b"".join(parts)
