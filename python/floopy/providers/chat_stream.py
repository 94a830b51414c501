"""A chat-completion stream read as another API's event stream: the reading written once.

A translator takes OpenAI chunks (SSE bytes, in any pieces) and gives back the events of the
API the client speaks (Anthropic's Messages, the Responses API). What every translation
shares is here: each chunk decoded once (what is not a chunk, a comment or a vendor
extension, says nothing), its usage kept, its first choice's text and tool-call deltas and
finish reason handed on; ``[DONE]`` completes the answer; an error chunk, or a stream that
ends without a finish reason, fails it, because the client must learn that it was cut
short. A subclass says what each of those becomes (``start``, ``_text``, ``_tool``,
``_complete``, ``_chunk_error``, ``_cut``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from floopy._native import SseParser
from floopy.providers.base import Stream, Usage
from floopy.providers.chat_chunk import (
    Choice,
    ChunkError,
    ToolCallDelta,
    chunk_decoder,
    chunk_usage,
)

CUT_SHORT = "the provider ended the stream early"


class ChunkTranslator:
    def __init__(self) -> None:
        self._parser = SseParser()
        self._finish: str | None = None
        self._usage: Usage | None = None
        self.ended = False

    def start(self) -> bytes:
        """What goes out before the first chunk."""
        raise NotImplementedError

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._on(sse.data) for sse in self._parser.feed(data))

    def end(self) -> bytes:
        """At the end of the upstream stream: one that neither finished nor failed was cut
        short."""
        out = b"".join(self._on(sse.data) for sse in self._parser.finish())
        if self.ended:
            return out
        if self._finish is not None:
            return out + self._complete()
        return out + self._cut()

    def _on(self, data: str) -> bytes:
        if self.ended:
            return b""
        if data.strip() == "[DONE]":
            return self._complete()
        try:
            chunk = chunk_decoder.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return b""  # not a chunk (a comment, a vendor extension): nothing to say
        if chunk.error is not None:
            return self._chunk_error(chunk.error)
        if chunk.usage is not None:
            self._usage = chunk_usage(chunk.usage)
        return b"".join(self._choice(choice) for choice in chunk.choices[:1])

    def _choice(self, choice: Choice) -> bytes:
        out = []
        if choice.delta.content:
            out.append(self._text(choice.delta.content))
        for call in choice.delta.tool_calls or []:
            out.append(self._tool(call))
        if choice.finish_reason is not None:
            self._finish = choice.finish_reason
        return b"".join(out)

    def _text(self, text: str) -> bytes:
        raise NotImplementedError

    def _tool(self, call: ToolCallDelta) -> bytes:
        raise NotImplementedError

    def _complete(self) -> bytes:
        """The answer finished: the closing events. Sets ``ended``."""
        raise NotImplementedError

    def _chunk_error(self, error: ChunkError) -> bytes:
        """The provider sent an error mid-stream: the failure events. Sets ``ended``."""
        raise NotImplementedError

    def _cut(self) -> bytes:
        """The stream ended without a finish reason: the failure events. Sets ``ended``."""
        raise NotImplementedError


class TranslatedStream:
    """A provider's chat stream, relayed through a translator (see ``base.Stream``). The
    summary is the provider stream's own, filled as it is read."""

    def __init__(self, inner: Stream, translator: ChunkTranslator) -> None:
        self._inner = inner
        self._translator = translator
        self.summary = inner.summary
        self.first = translator.start() + translator.feed(inner.first)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            out = self._translator.feed(piece)
            if out:
                yield out
        tail = self._translator.end()
        if tail:
            yield tail

    async def close(self) -> None:
        await self._inner.close()
