"""The answer of a missed request, kept aside as it goes to the client, so that it can be
stored once the response is complete: a whole answer as it is, a stream recorded piece by
piece (up to ``CACHE_MAX_ENTRY_BYTES``) and put back together when it ended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from floopy.pipeline.cache import answer
from floopy.providers.base import Completion

if TYPE_CHECKING:
    from floopy.context import RequestContext
    from floopy.pipeline.cache.answer import Entry
    from floopy.providers.base import Stream, StreamSummary
    from floopy.providers.operations import Reply


class RecordedStream:
    """A stream passed through unchanged, its bytes recorded while they fit the limit."""

    def __init__(self, inner: Stream, limit: int) -> None:
        self.first = inner.first
        self.summary: StreamSummary = inner.summary
        self._inner = inner
        self._parts = [inner.first]
        self._room = limit - len(inner.first)

    @property
    def overflowed(self) -> bool:
        return self._room < 0

    def recorded(self) -> bytes:
        return b"".join(self._parts)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            if self._room >= 0:
                self._room -= len(piece)
                self._parts.append(piece)
            yield piece

    async def close(self) -> None:
        await self._inner.close()


def whole_success(ctx: RequestContext, api: str, reply: Reply, limit: int) -> Entry | None:
    """The reply as an entry to store: only a whole success (status 200, no error, a finish
    reason; a stream that ended with it), else None."""
    if ctx.status != 200 or ctx.error_code is not None:
        return None
    if isinstance(reply, Completion):
        if reply.finish_reason is None or len(reply.body) > limit:
            return None
        body: bytes | None = reply.body
    elif isinstance(reply, RecordedStream):
        summary = reply.summary
        if reply.overflowed or summary.error is not None or summary.finish_reason is None:
            return None
        raw = reply.recorded()
        if api == "messages":
            body = answer.from_messages_stream(raw)
        else:
            body = answer.from_chat_stream(raw, ctx.usage)
    else:
        return None  # embeddings are not cached
    if body is None:
        return None
    return answer.entry(api, body, ctx.provider, ctx.model, ctx.usage, ctx.finish_reason)
