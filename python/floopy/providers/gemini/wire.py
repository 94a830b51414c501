"""Gemini's response wire format: the fields the gateway reads, everything else skipped unparsed.

Field names are Gemini's REST camelCase; ``rename="camel"`` maps them onto Python names.
"""

from __future__ import annotations

from typing import Any

import msgspec


class FunctionCall(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None  # absent on the Gemini API; Vertex AI may send one


class Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False  # a thought summary, not part of the answer
    function_call: FunctionCall | None = None
    thought_signature: str | None = None  # must go back with the call on the next turn


class Content(msgspec.Struct):
    parts: list[Part] = []
    role: str | None = None


class Candidate(msgspec.Struct, rename="camel"):
    content: Content | None = None
    finish_reason: str | None = None
    index: int = 0


class UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    total_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class ErrorDetail(msgspec.Struct, rename="camel"):
    reason: str | None = None  # google.rpc.ErrorInfo
    retry_delay: str | None = None  # google.rpc.RetryInfo, e.g. "7s"


class Error(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[ErrorDetail] = []


class GenerateContentResponse(msgspec.Struct, rename="camel"):
    candidates: list[Candidate] = []
    usage_metadata: UsageMetadata | None = None
    prompt_feedback: PromptFeedback | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: Error | None = None  # a stream may end with an error object instead of a chunk


class ErrorBody(msgspec.Struct):
    error: Error | None = None


class ContentEmbedding(msgspec.Struct):
    values: list[float] = []


class EmbedContentResponse(msgspec.Struct):
    embedding: ContentEmbedding | None = None


class BatchEmbedContentsResponse(msgspec.Struct):
    embeddings: list[ContentEmbedding] = []


response_decoder = msgspec.json.Decoder(GenerateContentResponse)
error_decoder = msgspec.json.Decoder(ErrorBody)
embed_decoder = msgspec.json.Decoder(EmbedContentResponse)
batch_embed_decoder = msgspec.json.Decoder(BatchEmbedContentsResponse)
