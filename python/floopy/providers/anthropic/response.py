"""An Anthropic message as an OpenAI chat completion: text blocks joined into the content,
``tool_use`` blocks as tool calls keeping their ids, the stop reason as a finish reason, and
usage with cache reads and writes. Thinking blocks are not part of an OpenAI answer."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from floopy import errors
from floopy.providers.anthropic.wire import (
    Block,
    Message,
    finish_reason,
    message_decoder,
    openai_usage,
    usage_of,
)
from floopy.providers.base import Completion


def to_completion(provider: str, data: bytes, json_tool: str | None) -> Completion:
    try:
        message = message_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise errors.ProviderError(
            f"{provider} sent a message the gateway cannot read: {exc}"
        ) from None
    body, finish = chat_completion(message, json_tool)
    return Completion(
        body=msgspec.json.encode(body), usage=usage_of(message.usage), finish_reason=finish
    )


def chat_completion(message: Message, json_tool: str | None) -> tuple[dict[str, Any], str]:
    text, calls = _content(message.content, json_tool)
    finish = finish_reason(message.stop_reason, tool_calls=bool(calls))
    reply: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    body = {
        "id": message.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.model,
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": openai_usage(usage_of(message.usage)),
    }
    return body, finish


def _content(blocks: list[Block], json_tool: str | None) -> tuple[str | None, list[Any]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        if block.type == "text" and block.text:
            texts.append(block.text)
        elif block.type == "tool_use" and block.name == json_tool:
            texts.append(arguments_json(block.input))
        elif block.type == "tool_use":
            calls.append(tool_call(block))
    return ("".join(texts) if texts or not calls else None), calls


def tool_call(block: Block) -> dict[str, Any]:
    return {
        "id": block.id or "",
        "type": "function",
        "function": {"name": block.name or "", "arguments": arguments_json(block.input)},
    }


def arguments_json(value: Any) -> str:
    return msgspec.json.encode(value if value is not None else {}).decode("utf-8")
