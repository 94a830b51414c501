"""Every error a client can see, in one tree.

Each class knows its HTTP status, its OpenAI error ``type`` and its ``code``; the HTTP layer
renders them as the OpenAI envelope, so every OpenAI SDK raises the matching exception class::

    {"error": {"message": "...", "type": "...", "code": "...", "param": null}}

On ``/v1/messages`` they are rendered in Anthropic's shape instead, with the same status, so
the anthropic SDKs raise their matching classes too::

    {"type": "error", "error": {"type": "...", "message": "...", "code": "..."}}

FloopyError
├── BadRequest                400  BAD_REQUEST
│   └── PromptThreatDetected  400  PROMPT_THREAT_DETECTED
├── InvalidApiKey             401  INVALID_API_KEY
├── Forbidden                 403  FORBIDDEN
├── NotFound                  404  NOT_FOUND
├── MethodNotAllowed          405  METHOD_NOT_ALLOWED
├── PayloadTooLarge           413  PAYLOAD_TOO_LARGE
├── RateLimitExceeded         429  RATE_LIMIT_EXCEEDED   (sets Retry-After)
├── InternalError             500  INTERNAL_ERROR
├── ProviderError             502  PROVIDER_ERROR        (all targets failed)
└── GatewayTimeout            504  GATEWAY_TIMEOUT
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


class PromptThreatDetected(BadRequest):
    code = "PROMPT_THREAT_DETECTED"


class InvalidApiKey(FloopyError):
    status, type, code = 401, "authentication_error", "INVALID_API_KEY"


class Forbidden(FloopyError):
    status, type, code = 403, "permission_error", "FORBIDDEN"


class NotFound(FloopyError):
    status, type, code = 404, "not_found_error", "NOT_FOUND"


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


class GatewayTimeout(FloopyError):
    status, type, code = 504, "timeout_error", "GATEWAY_TIMEOUT"


class RequestTimeout(FloopyError):
    """The client did not send its request body within BODY_READ_TIMEOUT."""

    status, type, code = 408, "invalid_request_error", "REQUEST_TIMEOUT"


class ClientDisconnected(FloopyError):
    """The client went away before its answer: nobody reads this error, the log does."""

    status, type, code = 499, "invalid_request_error", "CLIENT_DISCONNECTED"
