"""The OpenAI chat completion, whole and as stream chunks, as the translators that turn a
provider's chat answer into another API's read it (``bridge`` for Anthropic's Messages API,
``responses`` for the Responses API). Fields the gateway does not read are skipped unparsed."""

from __future__ import annotations

from typing import Any

import msgspec

from floopy.providers.base import Usage


class ChunkFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: ChunkFunction | None = None


class Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class Choice(msgspec.Struct):
    delta: Delta = msgspec.field(default_factory=Delta)
    finish_reason: str | None = None


class Details(msgspec.Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None


class ChunkUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: Details | None = None
    completion_tokens_details: Details | None = None


class ChunkError(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | None = None


class Chunk(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[Choice] = []
    usage: ChunkUsage | None = None
    error: ChunkError | None = None


chunk_decoder = msgspec.json.Decoder(Chunk)


def chunk_usage(raw: ChunkUsage) -> Usage:
    prompt = raw.prompt_tokens_details or Details()
    completion = raw.completion_tokens_details or Details()
    return Usage(
        prompt_tokens=raw.prompt_tokens,
        completion_tokens=raw.completion_tokens,
        total_tokens=raw.prompt_tokens + raw.completion_tokens,
        cached_tokens=prompt.cached_tokens or 0,
        reasoning_tokens=completion.reasoning_tokens or 0,
        cache_write_tokens=prompt.cache_write_tokens or 0,
    )


# --- a whole completion ------------------------------------------------------------------------


class Function(msgspec.Struct):
    name: str = ""
    arguments: str = ""


class ToolCall(msgspec.Struct):
    id: str = ""
    function: Function = msgspec.field(default_factory=Function)


class Reply(msgspec.Struct):
    content: str | list[dict[str, Any]] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class WholeChoice(msgspec.Struct):
    message: Reply = msgspec.field(default_factory=Reply)
    finish_reason: str | None = None


class WholeCompletion(msgspec.Struct):
    id: str = ""
    model: str = ""
    choices: list[WholeChoice] = []


completion_decoder = msgspec.json.Decoder(WholeCompletion)
