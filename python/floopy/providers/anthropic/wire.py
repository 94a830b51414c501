"""Anthropic's wire format as the gateway reads it: the message, stream events and error
bodies (only the fields the gateway uses; the rest is skipped unparsed), and how their stop
reasons, usage and errors map to OpenAI's and to the gateway's error tree."""

from __future__ import annotations

from typing import Any

import msgspec

from floopy import errors
from floopy.providers.base import Usage, upstream_error

API_VERSION = "2023-06-01"

# Anthropic stop_reason -> OpenAI finish_reason. pause_turn (a server-tool loop paused) has
# no OpenAI value: the turn did end, so "stop".
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic error type -> the HTTP status it comes with (an error inside a 200 stream has
# only its type).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class WireUsage(msgspec.Struct):
    # Anthropic's input_tokens is the uncached part; the cache fields may be null or absent.
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: dict[str, Any] | None = None


class Block(msgspec.Struct):
    type: str = ""
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class Message(msgspec.Struct):
    id: str = ""
    model: str = ""
    content: list[Block] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: WireUsage | None = None


class Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class ErrorDetail(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class Event(msgspec.Struct):
    """Any stream event: each type fills its own few fields."""

    type: str = ""
    message: Message | None = None
    index: int = 0
    content_block: Block | None = None
    delta: Delta | None = None
    usage: WireUsage | None = None
    error: ErrorDetail | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail | None = None


message_decoder = msgspec.json.Decoder(Message)
event_decoder = msgspec.json.Decoder(Event)
_error_decoder = msgspec.json.Decoder(ErrorBody)


def finish_reason(stop_reason: str | None, *, tool_calls: bool = True) -> str:
    """``tool_calls`` False: no tool call reached the client (only the tool standing in for
    response_format was called), so the answer is the content and the reason is "stop"."""
    finish = FINISH_REASONS.get(stop_reason or "end_turn", "stop")
    return "stop" if finish == "tool_calls" and not tool_calls else finish


def error_event(error_type: str, message: str) -> bytes:
    """An Anthropic stream error event; the anthropic SDKs raise it."""
    data = {"type": "error", "error": {"type": error_type, "message": message}}
    return b"event: error\ndata: " + msgspec.json.encode(data) + b"\n\n"


class UsageTally:
    """Usage as it builds up: message_start gives input counts, message_delta the running
    output count (and sometimes final input counts). Every count is a total, so a later one
    replaces an earlier one."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "reasoning", "seen")

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = self.reasoning = 0
        self.seen = False

    def update(self, usage: WireUsage | None) -> None:
        if usage is None:
            return
        self.seen = True
        self.input = _or(usage.input_tokens, self.input)
        self.output = _or(usage.output_tokens, self.output)
        self.cache_read = _or(usage.cache_read_input_tokens, self.cache_read)
        self.cache_write = _or(usage.cache_creation_input_tokens, self.cache_write)
        details = usage.output_tokens_details or {}
        thinking = details.get("thinking_tokens")
        if isinstance(thinking, int):
            self.reasoning = thinking

    def usage(self) -> Usage:
        """In OpenAI's convention: prompt tokens count every input token, cached included."""
        prompt = self.input + self.cache_read + self.cache_write
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=self.output,
            total_tokens=prompt + self.output,
            cached_tokens=self.cache_read,
            reasoning_tokens=self.reasoning,
            cache_write_tokens=self.cache_write,
        )


def _or(value: int | None, current: int) -> int:
    return current if value is None else value


def usage_of(wire: WireUsage | None) -> Usage:
    tally = UsageTally()
    tally.update(wire)
    return tally.usage()


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def error_detail(body: bytes) -> ErrorDetail | None:
    """The ``error`` of an Anthropic error body, or None if the body is not one."""
    try:
        return _error_decoder.decode(body).error
    except (msgspec.DecodeError, RecursionError):
        return None


def http_error(
    provider: str, status: int, body: bytes, headers: dict[str, str]
) -> errors.FloopyError:
    """An upstream HTTP failure, mapped like every provider's (529 overloaded is a 5xx:
    502 PROVIDER_ERROR, which fallback retries elsewhere; 429 keeps Retry-After)."""
    detail = error_detail(body)
    if detail is None:
        message = body[:200].decode("utf-8", "replace").strip()
    else:
        message = f"{detail.type}: {detail.message}"
    return upstream_error(provider, status, message, headers=headers)


def event_error(provider: str, detail: ErrorDetail) -> errors.FloopyError:
    """An error event that arrived before anything was sent on: mapped as its HTTP twin."""
    status = ERROR_STATUS.get(detail.type, 500)
    return upstream_error(provider, status, f"{detail.type}: {detail.message}")
