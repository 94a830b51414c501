"""A cached answer (``Entry``): the whole answer in the client's API format (an OpenAI
``chat.completion``, or an Anthropic ``message``), with the target that answered and the
usage it was charged for, encoded once for any store.

A streamed answer is stored whole too: its events, recorded as they went to the client, are
put back together here once the stream ended with its finish reason (``from_chat_stream``,
``from_messages_stream``); one that did not finish, or carried an error, gives None and is
not stored. Storing the whole answer lets any later request replay it either way
(``replay``).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from floopy._native import SseParser
from floopy.providers.anthropic.wire import openai_usage
from floopy.providers.base import Usage

Doc = dict[str, Any]


class Entry(msgspec.Struct, array_like=True, frozen=True):
    api: str  # "chat" or "messages": the format of ``body``
    body: bytes  # the whole answer, JSON
    provider: str
    model: str
    usage: Usage | None
    finish_reason: str | None
    stored_at: float  # Unix time

    def encode(self) -> bytes:
        return _encoder.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        return _decoder.decode(data)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


def entry(
    api: str,
    body: bytes,
    provider: str | None,
    model: str | None,
    usage: Usage | None,
    finish_reason: str | None,
) -> Entry:
    return Entry(api, body, provider or "", model or "", usage, finish_reason, time.time())


def _events(raw: bytes) -> list[Any]:
    parser = SseParser()
    return [*parser.feed(raw), *parser.finish()]


def _json(data: str) -> Doc | None:
    try:
        doc = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


# --- OpenAI chat completions -------------------------------------------------------------

_HEAD = ("id", "created", "model", "system_fingerprint", "service_tier")


def from_chat_stream(raw: bytes, usage: Usage | None) -> bytes | None:
    """The ``chat.completion`` a finished chunk stream spells, or None. ``usage`` (what the
    gateway counted) fills in when the client did not ask for the usage chunk."""
    head: Doc = {}
    choices: dict[int, Doc] = {}
    wire_usage: Doc | None = None
    done = False
    for event in _events(raw):
        if event.data.strip() == "[DONE]":
            done = True
            continue
        chunk = _json(event.data)
        if chunk is None or chunk.get("error") is not None:
            return None
        for name in _HEAD:
            if name in chunk and name not in head:
                head[name] = chunk[name]
        if chunk.get("usage"):
            wire_usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            _add_delta(choices, choice)
    finished = choices and all(c["finish_reason"] is not None for c in choices.values())
    if not done or not finished:
        return None
    if wire_usage is None and usage is not None:
        wire_usage = openai_usage(usage)
    completion = {
        **{k: v for k, v in head.items() if k != "system_fingerprint"},
        "object": "chat.completion",
        "choices": [_whole_choice(choices[i]) for i in sorted(choices)],
        "usage": wire_usage,
    }
    if "system_fingerprint" in head:
        completion["system_fingerprint"] = head["system_fingerprint"]
    return msgspec.json.encode(completion)


def _add_delta(choices: dict[int, Doc], choice: Doc) -> None:
    index = choice.get("index", 0)
    state = choices.get(index)
    if state is None:
        # Text arrives in pieces: kept as lists and joined once, not copied at every piece.
        state = {"index": index, "role": "assistant", "texts": {}, "tools": {}}
        state["finish_reason"] = None
        choices[index] = state
    texts = state["texts"]
    for name, value in (choice.get("delta") or {}).items():
        if name == "tool_calls":
            for call in value or ():
                _add_tool_delta(state["tools"], call)
        elif name == "role" and value:
            state["role"] = value
        elif isinstance(value, str):  # content, refusal, reasoning_content...
            texts.setdefault(name, []).append(value)
    if choice.get("finish_reason") is not None:
        state["finish_reason"] = choice["finish_reason"]


def _add_tool_delta(tools: dict[int, Doc], call: Doc) -> None:
    tool = tools.setdefault(call.get("index", 0), {"id": None, "name": None, "arguments": []})
    if call.get("id"):
        tool["id"] = call["id"]
    function = call.get("function") or {}
    if function.get("name"):
        tool["name"] = function["name"]
    if function.get("arguments"):
        tool["arguments"].append(function["arguments"])


def _whole_choice(state: Doc) -> Doc:
    message: Doc = {"role": state["role"], "content": None}
    message.update((name, "".join(parts)) for name, parts in state["texts"].items())
    if not message["content"] and state["tools"]:
        message["content"] = None
    tools = state["tools"]
    if tools:
        message["tool_calls"] = [
            {
                "id": tools[i]["id"],
                "type": "function",
                "function": {"name": tools[i]["name"], "arguments": "".join(tools[i]["arguments"])},
            }
            for i in sorted(tools)
        ]
    return {
        "index": state["index"],
        "message": message,
        "logprobs": None,
        "finish_reason": state["finish_reason"],
    }


# --- Anthropic messages --------------------------------------------------------------------


def from_messages_stream(raw: bytes) -> bytes | None:
    """The ``message`` a finished Anthropic event stream spells, or None."""
    message: Doc | None = None
    blocks: dict[int, Doc] = {}
    partial: dict[int, str] = {}
    done = False
    for event in _events(raw):
        data = _json(event.data)
        kind = data.get("type") if data is not None else None
        if data is None or kind == "error":
            return None
        if kind == "message_start":
            message = dict(data.get("message") or {})
        elif kind == "content_block_start":
            blocks[data.get("index", 0)] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            _add_block_delta(blocks, partial, data)
        elif kind == "content_block_stop":
            _close_block(blocks, partial, data.get("index", 0))
        elif kind == "message_delta" and message is not None:
            message.update(data.get("delta") or {})
            message["usage"] = {**(message.get("usage") or {}), **(data.get("usage") or {})}
        elif kind == "message_stop":
            done = True
    if message is None or not done or not message.get("stop_reason") or partial:
        return None
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return msgspec.json.encode(message)


def _add_block_delta(blocks: dict[int, Doc], partial: dict[int, str], data: Doc) -> None:
    index, delta = data.get("index", 0), data.get("delta") or {}
    block = blocks.setdefault(index, {})
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "input_json_delta":
        partial[index] = partial.get(index, "") + delta.get("partial_json", "")
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = delta.get("signature", "")
    elif kind == "citations_delta":
        block.setdefault("citations", []).append(delta.get("citation"))


def _close_block(blocks: dict[int, Doc], partial: dict[int, str], index: int) -> None:
    text = partial.pop(index, None)
    if text is None:
        return
    try:
        blocks.setdefault(index, {})["input"] = msgspec.json.decode(text) if text else {}
    except (msgspec.DecodeError, RecursionError):
        partial[index] = text  # a tool input that is not JSON: the stream is not stored
