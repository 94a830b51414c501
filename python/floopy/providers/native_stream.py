"""An OpenAI chat stream relayed by the native client (``STREAM_RELAY = "native"``): read,
relayed and captured on the native thread, its bytes written to the client without a Python
step per chunk once the respond stage hands it the server's transport (``relay_to``).

Python sees the stream when it opens (the first event, read here before anything is sent, so
a failure until then still raises and can fall back), when it ends (the capture: text, usage,
finish reason, for the log) and when it fails: a time limit that ran out or a broken
connection is mapped as ``http.UpstreamBody`` maps it, and the stream ends with the same
error event as ``openai.OpenAIStream``; an event too long to be real ends it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from floopy import errors
from floopy.providers.base import StreamSummary, Usage
from floopy.providers.http import (
    TRANSPORT_FAILURES,
    Timeouts,
    open_failure,
    oversized_event,
    stream_failure,
)
from floopy.upstream.native import NativeRelay


class NativeOpenAIStream:
    """See ``base.Stream``; ``relay_to`` is its way around the event loop."""

    def __init__(self, provider: str, relay: NativeRelay, timeouts: Timeouts) -> None:
        self.provider = provider
        self.first = b""
        self.summary = StreamSummary()
        self._relay = relay
        self._timeouts = timeouts
        self._summarized = False

    async def open(self) -> None:
        """Waits for the first event and takes it; raises, closing the call, if the stream
        had none."""
        await self._relay.settled()
        self.first = self._relay.take()
        if self.first:
            return
        failure = self._failure() or errors.ProviderError(
            f"{self.provider} closed the stream before any event"
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
        return failure.stream_event()

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
    summary.completed = capture.done or capture.finish_reason is not None
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
        )
