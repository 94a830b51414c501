"""A Gemini answer in OpenAI's terms: choices, tool calls, finish reasons and usage.

Gemini ends a function call with ``STOP``: a candidate holding function calls finishes with
``tool_calls``. Safety and policy stops become ``content_filter``, as does a prompt Gemini
blocked outright (``promptFeedback.blockReason``, no candidates at all). Usage follows OpenAI's
convention: thinking tokens count as completion (and reasoning) tokens, tool-use prompt
tokens as prompt tokens, cached content as cached prompt tokens.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from floopy import errors
from floopy.ids import hex32
from floopy.providers.base import Completion, Usage
from floopy.providers.gemini.call_ids import make_call_id
from floopy.providers.gemini.wire import (
    Candidate,
    GenerateContentResponse,
    Part,
    UsageMetadata,
    response_decoder,
)

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}


def finish_reason(gemini_reason: str | None, called_tools: bool) -> str:
    """OpenAI's finish reason. Reasons OpenAI has no word for (OTHER, LANGUAGE,
    MALFORMED_FUNCTION_CALL, ...) read as ``stop``: the answer ended, for no reason a client
    could act on differently."""
    mapped = _FINISH_REASONS.get(gemini_reason or "STOP", "stop")
    return "tool_calls" if called_tools and mapped == "stop" else mapped


def usage_of(meta: UsageMetadata | None) -> Usage | None:
    if meta is None:
        return None
    prompt = meta.prompt_token_count + meta.tool_use_prompt_token_count
    completion = meta.candidates_token_count + meta.thoughts_token_count
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=meta.total_token_count or prompt + completion,
        cached_tokens=meta.cached_content_token_count,
        reasoning_tokens=meta.thoughts_token_count,
    )


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def answer_parts(candidate: Candidate) -> list[Part]:
    """The candidate's parts that belong to the answer (thought summaries do not)."""
    if candidate.content is None:
        return []
    return [part for part in candidate.content.parts if not part.thought]


def tool_call_json(position: int, part: Part) -> dict[str, Any]:
    """An OpenAI tool call (non-stream shape) for a functionCall part."""
    call = part.function_call
    assert call is not None
    call_id = call.id or make_call_id(position, call.name, call.args, part.thought_signature)
    arguments = msgspec.json.encode(call.args or {}).decode()
    function = {"name": call.name, "arguments": arguments}
    return {"id": call_id, "type": "function", "function": function}


def completion_id(response_id: str | None) -> str:
    return f"chatcmpl-{response_id or hex32()}"


def translate_completion(data: bytes, model: str) -> Completion:
    try:
        response = response_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise errors.ProviderError(f"gemini sent an unreadable answer: {exc}") from exc
    choices = [_choice(candidate) for candidate in response.candidates]
    if not choices:
        choices = [_blocked_choice(response)]
    usage = usage_of(response.usage_metadata)
    body: dict[str, Any] = {
        "id": completion_id(response.response_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model_version or model,
        "choices": sorted(choices, key=lambda choice: int(choice["index"])),
    }
    if usage is not None:
        body["usage"] = usage_json(usage)
    return Completion(
        body=msgspec.json.encode(body), usage=usage, finish_reason=choices[0]["finish_reason"]
    )


def _choice(candidate: Candidate) -> dict[str, Any]:
    parts = answer_parts(candidate)
    text = "".join(part.text for part in parts if part.text)
    calls = [part for part in parts if part.function_call is not None]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = [tool_call_json(i, part) for i, part in enumerate(calls)]
    return {
        "index": candidate.index,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(candidate.finish_reason, bool(calls)),
    }


def _blocked_choice(response: GenerateContentResponse) -> dict[str, Any]:
    feedback = response.prompt_feedback
    if feedback is None or feedback.block_reason is None:
        raise errors.ProviderError("gemini answered without any candidate")
    return {
        "index": 0,
        "message": {"role": "assistant", "content": None, "refusal": None},
        "logprobs": None,
        "finish_reason": "content_filter",
    }
