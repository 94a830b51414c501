"""The one small protocol every provider implements.

A provider only translates and calls: it builds the upstream request from an OpenAI-format
chat request, turns the upstream answer back into OpenAI format (whole or as a stream) and maps
upstream errors into the gateway's error tree. It knows nothing of pipeline stages, logging or
the HTTP server. OpenAI-compatible vendors are configuration on one shared module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from floopy import errors


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Completion:
    """A whole (non-stream) answer, already in OpenAI chat-completion format."""

    body: bytes
    usage: Usage | None = None
    finish_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamSummary:
    """What a finished stream told us, for the log: filled in while relaying."""

    content: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    ttft_ms: float | None = None
    chunks: int = 0
    completed: bool = False  # ended with [DONE] / a finish reason, not cut short
    error: str | None = None


class Stream(Protocol):
    """An upstream stream whose first event has arrived (status and headers are settled).

    ``first`` holds the bytes to send before iterating; iterating yields the rest as
    OpenAI-format SSE bytes, never a whole stream at once. ``close`` releases the upstream
    connection (a client that disconnects cancels the upstream call this way)."""

    first: bytes
    summary: StreamSummary

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def close(self) -> None: ...


@dataclass(slots=True, frozen=True)
class Call:
    """One chat-completion call to one provider: the client's body (raw bytes, OpenAI
    format), the model to ask for at the provider, and the stream options."""

    body: bytes
    model: str
    requested_model: str
    stream: bool
    include_usage: bool
    user_text: str | None = None


class Provider(Protocol):
    name: str
    kind: str

    async def complete(self, call: Call) -> Completion:
        """A non-stream chat completion. Raises a FloopyError on failure."""
        ...

    async def stream(self, call: Call) -> Stream:
        """Opens a stream and waits for its first event, so that failures before any byte
        reaches the client still raise (and can fall back). Raises a FloopyError."""
        ...

    async def close(self) -> None: ...


def upstream_error(
    provider: str, status: int, message: str, *, headers: dict[str, str] | None = None
) -> errors.FloopyError:
    """Maps an upstream HTTP failure to the error the client sees.

    Client mistakes the provider caught (400, 404, 413, 422) keep their status and message, so
    the SDK raises the same class as against the provider itself. The provider rejecting the
    gateway's own credentials (401, 403) is the gateway's problem, not the caller's: 502.
    429 stays 429 with Retry-After; 5xx and anything else become 502 PROVIDER_ERROR."""
    text = f"{provider}: {message}" if message else f"{provider} answered HTTP {status}"
    if status in (400, 404, 413, 422):
        code = "PAYLOAD_TOO_LARGE" if status == 413 else "BAD_REQUEST"
        return errors.FloopyError(text, status=status, type="invalid_request_error", code=code)
    if status == 429:
        retry_after = _retry_after_seconds(headers or {})
        return errors.RateLimitExceeded(text, retry_after=retry_after)
    if status in (401, 403):
        return errors.ProviderError(
            f"{provider} rejected the gateway's credentials (HTTP {status}): {message}"
        )
    return errors.ProviderError(f"{text} (HTTP {status})")


def _retry_after_seconds(headers: dict[str, str]) -> float:
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return float(lowered["retry-after-ms"]) / 1000
        except ValueError:
            pass
    try:
        return float(lowered.get("retry-after", "1"))
    except ValueError:
        return 1.0
