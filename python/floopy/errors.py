"""Every error a client can see, in one tree.

Each class knows its HTTP status, its OpenAI error ``type`` and its ``code``; the HTTP layer
renders them as the OpenAI envelope, so every OpenAI SDK raises the matching exception class::

    {"error": {"message": "...", "type": "...", "code": "...", "param": null}}

On ``/v1/messages`` they are rendered in Anthropic's shape instead, with the same status, so
the anthropic SDKs raise their matching classes too::

    {"type": "error", "error": {"type": "...", "message": "...", "code": "..."}}

The tree (status, code; ``FloopyError`` itself is the root, never raised as it is)::

    FloopyError                       500  INTERNAL_ERROR
    ├── BadRequest                    400  BAD_REQUEST
    │   ├── InvalidInput              400  BAD_REQUEST    refused by the native core
    │   │   ├── InvalidJson           400  BAD_REQUEST    not JSON, or nested too deep
    │   │   ├── InvalidField          400  BAD_REQUEST    param: the field's dotted path
    │   │   └── InvalidHeader         400  BAD_REQUEST    param: the header's name
    │   ├── ProviderRejected          400, 404 or 422     the provider's status, kept
    │   └── PromptThreatDetected      400  PROMPT_THREAT_DETECTED
    ├── InvalidApiKey                 401  INVALID_API_KEY
    ├── Forbidden                     403  FORBIDDEN
    ├── NotFound                      404  NOT_FOUND
    │   └── ModelNotFound             404  model_not_found  (OpenAI's code, for models.retrieve)
    ├── MethodNotAllowed              405  METHOD_NOT_ALLOWED
    ├── RequestTimeout                408  REQUEST_TIMEOUT  (the body came too slowly)
    ├── PayloadTooLarge               413  PAYLOAD_TOO_LARGE  (native parser, or a provider's 413)
    ├── RateLimitExceeded             429  RATE_LIMIT_EXCEEDED  (sets Retry-After)
    ├── ClientDisconnected            499  CLIENT_DISCONNECTED  (logged, never sent)
    ├── InternalError                 500  INTERNAL_ERROR
    ├── ProviderError                 502  PROVIDER_ERROR  (all targets failed)
    │   └── UpstreamError             502  PROVIDER_ERROR  transport: unreachable, or broken
    ├── FirewallUnavailable           503  FIREWALL_UNAVAILABLE  (no verdict, fail closed)
    └── GatewayTimeout                504  GATEWAY_TIMEOUT
        └── UpstreamTimeout           504  GATEWAY_TIMEOUT  transport: a time limit (``phase``)

Where they come from:

- The native core (``floopy._native``, mapped once in ``rust/py/src/errors.rs``) raises these
  classes itself: ``PayloadTooLarge`` and the ``InvalidInput`` family, with ``param`` set.
  ``InvalidInput`` is a ``ValueError`` too, since the same classes report a wrong argument to a
  native object (a JSONL record holding a newline, a bad upstream URL or header).
- The upstream clients (``floopy.upstream``: native, or aiohttp) raise ``UpstreamError`` and
  ``UpstreamTimeout``. They do not know which provider they called, so
  ``providers/http.py`` names the provider in the one place it turns them into the
  ``ProviderError`` or ``GatewayTimeout`` a client sees.
- Everything else raises the class that says what went wrong; nothing builds a bare
  ``FloopyError`` (``tests/test_errors.py`` checks the sources).
"""

from __future__ import annotations

import math

import msgspec


class FloopyError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str = "INTERNAL_ERROR"
    # Set on errors mapped from a provider's answer: its HTTP status and Retry-After (in
    # seconds), which decide whether dispatch retries and how long it waits. Not rendered.
    upstream_status: int | None = None
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}
        # A provider's own status and type may be passed through (a 400 stays a 400).
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code

    def envelope(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": self.param,
            }
        }

    def body(self) -> bytes:
        return msgspec.json.encode(self.envelope())

    def anthropic_body(self) -> bytes:
        # Anthropic's error types match OpenAI's but for a body too large.
        kind = "request_too_large" if self.status == 413 else self.type
        error = {"type": kind, "message": self.message, "code": self.code}
        return msgspec.json.encode({"type": "error", "error": error})

    def stream_event(self) -> bytes:
        """The error ending a stream already under way, as an OpenAI-style event (the SDKs
        raise it): the envelope as its data."""
        return b"data: " + self.body() + b"\n\n"

    def anthropic_stream_event(self) -> bytes:
        """The same on ``/v1/messages``: Anthropic's ``error`` event."""
        return b"event: error\ndata: " + self.anthropic_body() + b"\n\n"


class BadRequest(FloopyError):
    status, type, code = 400, "invalid_request_error", "BAD_REQUEST"


class InvalidInput(BadRequest, ValueError):
    """What the native core refuses in its input; ``param`` names the field or header."""


class InvalidJson(InvalidInput):
    """The body is not valid JSON, nests deeper than the limit, or is not an object."""


class InvalidField(InvalidInput):
    """A field has a wrong type or value; ``param`` is its dotted path (``messages.2.role``)."""


class InvalidHeader(InvalidInput):
    """A header the gateway reads has a wrong value; ``param`` is its name, lower-case."""


class ProviderRejected(BadRequest):
    """A client mistake the provider caught (its 400, 404 or 422): the status is kept, so the
    SDK raises the same class as against the provider itself."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message, status=status)


class PromptThreatDetected(BadRequest):
    code = "PROMPT_THREAT_DETECTED"


class InvalidApiKey(FloopyError):
    status, type, code = 401, "authentication_error", "INVALID_API_KEY"


class Forbidden(FloopyError):
    status, type, code = 403, "permission_error", "FORBIDDEN"


class NotFound(FloopyError):
    status, type, code = 404, "not_found_error", "NOT_FOUND"


class ModelNotFound(NotFound):
    """A model id the catalog does not hold: OpenAI's own code, which clients test for."""

    code = "model_not_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class MethodNotAllowed(FloopyError):
    status, type, code = 405, "invalid_request_error", "METHOD_NOT_ALLOWED"


class PayloadTooLarge(FloopyError):
    status, type, code = 413, "invalid_request_error", "PAYLOAD_TOO_LARGE"


class RateLimitExceeded(FloopyError):
    status, type, code = 429, "rate_limit_error", "RATE_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, retry_after: float, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.headers.setdefault("Retry-After", str(max(1, math.ceil(retry_after))))


class InternalError(FloopyError):
    status, type, code = 500, "api_error", "INTERNAL_ERROR"


class ProviderError(FloopyError):
    status, type, code = 502, "api_error", "PROVIDER_ERROR"


class UpstreamError(ProviderError):
    """Transport: a provider could not be reached (refused, unknown host, failed TLS
    handshake), broke the connection, or answered with what is not HTTP; ``too_large``: its
    whole answer ran past MAX_RESPONSE_BYTES."""

    too_large: bool = False


class FirewallUnavailable(FloopyError):
    """The firewall reached no verdict (its classifier failed or timed out) and is set to
    fail closed."""

    status, type, code = 503, "api_error", "FIREWALL_UNAVAILABLE"


class GatewayTimeout(FloopyError):
    status, type, code = 504, "timeout_error", "GATEWAY_TIMEOUT"


class UpstreamTimeout(GatewayTimeout):
    """Transport: a time limit of an upstream call ran out; ``phase`` says which
    (``"connect"``, ``"first_byte"`` or ``"total"``)."""

    phase: str | None = None

    def __init__(self, message: str, *, phase: str | None = None) -> None:
        super().__init__(message)
        self.phase = phase


class RequestTimeout(FloopyError):
    """The client did not send its request body within BODY_READ_TIMEOUT."""

    status, type, code = 408, "invalid_request_error", "REQUEST_TIMEOUT"


class ClientDisconnected(FloopyError):
    """The client went away before its answer: nobody reads this error, the log does."""

    status, type, code = 499, "invalid_request_error", "CLIENT_DISCONNECTED"
