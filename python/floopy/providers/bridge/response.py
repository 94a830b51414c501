"""An OpenAI chat completion as an Anthropic message, for ``/v1/messages`` answered by a
provider that does not speak Anthropic's format."""

from __future__ import annotations

from typing import Any

import msgspec

from floopy import errors
from floopy.providers.base import Completion, Usage
from floopy.providers.chat_chunk import Reply, WholeChoice, completion_decoder

# OpenAI finish_reason -> Anthropic stop_reason. OpenAI does not say which stop sequence
# matched, so "stop" is always end_turn.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def message_id(completion_id: str) -> str:
    return completion_id if completion_id.startswith("msg_") else f"msg_{completion_id}"


def anthropic_usage(usage: Usage | None) -> dict[str, int]:
    """Anthropic counts uncached input apart from cache reads and writes; OpenAI's prompt
    tokens include them."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(uncached, 0),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


def to_message(completion: Completion, provider: str) -> Completion:
    try:
        parsed = completion_decoder.decode(completion.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise errors.ProviderError(
            f"{provider} sent an answer the gateway cannot read: {exc}"
        ) from None
    choice = parsed.choices[0] if parsed.choices else WholeChoice()
    body = {
        "id": message_id(parsed.id),
        "type": "message",
        "role": "assistant",
        "model": parsed.model,
        "content": _blocks(choice.message),
        "stop_reason": stop_reason(choice.finish_reason),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.usage),
    }
    return Completion(
        body=msgspec.json.encode(body),
        usage=completion.usage,
        finish_reason=completion.finish_reason,
        headers=completion.headers,
    )


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _text(reply.content)
    if text:
        blocks.append({"type": "text", "text": text})
    for call in reply.tool_calls or []:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": tool_input(call.function.arguments),
            }
        )
    return blocks


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content)
    return content or ""


def tool_input(arguments: str) -> dict[str, Any]:
    """Anthropic keeps a tool's input as an object; a model that wrote arguments that are
    not a JSON object has them kept whole under ``arguments`` rather than lost."""
    if not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except (msgspec.DecodeError, RecursionError):
        value = None
    return value if isinstance(value, dict) else {"arguments": arguments}
