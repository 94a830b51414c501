"""What a provider is, as small protocols, one per capability:

- ``Provider``: every provider answers chat completions, whole and streamed;
- ``MessagesProvider``: it also speaks Anthropic's Messages API natively, so ``/v1/messages``
  bodies pass through untranslated (the rest get them over chat: ``operations``);
- ``ResponsesProvider``: it speaks OpenAI's Responses API natively (the rest get
  ``/v1/responses`` over chat: ``operations``);
- ``TokenCounter``: it counts the input tokens of a Messages request (Anthropic);
- ``EmbeddingsProvider``: it also serves embeddings.

A provider only translates and calls: it builds the upstream request from the client's body,
turns the upstream answer back into the client's format (whole or as a stream) and maps
upstream errors into the gateway's error tree. It knows nothing of pipeline stages, logging or
the HTTP server. OpenAI-compatible vendors are configuration on one shared module.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from floopy import errors


@dataclass(slots=True)
class Usage:
    """Token counts in OpenAI's convention, whatever the provider: ``prompt_tokens`` counts
    every input token, the cached (read) and cache-write ones included; ``completion_tokens``
    counts every output token, the reasoning ones included. Pricing relies on this."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(slots=True)
class Completion:
    """A whole (non-stream) answer, already in OpenAI chat-completion format."""

    body: bytes
    usage: Usage | None = None
    finish_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


# Bytes of a stream's text kept for the log unless told otherwise: what the log keeps of a
# body by default (LOG_BODY_MAX_BYTES); the worker passes the setting in.
CONTENT_LIMIT = 256 * 1024


class CappedText:
    """A stream's text as the log keeps it: at most ``limit`` bytes of UTF-8, cut at a
    character boundary, the rest dropped as it arrives. A stream can be far longer than the
    log keeps, and holding all of it would cost the worker the whole answer per stream."""

    __slots__ = ("_parts", "_room", "truncated")

    def __init__(self, limit: int = CONTENT_LIMIT) -> None:
        self._parts: list[str] = []
        self._room = limit
        self.truncated = False

    def add(self, text: str) -> None:
        if not text:
            return
        if self._room <= 0:
            self.truncated = True
            return
        size = len(text) if text.isascii() else len(text.encode())
        if size > self._room:
            text = text.encode()[: self._room].decode("utf-8", "ignore")
            size, self.truncated = self._room, True
        if text:
            self._parts.append(text)
        self._room -= size

    def __str__(self) -> str:
        return "".join(self._parts)


@dataclass(slots=True)
class StreamSummary:
    """What a finished stream told us, for the log: filled in while relaying. ``content`` is
    capped (``CappedText``); ``truncated`` says some of it was left out."""

    content: str = ""
    truncated: bool = False
    finish_reason: str | None = None
    usage: Usage | None = None
    ttft_ms: float | None = None
    chunks: int = 0
    completed: bool = False  # ended with [DONE] / a finish reason, not cut short
    error: str | None = None
    # Why the stream was cut short, when the gateway knows it as one of its own errors (a
    # time limit ran out, the connection broke): its status and code go to the log. None
    # with an ``error`` set means the provider's failure: 502 PROVIDER_ERROR.
    failure: errors.FloopyError | None = None

    def fail(self, failure: errors.FloopyError) -> None:
        self.failure = failure
        self.error = failure.message


class Stream(Protocol):
    """An upstream stream whose first event has arrived (status and headers are settled).

    ``first`` holds the bytes to send before iterating; iterating yields the rest as
    OpenAI-format SSE bytes, never a whole stream at once. ``close`` releases the upstream
    connection (a client that disconnects cancels the upstream call this way)."""

    first: bytes
    summary: StreamSummary

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def close(self) -> None: ...


@runtime_checkable
class DirectStream(Protocol):
    """A stream that can write itself to the server's transport, with no Python step per
    chunk (``native_stream``): ``relay_to`` returns once it ended (0), or once ``budget``
    bytes went (the bytes it sent), after which iterating gives the rest."""

    async def relay_to(self, transport: Any, budget: int) -> int: ...


Api = Literal["chat", "messages", "count_tokens", "responses"]


@dataclass(slots=True, frozen=True)
class Call:
    """One call to one provider: the client's body (raw bytes, in the format of ``api``),
    the model to ask for at the provider, and the stream options.

    ``api`` is the format the client spoke: ``chat`` (OpenAI chat completions),
    ``messages`` (Anthropic's Messages API, with the client's ``anthropic-*`` headers in
    ``client_headers``, as (name, value) pairs), ``count_tokens`` (a Messages body whose
    input tokens are to be counted) or ``responses`` (OpenAI's Responses API)."""

    body: bytes
    model: str
    requested_model: str
    stream: bool
    include_usage: bool
    user_text: str | None = None
    api: Api = "chat"
    client_headers: tuple[tuple[str, str], ...] = ()


class Provider(Protocol):
    """Every provider: chat completions, whole and streamed."""

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


@runtime_checkable
class MessagesProvider(Protocol):
    """A provider that speaks Anthropic's Messages API natively: ``call.body`` is an
    Anthropic request, and the answer goes back to the client as the provider sent it."""

    async def messages_complete(self, call: Call) -> Completion: ...

    async def messages_stream(self, call: Call) -> Stream: ...


@runtime_checkable
class ResponsesProvider(Protocol):
    """A provider that speaks OpenAI's Responses API natively: ``call.body`` is a Responses
    request, and the answer (a ``response`` object, or its typed event stream) goes back to
    the client as the provider sent it. ``speaks_responses`` false (an OpenAI-compatible
    server without ``/responses``) sends it over chat instead."""

    speaks_responses: bool

    async def responses_complete(self, call: Call) -> Completion: ...

    async def responses_stream(self, call: Call) -> Stream: ...


@runtime_checkable
class TokenCounter(Protocol):
    """A provider that counts the input tokens of a Messages request
    (``/v1/messages/count_tokens``): the answer is ``{"input_tokens": N}``."""

    async def count_tokens(self, call: Call) -> Completion: ...


@dataclass(slots=True, frozen=True)
class EmbeddingCall:
    """One embeddings call to one provider: the client's body (OpenAI format) and what the
    gateway read from it. ``texts`` is None when the input came as token ids."""

    body: bytes
    model: str
    requested_model: str
    texts: tuple[str, ...] | None
    encoding_format: str = "float"  # or "base64": little-endian float32, as OpenAI sends
    dimensions: int | None = None


@dataclass(slots=True)
class Embeddings:
    """An embeddings answer, already in OpenAI's ``CreateEmbeddingResponse`` format."""

    body: bytes
    usage: Usage | None = None


@runtime_checkable
class EmbeddingsProvider(Protocol):
    """A provider that also serves ``POST /v1/embeddings`` (not every provider does)."""

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        """Raises a FloopyError on failure."""
        ...


def upstream_error(
    provider: str, status: int, message: str, *, headers: dict[str, str] | None = None
) -> errors.FloopyError:
    """Maps an upstream HTTP failure to the error the client sees.

    Client mistakes the provider caught (400, 404, 413, 422) keep their status and message, so
    the SDK raises the same class as against the provider itself. The provider rejecting the
    gateway's own credentials (401, 403) is the gateway's problem, not the caller's: 502.
    429 stays 429 with Retry-After; 5xx and anything else become 502 PROVIDER_ERROR. The
    upstream status and Retry-After ride along, for dispatch to decide on a retry."""
    retry_after = retry_after_seconds(headers or {})
    error = _client_facing(provider, status, message, retry_after)
    error.upstream_status = status
    error.retry_after = retry_after
    return error


def _client_facing(
    provider: str, status: int, message: str, retry_after: float | None
) -> errors.FloopyError:
    text = f"{provider}: {message}" if message else f"{provider} answered HTTP {status}"
    if status == 413:
        return errors.PayloadTooLarge(text)
    if status in (400, 404, 422):
        return errors.ProviderRejected(text, status=status)
    if status == 429:
        return errors.RateLimitExceeded(
            text, retry_after=1.0 if retry_after is None else retry_after
        )
    if status in (401, 403):
        return errors.ProviderError(
            f"{provider} rejected the gateway's credentials (HTTP {status}): {message}"
        )
    return errors.ProviderError(f"{text} (HTTP {status})")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asks us to wait: ``retry-after-ms`` (OpenAI), else
    ``retry-after`` as seconds or an HTTP date; None when absent or unreadable."""
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
