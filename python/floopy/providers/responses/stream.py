"""A chat-completion stream as the Responses API's typed event stream, for ``/v1/responses``
answered by a provider that speaks only chat.

``response.created`` and ``response.in_progress`` go out at once. Text opens a ``message``
item (``output_item.added``, ``content_part.added``, then ``output_text.delta``); each tool
call a ``function_call`` item (``output_item.added``, ``function_call_arguments.delta``). An
item is closed (``*.done`` events) when the next one opens or the answer ends; ``[DONE]``
(after the usage chunk, which the request asked for) sends ``response.completed`` (or
``response.incomplete`` for a ``length`` finish) with the whole output and usage. Every event
carries ``sequence_number``, from 0. An error chunk, or a stream that ends without finishing,
becomes an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from floopy.providers.base import Stream
from floopy.providers.chat_chunk import ChunkError, ToolCallDelta
from floopy.providers.chat_stream import CUT_SHORT, ChunkTranslator, TranslatedStream
from floopy.providers.responses.response import Frame, Item, call_item, message_item, new_id


class _Open:
    """An output item receiving deltas: its position, the item and the text so far."""

    def __init__(self, index: int, item: Item) -> None:
        self.index = index
        self.item = item
        self.text = ""


class EventWriter(ChunkTranslator):
    """OpenAI chunks in (as SSE bytes, in any pieces), Responses events out."""

    def __init__(self, frame: Frame) -> None:
        super().__init__()
        self._frame = frame
        self._sequence = 0
        self._output: list[Item] = []  # every item opened, in order, as it stands
        self._open: _Open | None = None
        self._message: _Open | None = None
        self._calls: dict[int, _Open] = {}  # chat tool call index -> its item

    def start(self) -> bytes:
        response = self._frame.response("in_progress", [], None)
        created = self._event("response.created", {"response": response})
        return created + self._event("response.in_progress", {"response": response})

    def _text(self, text: str) -> bytes:
        out = b""
        message = self._message
        if message is None or message is not self._open:
            item = message_item(new_id("msg"), "", "in_progress")
            item["content"] = []
            out, message = self._start(item)
            self._message = message
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out += self._event("response.content_part.added", {**self._at(message), "part": part})
        message.text += text
        delta = {**self._at(message), "delta": text, "logprobs": []}
        return out + self._event("response.output_text.delta", delta)

    def _tool(self, call: ToolCallDelta) -> bytes:
        out = b""
        item = self._calls.get(call.index)
        if item is None:
            name = (call.function.name if call.function else None) or ""
            added = call_item(new_id("fc"), call.id or new_id("call"), name, "", "in_progress")
            out, item = self._start(added)
            self._calls[call.index] = item
        arguments = call.function.arguments if call.function else None
        if arguments:
            item.text += arguments
            where = {"item_id": item.item["id"], "output_index": item.index}
            out += self._event(
                "response.function_call_arguments.delta", {**where, "delta": arguments}
            )
        return out

    def _start(self, item: Item) -> tuple[bytes, _Open]:
        out = self._close_open()
        opened = self._open = _Open(len(self._output), item)
        self._output.append(item)
        added = {"output_index": opened.index, "item": item}
        return out + self._event("response.output_item.added", added), opened

    def _close_open(self) -> bytes:
        opened, self._open = self._open, None
        if opened is None:
            return b""
        if opened.item["type"] == "message":
            return self._close_message(opened)
        item = call_item(
            opened.item["id"], opened.item["call_id"], opened.item["name"], opened.text
        )
        self._output[opened.index] = item
        where = {"item_id": item["id"], "output_index": opened.index}
        done = {**where, "name": item["name"], "arguments": opened.text}
        out = self._event("response.function_call_arguments.done", done)
        return out + self._item_done(opened.index, item)

    def _close_message(self, opened: _Open) -> bytes:
        status = "incomplete" if self._finish == "length" else "completed"
        item = message_item(opened.item["id"], opened.text, status)
        self._output[opened.index] = item
        where = self._at(opened)
        out = self._event(
            "response.output_text.done", {**where, "text": opened.text, "logprobs": []}
        )
        out += self._event("response.content_part.done", {**where, "part": item["content"][0]})
        return out + self._item_done(opened.index, item)

    def _item_done(self, index: int, item: Item) -> bytes:
        return self._event("response.output_item.done", {"output_index": index, "item": item})

    def _complete(self) -> bytes:
        self.ended = True
        out = self._close_open()
        response = self._frame.finished(self._finish, self._output, self._usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": response})

    def _chunk_error(self, error: ChunkError) -> bytes:
        return self.fail(error.code or "server_error", error.message)

    def _cut(self) -> bytes:
        return self.fail("server_error", CUT_SHORT)

    def fail(self, code: str, message: str) -> bytes:
        """An ``error`` event, then ``response.failed``: the stream ends here."""
        self.ended = True
        out = self._event("error", {"code": code, "message": message, "param": None})
        response = self._frame.response("failed", self._output, self._usage)
        response["error"] = {"code": code, "message": message}
        return out + self._event("response.failed", {"response": response})

    def _at(self, opened: _Open) -> dict[str, Any]:
        return {"item_id": opened.item["id"], "output_index": opened.index, "content_index": 0}

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


def responses_stream(inner: Stream, frame: Frame) -> TranslatedStream:
    """A provider's chat stream, relayed as Responses events."""
    return TranslatedStream(inner, EventWriter(frame))
