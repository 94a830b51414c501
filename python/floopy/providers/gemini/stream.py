"""``streamGenerateContent?alt=sse`` translated, event by event, into OpenAI chunks.

Gemini streams ``data: <GenerateContentResponse>`` events and simply ends: no sentinel, whole
function calls in one event, usage on (at least) the last event, and in older streams a
``finishReason`` on every event. So finish reasons and usage are collected on the way and
written once the upstream ends: one finish chunk per choice, the usage chunk when the client
asked for it, then ``data: [DONE]``. A stream that ends without any finish reason was cut
short and ends with an error event instead. An error object in the stream (as an SSE event
or a bare JSON line) is an error event too, or, before anything was sent, a real HTTP error.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from floopy import errors
from floopy._native import SseParser
from floopy.providers.base import CONTENT_LIMIT, CappedText, Usage, upstream_error
from floopy.providers.gemini.response import (
    answer_parts,
    completion_id,
    finish_reason,
    tool_call_json,
    usage_json,
    usage_of,
)
from floopy.providers.gemini.wire import Candidate, Error, Part, error_decoder, response_decoder
from floopy.providers.http import RelayedStream, UpstreamBody, oversized_event
from floopy.providers.openai import stream_error_event

DONE = b"data: [DONE]\n\n"


class StreamTranslator:
    """Pure translation state: Gemini event data in, OpenAI SSE bytes out. The clock for
    ``ttft_ms`` starts when it is built (just before the upstream call); ``content_limit``
    bytes of choice 0's text are kept for the log."""

    def __init__(self, model: str, include_usage: bool, content_limit: int = CONTENT_LIMIT) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = ""
        self.created = int(time.time())
        self.content = CappedText(content_limit)  # choice 0's text, for the log
        self.usage: Usage | None = None
        self.error: Error | None = None
        self.ttft_ms: float | None = None
        self.chunks = 0
        self._started = time.perf_counter()
        self._finish: dict[int, str | None] = {}  # choice index -> Gemini finish reason
        self._calls: dict[int, int] = {}  # choice index -> tool calls sent so far

    @property
    def finish_reason(self) -> str | None:
        """Choice 0's finish reason, once the stream said how it ended."""
        if self._finish.get(0) is None:
            return None
        return finish_reason(self._finish[0], self._calls.get(0, 0) > 0)

    @property
    def finished(self) -> bool:
        return any(reason is not None for reason in self._finish.values())

    def event(self, data: str) -> bytes:
        """The OpenAI chunks for one upstream event (empty when it adds nothing)."""
        if self.error is not None:
            return b""
        try:
            response = response_decoder.decode(data)
        except msgspec.DecodeError:
            return b""  # not a JSON event: nothing a client could use
        if response.error is not None:
            return self.fail(response.error)
        self._first_seen(response.response_id, response.model_version)
        usage = usage_of(response.usage_metadata)
        if usage is not None:
            self.usage = usage
        out = [self._candidate_chunks(candidate) for candidate in response.candidates]
        feedback = response.prompt_feedback
        if not response.candidates and feedback is not None and feedback.block_reason:
            self._finish.setdefault(0, "SAFETY")  # the prompt itself was blocked
        return b"".join(out)

    def fail(self, error: Error) -> bytes:
        self.error = error
        return stream_error_event(f"gemini: {error.message or error.status}")

    def end(self) -> bytes:
        """What follows the last upstream event: finish chunks, usage, [DONE]; or, for a
        stream cut short, an error event."""
        if self.error is not None:
            return b""
        if not self.finished:
            return self.fail(Error(message="the stream ended before it finished"))
        out = [
            self._chunk(index, {}, finish_reason(reason, self._calls.get(index, 0) > 0))
            for index, reason in sorted(self._finish.items())
        ]
        if self.include_usage and self.usage is not None:
            out.append(self._usage_chunk(self.usage))
        out.append(DONE)
        return b"".join(out)

    def _first_seen(self, response_id: str | None, model_version: str | None) -> None:
        if not self.id:
            self.id = completion_id(response_id)
            self.model = model_version or self.model

    def _candidate_chunks(self, candidate: Candidate) -> bytes:
        index = candidate.index
        first = index not in self._finish
        if first or candidate.finish_reason is not None:
            self._finish[index] = candidate.finish_reason
        out: list[bytes] = []
        if first:
            out.append(self._chunk(index, {"role": "assistant", "content": ""}, None))
        for part in answer_parts(candidate):
            if part.text:
                out.append(self._text_chunk(index, part.text))
            elif part.function_call is not None:
                out.append(self._tool_chunk(index, part))
        return b"".join(out)

    def _text_chunk(self, index: int, text: str) -> bytes:
        if index == 0:
            self.content.add(text)
            self._answered()
        return self._chunk(index, {"content": text}, None)

    def _tool_chunk(self, index: int, part: Part) -> bytes:
        position = self._calls.get(index, 0)
        self._calls[index] = position + 1
        if index == 0:
            self._answered()
        call = {"index": position, **tool_call_json(position, part)}
        return self._chunk(index, {"tool_calls": [call]}, None)

    def _answered(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self._started) * 1000

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._encode({"choices": [choice]})

    def _usage_chunk(self, usage: Usage) -> bytes:
        return self._encode({"choices": [], "usage": usage_json(usage)})

    def _encode(self, fields: dict[str, Any]) -> bytes:
        self.chunks += 1
        doc = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            **fields,
        }
        return b"data: " + msgspec.json.encode(doc) + b"\n\n"


class BareErrorWatch:
    """Gemini may end a stream with a bare ``{"error": ...}`` JSON line, which is no SSE
    event (SSE lines start with a field name, never ``{``). Lines starting with ``{`` are
    collected on the side, across chunk boundaries, and read as an error object."""

    _MAX_LINE = 64 * 1024

    def __init__(self) -> None:
        self._line: bytearray | None = None
        self._at_line_start = True
        self.error: Error | None = None

    def feed(self, chunk: bytes) -> None:
        position = self._collect(chunk, 0) if self._line is not None else 0
        while self.error is None:
            begin = self._bare_line_start(chunk, position)
            if begin < 0:
                break
            self._line = bytearray()
            position = self._collect(chunk, begin)
        self._at_line_start = chunk.endswith((b"\n", b"\r"))

    def finish(self) -> None:
        if self._line is None or self.error is not None:
            return
        line, self._line = bytes(self._line), None
        try:
            self.error = error_decoder.decode(line).error
        except msgspec.DecodeError:
            self.error = None

    def _bare_line_start(self, chunk: bytes, position: int) -> int:
        if position == 0 and self._at_line_start and chunk.startswith(b"{"):
            return 0
        found = chunk.find(b"\n{", position)
        return -1 if found < 0 else found + 1

    def _collect(self, chunk: bytes, begin: int) -> int:
        """Adds the line's bytes from ``begin``; returns where scanning goes on."""
        assert self._line is not None
        end = chunk.find(b"\n", begin)
        self._line.extend(chunk[begin : len(chunk) if end < 0 else end])
        if end >= 0:
            self.finish()
            return end
        if len(self._line) > self._MAX_LINE:
            self._line = None  # no error object is this long
        return len(chunk)


class GeminiStream(RelayedStream):
    """A Gemini stream, translated chunk by chunk into OpenAI's format."""

    def __init__(self, body: UpstreamBody, translator: StreamTranslator) -> None:
        super().__init__(body)
        self._translator = translator
        self._parser = SseParser()
        self._bare = BareErrorWatch()
        self._ended = False

    def _feed(self, chunk: bytes) -> bytes:
        self._bare.feed(chunk)
        events = self._parser.feed(chunk)
        if self._parser.oversized:
            raise oversized_event(self.provider, self._parser.max_event_bytes)
        return b"".join(self._translator.event(event.data) for event in events)

    def _finish(self) -> bytes:
        """The stream's last bytes, once: ``open`` may have met the end already."""
        if self._ended:
            return b""
        self._ended = True
        tail = b"".join(self._translator.event(event.data) for event in self._parser.finish())
        self._bare.finish()
        if self._bare.error is not None:
            return tail + self._translator.fail(self._bare.error)
        return tail + self._translator.end()

    def _open_failure(self) -> errors.FloopyError | None:
        error = self._translator.error
        if error is None or self._translator.chunks > 0:
            return None
        if not error.code:
            return self._closed_early()
        return upstream_error(self.provider, error.code, error.message)

    def _closing_event(self) -> bytes:
        failure = self.summary.failure
        return failure.stream_event() if failure is not None else b""

    def _summarize(self) -> None:
        translator, summary = self._translator, self.summary
        summary.content, summary.truncated = str(translator.content), translator.content.truncated
        summary.finish_reason = translator.finish_reason
        summary.usage = translator.usage
        summary.ttft_ms = translator.ttft_ms
        summary.chunks = translator.chunks
        summary.completed = translator.error is None and translator.finished
        if translator.error is not None:  # the provider's own error, already passed on
            summary.error = translator.error.message or translator.error.status
            summary.failure = None
