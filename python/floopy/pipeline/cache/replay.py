"""A cached answer given back to a client, in the shape it asked for: whole, or as a stream
that is valid for the official SDKs whatever the shape the answer was first sent in.

- chat, whole: the stored ``chat.completion``;
- chat, stream: a role chunk, the content (and any other text field) and each tool call as
  deltas, a finish chunk per choice, the usage chunk when ``stream_options.include_usage``
  asks for it, then ``data: [DONE]``;
- messages, whole: the stored ``message``;
- messages, stream: message_start, each content block (start, its delta, stop),
  message_delta with the stop reason and usage, message_stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from floopy.pipeline.cache.answer import Doc, Entry
from floopy.providers.base import Completion, StreamSummary
from floopy.providers.bridge.stream import event

_DONE = b"data: [DONE]\n\n"


def whole(entry: Entry) -> Completion:
    # Nothing was charged for this answer: the log's usage and cost are zero.
    return Completion(body=entry.body, usage=None, finish_reason=entry.finish_reason)


def stream(entry: Entry, include_usage: bool) -> ReplayedStream:
    doc = msgspec.json.decode(entry.body)
    messages = entry.api == "messages"
    pieces = _message_events(doc) if messages else _chat_chunks(doc, include_usage)
    return ReplayedStream(pieces, entry.finish_reason, _text_of(doc, messages))


class ReplayedStream:
    """A cached answer as a stream (``providers.base.Stream``): every piece is at hand.
    Its summary has the text, for the log, and no usage: nothing was charged for it."""

    def __init__(self, pieces: list[bytes], finish_reason: str | None, text: str) -> None:
        self.first = pieces[0]
        self._rest = pieces[1:]
        self.summary = StreamSummary(content=text, finish_reason=finish_reason, completed=True)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._rest:
            yield piece

    async def close(self) -> None:
        pass


def _text_of(doc: Doc, messages: bool) -> str:
    if messages:
        return "".join(b.get("text", "") for b in doc.get("content") or () if isinstance(b, dict))
    choices = doc.get("choices") or ()
    return "".join((c.get("message") or {}).get("content") or "" for c in choices)


def _chat_chunks(completion: Doc, include_usage: bool) -> list[bytes]:
    head = {
        "id": completion.get("id", ""),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
    }
    if completion.get("system_fingerprint") is not None:
        head["system_fingerprint"] = completion["system_fingerprint"]
    pieces = []
    for choice in completion.get("choices") or ():
        index, message = choice.get("index", 0), choice.get("message") or {}
        deltas: list[Doc] = [{"role": message.get("role") or "assistant", "content": ""}]
        for name, value in message.items():
            if name != "role" and isinstance(value, str) and value:
                deltas.append({name: value})  # content, refusal, reasoning_content...
        for number, call in enumerate(message.get("tool_calls") or ()):
            deltas.append({"tool_calls": [{"index": number, **call}]})
        for delta in deltas:
            pieces.append(_chunk(head, [_choice(index, delta, None)]))
        pieces.append(_chunk(head, [_choice(index, {}, choice.get("finish_reason"))]))
    if include_usage:
        pieces.append(_chunk(head, [], usage=completion.get("usage")))
    pieces.append(_DONE)
    return pieces


def _choice(index: int, delta: Doc, finish_reason: str | None) -> Doc:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _chunk(head: Doc, choices: list[Doc], **extra: Any) -> bytes:
    return b"data: " + msgspec.json.encode({**head, "choices": choices, **extra}) + b"\n\n"


def _message_events(message: Doc) -> list[bytes]:
    usage = dict(message.get("usage") or {})
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0},
    }
    pieces = [event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message.get("content") or ()):
        pieces.extend(_block_events(index, block))
    delta = {
        "type": "message_delta",
        "delta": {
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": message.get("stop_sequence"),
        },
        "usage": usage,
    }
    pieces.append(event("message_delta", delta))
    pieces.append(event("message_stop", {"type": "message_stop"}))
    return pieces


# A content block's type -> (its field sent as deltas, the delta's type, the delta's field).
_STREAMED_FIELDS = {
    "text": ("text", "text_delta", "text"),
    "thinking": ("thinking", "thinking_delta", "thinking"),
    "tool_use": ("input", "input_json_delta", "partial_json"),
}


def _block_events(index: int, block: Doc) -> list[bytes]:
    streamed = _STREAMED_FIELDS.get(block.get("type", ""))
    deltas: list[Doc] = []
    opening = dict(block)
    if streamed is not None:
        field, delta_type, delta_field = streamed
        value = opening.pop(field, None)
        opening[field] = {} if field == "input" else ""
        if field == "input":
            value = msgspec.json.encode(value if value is not None else {}).decode()
        if value:
            deltas.append({"type": delta_type, delta_field: value})
        if block.get("type") == "thinking" and "signature" in opening:
            deltas.append({"type": "signature_delta", "signature": opening.pop("signature")})
            opening["signature"] = ""
    pieces = [
        event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": opening},
        )
    ]
    for delta in deltas:
        data = {"type": "content_block_delta", "index": index, "delta": delta}
        pieces.append(event("content_block_delta", data))
    pieces.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return pieces
