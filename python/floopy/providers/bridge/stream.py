"""An OpenAI chat-completion stream as an Anthropic event stream, for ``/v1/messages``
answered by a provider that does not speak Anthropic's format.

message_start goes out at once; text and each tool call get a content block of their own
(content_block_start, deltas, content_block_stop), numbered in order as the anthropic SDKs
expect; ``[DONE]`` (after the usage chunk, which the request asked for) closes the last
block and sends message_delta with the stop reason and usage, then message_stop. An error
chunk, or a stream that ends without finishing, becomes an ``error`` event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from floopy.ids import hex32
from floopy.providers.anthropic.wire import ERROR_STATUS, error_event
from floopy.providers.base import Stream
from floopy.providers.bridge.response import anthropic_usage, message_id, stop_reason
from floopy.providers.chat_chunk import ChunkError, ToolCallDelta
from floopy.providers.chat_stream import CUT_SHORT, ChunkTranslator, TranslatedStream


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


class EventWriter(ChunkTranslator):
    """OpenAI chunks in (as SSE bytes, in any pieces), Anthropic events out."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self._model = model
        self._blocks = 0  # content blocks started so far
        self._open: int | None = None  # the block receiving deltas, until another starts
        self._text_block: int | None = None
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool call index -> block index

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": message_id(hex32()),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _text(self, text: str) -> bytes:
        out = b""
        if self._text_block is None or self._open != self._text_block:
            out, self._text_block = self._start_block({"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return out + self._delta(self._text_block, delta)

    def _tool(self, call: ToolCallDelta) -> bytes:
        out = b""
        block = self._tool_blocks.get(call.index)
        if block is None:
            name = call.function.name if call.function else None
            start = {"type": "tool_use", "id": call.id or "", "name": name or "", "input": {}}
            out, block = self._start_block(start)
            self._tool_blocks[call.index] = block
        arguments = call.function.arguments if call.function else None
        if arguments:
            out += self._delta(block, {"type": "input_json_delta", "partial_json": arguments})
        return out

    def _start_block(self, content_block: dict[str, Any]) -> tuple[bytes, int]:
        out = self._stop_open_block()
        index = self._open = self._blocks
        self._blocks += 1
        start = {"type": "content_block_start", "index": index, "content_block": content_block}
        return out + event("content_block_start", start), index

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": index, "delta": delta}
        return event("content_block_delta", data)

    def _stop_open_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _complete(self) -> bytes:
        self.ended = True
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self._finish), "stop_sequence": None},
            "usage": anthropic_usage(self._usage),
        }
        out = self._stop_open_block() + event("message_delta", delta)
        return out + event("message_stop", {"type": "message_stop"})

    def _chunk_error(self, error: ChunkError) -> bytes:
        kind = error.type if error.type in ERROR_STATUS else "api_error"
        return self._fail(kind or "api_error", error.message)

    def _cut(self) -> bytes:
        return self._fail("api_error", CUT_SHORT)

    def _fail(self, kind: str, message: str) -> bytes:
        self.ended = True
        return error_event(kind, message)


def messages_stream(inner: Stream, model: str) -> TranslatedStream:
    """A provider's OpenAI-format stream, relayed as Anthropic events."""
    return TranslatedStream(inner, EventWriter(model))


def anthropic_closing(event: bytes) -> bytes:
    """The OpenAI-style error event that ends a chat stream cut short, as the Anthropic
    ``error`` event ``EventWriter`` makes of it (for streams translated natively)."""
    return EventWriter("").feed(event)
