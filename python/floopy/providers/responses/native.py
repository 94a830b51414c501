"""``/v1/responses`` at a provider that speaks it (OpenAI, Azure OpenAI, OpenAI-compatible):
what the gateway reads of the answer it relays as it came.

A whole answer gives its usage and a finish reason in chat's terms (``tool_calls`` when it
holds function calls, ``length`` when cut at ``max_output_tokens``), so the log and the costs
are the same as for chat. A stream is relayed event by event; ``response.output_text.delta``
feeds the logged content, ``response.completed`` (or ``incomplete``) the usage and finish,
``response.failed`` and ``error`` the failure (before anything was sent to the client: an
HTTP error, which can fall back). A stream the gateway cuts short (a time limit, a broken
connection) ends with an ``error`` event numbered after the last one relayed.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from floopy import errors
from floopy._native import SseParser
from floopy.providers.base import Completion, Usage
from floopy.providers.http import RelayedStream, UpstreamBody, oversized_event


class _InputDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _Item(msgspec.Struct):
    type: str = ""


class _Incomplete(msgspec.Struct):
    reason: str | None = None


class _Error(msgspec.Struct):
    message: str = ""
    code: str | None = None


class _Response(msgspec.Struct):
    status: str | None = None
    output: list[_Item] | None = None
    usage: _Usage | None = None
    incomplete_details: _Incomplete | None = None
    error: _Error | None = None


class _Event(msgspec.Struct):
    type: str = ""
    sequence_number: int | None = None
    delta: Any = None
    response: _Response | None = None
    message: str | None = None
    code: str | None = None


# The events that carry the answer itself: the first of them is the time to first token.
_OUTPUT_EVENTS = ("response.output_", "response.content_part", "response.function_call")
_response_decoder = msgspec.json.Decoder(_Response)
_event_decoder = msgspec.json.Decoder(_Event)


def usage_of(raw: _Usage | None) -> Usage | None:
    if raw is None:
        return None
    inputs = raw.input_tokens_details or _InputDetails()
    reasoning = raw.output_tokens_details.reasoning_tokens if raw.output_tokens_details else 0
    return Usage(
        prompt_tokens=raw.input_tokens,
        completion_tokens=raw.output_tokens,
        total_tokens=raw.total_tokens or raw.input_tokens + raw.output_tokens,
        cached_tokens=inputs.cached_tokens,
        reasoning_tokens=reasoning,
        cache_write_tokens=inputs.cache_write_tokens,
    )


def finish_reason(response: _Response) -> str | None:
    """The finish in chat's terms, which the log keeps for every API alike."""
    if response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        return "content_filter" if reason == "content_filter" else "length"
    if response.status != "completed":
        return None
    if any(item.type == "function_call" for item in response.output or []):
        return "tool_calls"
    return "stop"


def whole(provider: str, data: bytes) -> Completion:
    try:
        response = _response_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise errors.ProviderError(f"{provider} sent an unreadable response: {exc}") from None
    return Completion(
        body=data, usage=usage_of(response.usage), finish_reason=finish_reason(response)
    )


def error_event(sequence: int, code: str, message: str) -> bytes:
    data = {
        "type": "error",
        "sequence_number": sequence,
        "code": code,
        "message": message,
        "param": None,
    }
    return b"event: error\ndata: " + msgspec.json.encode(data) + b"\n\n"


class NativeResponsesStream(RelayedStream):
    """Relays a provider's Responses event stream as it came, whole events at a time."""

    def __init__(self, body: UpstreamBody) -> None:
        super().__init__(body)
        self._parser = SseParser()
        self._content: list[str] = []
        self._next_sequence = 0
        self._ended = False  # completed, incomplete or failed: the stream said its last
        self._relayed_error = False
        self._started = time.perf_counter()  # built once the upstream's headers came

    def _feed(self, chunk: bytes) -> bytes:
        events = self._parser.feed(chunk)
        if self._parser.oversized:
            raise oversized_event(self.provider, self._parser.max_event_bytes)
        return b"".join(self._read(event.data, event.raw) for event in events)

    def _finish(self) -> bytes:
        return b"".join(self._read(event.data, event.raw) for event in self._parser.finish())

    def _read(self, data: str, raw: bytes) -> bytes:
        try:
            event = _event_decoder.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return raw  # not ours to judge: relayed as it came
        self.summary.chunks += 1
        if event.sequence_number is not None:
            self._next_sequence = event.sequence_number + 1
        self._note(event)
        return raw

    def _note(self, event: _Event) -> None:
        summary = self.summary
        if summary.ttft_ms is None and event.type.startswith(_OUTPUT_EVENTS):
            summary.ttft_ms = (time.perf_counter() - self._started) * 1000
        if event.type == "response.output_text.delta" and isinstance(event.delta, str):
            self._content.append(event.delta)
        elif event.type in ("response.completed", "response.incomplete") and event.response:
            self._ended = True
            summary.usage = usage_of(event.response.usage)
            summary.finish_reason = finish_reason(event.response)
        elif event.type == "response.failed":
            self._ended = self._relayed_error = True
            failure = event.response.error if event.response else None
            summary.error = failure.message if failure else "the provider failed the response"
        elif event.type == "error":
            self._relayed_error = True
            summary.error = event.message or "the provider sent an error event"

    def _open_failure(self) -> errors.FloopyError | None:
        """A stream whose first events already say it failed is the HTTP error it stands
        for, so the request can still fall back."""
        if self._relayed_error:
            return errors.ProviderError(f"{self.provider}: {self.summary.error}")
        return super()._open_failure()

    def _summarize(self) -> None:
        summary = self.summary
        summary.content = "".join(self._content)
        summary.completed = self._ended and summary.error is None

    def _closing_event(self) -> bytes:
        failure = self._ended_early(self.summary.completed, relayed_error=self._relayed_error)
        if failure is None:
            return b""
        return error_event(self._next_sequence, failure.code, failure.message)
