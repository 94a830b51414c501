"""A chat completion as a Responses API ``response`` object, for ``/v1/responses`` answered by
a provider that speaks only chat.

The object echoes the request's parameters as OpenAI's does (``instructions``, ``tools``,
``text``, ...), so clients that read them back find them; text becomes one ``message`` item
and each tool call a ``function_call`` item; a chat ``length`` finish is the ``incomplete``
status with ``max_output_tokens`` as its reason. The gateway keeps no responses: ``store``
is always false.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from floopy import errors
from floopy.ids import hex32
from floopy.providers.base import Completion, Usage
from floopy.providers.chat_chunk import Reply, WholeChoice, completion_decoder

Item = dict[str, Any]

# chat finish_reason -> the reason of an ``incomplete`` response
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{hex32()}"


class Frame:
    """The fields of a response that come from its request, the same in every event."""

    def __init__(self, doc: dict[str, Any], model: str) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.model = model
        self._echo = _echo(doc)

    def response(self, status: str, output: list[Item], usage: Usage | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": self.model,
            "output": output,
            **self._echo,
            "usage": responses_usage(usage) if usage is not None else None,
        }

    def finished(
        self, finish: str | None, output: list[Item], usage: Usage | None
    ) -> dict[str, Any]:
        """The response once the answer ended with chat's ``finish``."""
        reason = INCOMPLETE.get(finish or "")
        response = self.response("incomplete" if reason else "completed", output, usage)
        if reason:
            response["incomplete_details"] = {"reason": reason}
        return response


def _echo(doc: dict[str, Any]) -> dict[str, Any]:
    reasoning = doc.get("reasoning")
    if not isinstance(reasoning, dict):
        reasoning = {}
    return {
        "instructions": doc.get("instructions"),
        "max_output_tokens": doc.get("max_output_tokens"),
        "parallel_tool_calls": doc.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,
        "temperature": doc.get("temperature", 1.0),
        "text": doc.get("text")
        if isinstance(doc.get("text"), dict)
        else {"format": {"type": "text"}},
        "tool_choice": doc.get("tool_choice", "auto"),
        "tools": doc.get("tools") or [],
        "top_p": doc.get("top_p", 1.0),
        "truncation": "disabled",
        "user": doc.get("user"),
        "metadata": doc.get("metadata") or {},
    }


def responses_usage(usage: Usage) -> dict[str, Any]:
    """Responses counts as chat does (input includes cached, output includes reasoning)."""
    details = {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens}
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": details,
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> Item:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> Item:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


# --- a whole completion ---------------------------------------------------------------------


def to_response(completion: Completion, frame: Frame, provider: str) -> Completion:
    try:
        parsed = completion_decoder.decode(completion.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise errors.ProviderError(
            f"{provider} sent an answer the gateway cannot read: {exc}"
        ) from None
    choice = parsed.choices[0] if parsed.choices else WholeChoice()
    finish = completion.finish_reason or choice.finish_reason
    output = _items(choice.message, "incomplete" if finish in INCOMPLETE else "completed")
    body = frame.finished(finish, output, completion.usage)
    return Completion(
        body=msgspec.json.encode(body),
        usage=completion.usage,
        finish_reason=finish,
        headers=completion.headers,
    )


def _items(reply: Reply, status: str) -> list[Item]:
    items: list[Item] = []
    text = _text(reply.content)
    if text or reply.refusal:
        item = message_item(new_id("msg"), text, status)
        if reply.refusal:
            item["content"].append({"type": "refusal", "refusal": reply.refusal})
        items.append(item)
    for call in reply.tool_calls or []:
        fc = call_item(
            new_id("fc"), call.id or new_id("call"), call.function.name, call.function.arguments
        )
        items.append(fc)
    return items


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content)
    return content or ""
