"""Anthropic streams: translated into OpenAI chunks as they arrive, or relayed as they are
(``/v1/messages`` to Anthropic), with what the log needs captured on the side.

Anthropic's sequence is message_start, then per content block content_block_start, its
deltas (``text_delta``, ``input_json_delta`` for tool arguments) and content_block_stop,
then message_delta (stop reason, output usage) and message_stop; ``ping`` may come at any
time and ``error`` ends a stream early. The native ``SseParser`` splits the bytes into
events; each event is translated on its own, so nothing waits for the whole stream.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import msgspec

from floopy import errors
from floopy._native import SseEvent, SseParser
from floopy.providers.anthropic.response import arguments_json
from floopy.providers.anthropic.wire import (
    ErrorDetail,
    Event,
    UsageTally,
    event_decoder,
    event_error,
    finish_reason,
    openai_usage,
)
from floopy.providers.base import CONTENT_LIMIT, CappedText, StreamSummary
from floopy.providers.http import RelayedStream, UpstreamBody, oversized_event

DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": ping\n\n"


def decode(raw: SseEvent) -> Event | None:
    try:
        return event_decoder.decode(raw.data)
    except (msgspec.DecodeError, RecursionError):
        return None  # not an event the gateway understands: relayed or skipped, never fatal


class StreamTally:
    """What an Anthropic stream said so far: text, stop reason, usage, timing, errors."""

    def __init__(
        self, started: float, json_tool: str | None = None, content_limit: int = CONTENT_LIMIT
    ) -> None:
        self.started = started
        self.json_tool = json_tool
        self.usage = UsageTally()
        self.message_id = ""
        self.model = ""
        self.text = CappedText(content_limit)  # for the log
        self.stop_reason: str | None = None
        self.tool_calls = 0
        self.json_blocks: set[int] = set()
        self.events = 0
        self.ttft_ms: float | None = None
        self.done = False
        self.error: ErrorDetail | None = None

    def observe(self, event: Event) -> None:
        self.events += 1
        kind = event.type
        if kind == "message_start" and event.message is not None:
            self.message_id, self.model = event.message.id, event.message.model
            self.usage.update(event.message.usage)
        elif kind == "content_block_start" and event.content_block is not None:
            self._block_started(event)
        elif kind == "content_block_delta" and event.delta is not None:
            self._delta(event)
        elif kind == "message_delta":
            if event.delta is not None and event.delta.stop_reason is not None:
                self.stop_reason = event.delta.stop_reason
            self.usage.update(event.usage)
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            self.error = event.error or ErrorDetail()

    def _block_started(self, event: Event) -> None:
        block = event.content_block
        assert block is not None
        if block.type == "tool_use" and block.name == self.json_tool:
            self.json_blocks.add(event.index)
        elif block.type == "tool_use":
            self.tool_calls += 1
            self._first_token()
        elif block.type == "text" and block.text:
            self._add_text(block.text)

    def _delta(self, event: Event) -> None:
        delta = event.delta
        assert delta is not None
        if delta.type == "text_delta" and delta.text:
            self._add_text(delta.text)
        elif delta.type == "input_json_delta" and delta.partial_json:
            if event.index in self.json_blocks:
                self._add_text(delta.partial_json)
            else:
                self._first_token()

    def _add_text(self, text: str) -> None:
        self.text.add(text)
        self._first_token()

    def _first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000

    @property
    def finish_reason(self) -> str | None:
        if self.stop_reason is None:
            return None
        return finish_reason(self.stop_reason, tool_calls=self.tool_calls > 0)

    @property
    def error_text(self) -> str | None:
        return None if self.error is None else f"{self.error.type}: {self.error.message}"

    def fill(self, summary: StreamSummary) -> None:
        summary.content, summary.truncated = str(self.text), self.text.truncated
        summary.finish_reason = self.finish_reason
        summary.usage = self.usage.usage() if self.usage.seen else None
        summary.ttft_ms = self.ttft_ms
        summary.chunks = self.events
        summary.completed = self.done
        if self.error is not None:  # the provider's own error event, already passed on
            summary.error, summary.failure = self.error_text, None


class ChunkTranslator:
    """Anthropic events in, OpenAI ``chat.completion.chunk`` SSE bytes out, one at a time.

    OpenAI numbers tool calls from 0 in the order they start, where Anthropic numbers all
    content blocks; the tool stand-in for response_format streams its input as content."""

    def __init__(
        self,
        *,
        model: str,
        include_usage: bool,
        json_tool: str | None,
        content_limit: int = CONTENT_LIMIT,
    ) -> None:
        self.tally = StreamTally(time.perf_counter(), json_tool, content_limit)
        self._model = model
        self._include_usage = include_usage
        self._tool_index: dict[int, int] = {}
        self._created = int(time.time())

    def feed(self, events: list[SseEvent], chunk: bytes, pending: int = 0) -> bytes:
        return b"".join(self._translate(raw) for raw in events)

    def failure(self, error: errors.FloopyError) -> bytes:
        return error.stream_event()

    def _translate(self, raw: SseEvent) -> bytes:
        event = decode(raw)
        if event is None:
            return b""
        self.tally.observe(event)
        kind = event.type
        if kind == "message_start":
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "message_delta":
            finish = self.tally.finish_reason
            return self._chunk({}, finish) if finish is not None else b""
        if kind == "message_stop":
            return self._end()
        if kind == "ping":
            return KEEP_ALIVE
        if kind == "error":
            return self.failure(errors.ProviderError(self.tally.error_text or "stream error"))
        return b""

    def _block_start(self, event: Event) -> bytes:
        block = event.content_block
        if block is None:
            return b""
        if block.type == "text" and block.text:
            return self._chunk({"content": block.text})
        if block.type != "tool_use" or event.index in self.tally.json_blocks:
            return b""
        position = self._tool_index[event.index] = len(self._tool_index)
        arguments = arguments_json(block.input) if block.input else ""
        call = {
            "index": position,
            "id": block.id or "",
            "type": "function",
            "function": {"name": block.name or "", "arguments": arguments},
        }
        return self._chunk({"tool_calls": [call]})

    def _delta(self, event: Event) -> bytes:
        delta = event.delta
        assert delta is not None
        if delta.type == "text_delta" and delta.text:
            return self._chunk({"content": delta.text})
        if delta.type != "input_json_delta" or not delta.partial_json:
            return b""  # thinking, signatures, citations: not part of an OpenAI answer
        if event.index in self.tally.json_blocks:
            return self._chunk({"content": delta.partial_json})
        position = self._tool_index.get(event.index)
        if position is None:
            return b""
        call = {"index": position, "function": {"arguments": delta.partial_json}}
        return self._chunk({"tool_calls": [call]})

    def _end(self) -> bytes:
        if not self._include_usage:
            return DONE
        usage = openai_usage(self.tally.usage.usage())
        return self._chunk({}, None, usage=usage) + DONE

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None
    ) -> bytes:
        doc: dict[str, Any] = {
            "id": self.tally.message_id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.tally.model or self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if usage is not None:
            doc["choices"] = []
            doc["usage"] = usage
        return b"data: " + msgspec.json.encode(doc) + b"\n\n"


class EventRelay:
    """Anthropic events relayed byte for byte (``/v1/messages`` to Anthropic), observed on
    the side for the log. Bytes go on once their event is whole, so an error that ends the
    stream early never lands inside a torn event."""

    def __init__(self, content_limit: int = CONTENT_LIMIT) -> None:
        self.tally = StreamTally(time.perf_counter(), content_limit=content_limit)
        self._torn = bytearray()  # the start of an event still arriving

    def feed(self, events: list[SseEvent], chunk: bytes, pending: int) -> bytes:
        for raw in events:
            event = decode(raw)
            if event is not None:
                self.tally.observe(event)
        if not self._torn and not pending:
            return chunk
        self._torn += chunk
        whole = len(self._torn) - pending
        out = bytes(self._torn[:whole])
        del self._torn[:whole]
        return out

    def failure(self, error: errors.FloopyError) -> bytes:
        return error.anthropic_stream_event()


class Mode(Protocol):
    tally: StreamTally

    def feed(self, events: list[SseEvent], chunk: bytes, pending: int) -> bytes:
        """What goes to the client for ``events``, parsed from ``chunk``; ``pending`` bytes
        at its end belong to an event not yet whole."""
        ...

    def failure(self, error: errors.FloopyError) -> bytes:
        """The event that ends the stream after ``error``."""
        ...


class AnthropicStream(RelayedStream):
    """An upstream Anthropic stream, relayed or translated by its mode. An error event
    before any other (overloaded, rate limited) makes ``open`` raise like the HTTP error it
    stands for, so the request can still fall back."""

    def __init__(self, body: UpstreamBody, mode: Mode) -> None:
        super().__init__(body)
        self._mode = mode
        self._parser = SseParser()

    def _opened(self) -> bool:
        return self._mode.tally.events > 0

    def _feed(self, chunk: bytes) -> bytes:
        parser = self._parser
        events = parser.feed(chunk)
        if parser.oversized:
            raise oversized_event(self.provider, parser.max_event_bytes)
        return self._mode.feed(events, chunk, parser.pending)

    def _finish(self) -> bytes:
        return self._mode.feed(self._parser.finish(), b"", 0)

    def _open_failure(self) -> errors.FloopyError | None:
        tally = self._mode.tally
        if tally.error is not None:
            return event_error(self.provider, tally.error)
        return self._closed_early() if tally.events == 0 else None

    def _summarize(self) -> None:
        self._mode.tally.fill(self.summary)

    def _closing_event(self) -> bytes:
        tally = self._mode.tally
        failure = self._ended_early(tally.done, relayed_error=tally.error is not None)
        return self._mode.failure(failure) if failure is not None else b""
