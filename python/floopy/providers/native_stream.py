"""A chat stream relayed by the native client (``STREAM_RELAY = "native"``): read, translated
where needed (Anthropic and Gemini streams into OpenAI chunks; OpenAI chunks into Anthropic
events for ``/v1/messages``), relayed and captured on the native thread, its bytes written
to the client without a Python step per chunk once the respond stage hands it the server's
transport (``relay_to``).

Python sees the stream when it opens (the first event, read here before anything is sent, so
a failure until then still raises and can fall back: a provider's error event that comes
first is raised as the HTTP error it stands for), when it ends (the capture: text, usage,
finish reason, for the log) and when it fails: a time limit that ran out or a broken
connection is mapped as ``http.UpstreamBody`` maps it, and the stream ends with the same
error event as the Python relay's; an event too long to be real ends it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from floopy import errors
from floopy.ids import hex32
from floopy.providers.base import StreamSummary, Usage
from floopy.providers.http import (
    TRANSPORT_FAILURES,
    Timeouts,
    open_failure,
    oversized_event,
    stream_failure,
)
from floopy.upstream import Answer
from floopy.upstream.native import NativeRelay, NativeUpstream

# What a provider's error event that came before anything else is raised as: the capture's
# error (text, type, code) in the provider's terms. None: no such error.
OpenError = Callable[[str, Any], errors.FloopyError | None]
# The closing error event, OpenAI-shaped, in the format the client speaks.
Closing = Callable[[bytes], bytes]


def _no_open_error(provider: str, capture: Any) -> errors.FloopyError | None:
    return None


def _as_is(event: bytes) -> bytes:
    return event


@dataclass(frozen=True, slots=True)
class NativeCall:
    """A chat stream the native client can relay: where to send it, and how to read what
    comes back. ``error`` maps a non-200 answer; ``source`` is what the provider speaks
    ("openai", "anthropic", "gemini"); the rest is ``NativeUpstream.relay``'s."""

    upstream: NativeUpstream
    provider: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeouts: Timeouts
    error: Callable[[Answer], errors.FloopyError]
    max_capture_bytes: int
    source: str = "openai"
    strip_usage: bool = False
    model: str = ""
    include_usage: bool = False
    json_tool: str | None = None
    fallback_id: str = ""
    open_error: OpenError = _no_open_error


async def open_native(
    spec: NativeCall, *, messages_model: str | None = None, closing: Closing = _as_is
) -> NativeOpenAIStream:
    """The stream, once its first event is in hand; with ``messages_model``, written on as
    Anthropic Messages events. Raises the provider's error for a non-200 answer, and a
    failure before the first event, as the Python relay does."""
    try:
        opened = await spec.upstream.relay(
            spec.url,
            spec.headers,
            spec.body,
            spec.timeouts,
            strip_usage=spec.strip_usage,
            max_capture_bytes=spec.max_capture_bytes,
            source=spec.source,
            model=spec.model,
            include_usage=spec.include_usage,
            json_tool=spec.json_tool,
            fallback_id=spec.fallback_id or hex32(),
            messages_model=messages_model,
        )
    except TRANSPORT_FAILURES as exc:
        raise open_failure(spec.provider, exc, spec.timeouts) from exc
    if isinstance(opened, Answer):
        raise spec.error(opened)
    stream = NativeOpenAIStream(
        spec.provider, opened, spec.timeouts, open_error=spec.open_error, closing=closing
    )
    try:
        await stream.open()
    except BaseException:
        opened.close()
        raise
    return stream


class NativeOpenAIStream:
    """See ``base.Stream``; ``relay_to`` is its way around the event loop. ``open_error`` maps
    a provider's error event that came first (translated streams), ``closing`` writes the
    error that ends a stream cut short in the client's format (``/v1/messages``)."""

    def __init__(
        self,
        provider: str,
        relay: NativeRelay,
        timeouts: Timeouts,
        *,
        open_error: OpenError = _no_open_error,
        closing: Closing = _as_is,
    ) -> None:
        self.provider = provider
        self.first = b""
        self.summary = StreamSummary()
        self._relay = relay
        self._timeouts = timeouts
        self._open_error = open_error
        self._closing = closing
        self._summarized = False

    async def open(self) -> None:
        """Waits for the first event and takes it; raises, closing the call, if the stream
        had none, or began with the provider's error."""
        await self._relay.settled()
        self.first = self._relay.take()
        capture = self._relay.capture
        failure = None
        if capture.error_before_output:
            failure = self._open_error(self.provider, capture)
        elif self.first:
            return
        failure = (
            failure
            or self._failure()
            or errors.ProviderError(f"{self.provider} closed the stream before any event")
        )
        self._relay.close()
        raise failure

    async def relay_to(self, transport: Any, budget: int) -> int:
        """Lets the native side write the stream to ``transport`` until it ends (returns 0)
        or ``budget`` bytes went (returns the bytes sent; iterate for the rest). Raises
        ``upstream.native.ClientGone`` when the transport refuses bytes."""
        return await self._relay.attach(transport, budget)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while batch := await self._relay.next_batch():
            yield batch
        failure = self._failure()
        if failure is not None:
            self.summary.fail(failure)
        self._summarize()
        last = self._closing_event()
        if last:
            yield last

    async def close(self) -> None:
        self._relay.close()
        self._summarize()

    def _failure(self) -> errors.FloopyError | None:
        """Why the native side stopped early, as the client will hear it; None otherwise."""
        error = self._relay.error
        if isinstance(error, TRANSPORT_FAILURES):
            if self._relay.status == 0:  # no answer at all: as when opening any call
                return open_failure(self.provider, error, self._timeouts)
            return stream_failure(self.provider, error, self._ran_out(error))
        if error is not None:
            return errors.ProviderError(f"{self.provider} broke the stream: {error}")
        if self._relay.capture.oversized:
            return oversized_event(self.provider, self._relay.capture.max_event_bytes)
        return None

    def _ran_out(self, error: Exception) -> str:
        limits = self._timeouts
        if getattr(error, "phase", None) == "total":
            return f"did not finish within {limits.total:g}s (total_timeout)"
        if not self.first:
            return "sent no event in time (first_byte_timeout)"
        return f"sent nothing for {limits.first_byte:g}s (first_byte_timeout)"

    def _closing_event(self) -> bytes:
        summary, capture = self.summary, self._relay.capture
        if summary.error is None and not summary.completed:
            summary.error = f"{self.provider} ended the stream early"
        if summary.error is None or capture.error is not None:
            return b""
        failure = summary.failure or errors.ProviderError(summary.error)
        return self._closing(failure.stream_event())

    def _summarize(self) -> None:
        if self._summarized:
            return
        self._summarized = True
        summarize(self._relay.capture, self.summary)


def summarize(capture: Any, summary: StreamSummary) -> None:
    """Fills ``summary`` from a native relay's capture (``OpenAIStreamRelay`` or
    ``RelayCapture``: the same fields)."""
    summary.content, summary.truncated = capture.content, capture.truncated
    summary.finish_reason = capture.finish_reason
    summary.ttft_ms = capture.ttft_ms
    summary.chunks = capture.chunk_count
    summary.completed = capture.completed
    if capture.error is not None:  # the provider's own error event, relayed as it came
        summary.error, summary.failure = capture.error, None
    native = capture.usage
    if native is not None:
        summary.usage = Usage(
            prompt_tokens=native.prompt_tokens,
            completion_tokens=native.completion_tokens,
            total_tokens=native.total_tokens,
            cached_tokens=native.cached_tokens,
            reasoning_tokens=native.reasoning_tokens,
            cache_write_tokens=native.cache_write_tokens,
        )
