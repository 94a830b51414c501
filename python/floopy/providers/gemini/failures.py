"""Gemini's error answers (``{"error": {"code", "message", "status", "details"}}``) mapped
into the gateway's error tree.

Gemini says a key is wrong with 400 INVALID_ARGUMENT and the reason API_KEY_INVALID: that is
the gateway's credential failing, not the client's request, so it becomes 502 like any
provider rejecting the gateway's key. A 429 RESOURCE_EXHAUSTED carries its wait in a
``google.rpc.RetryInfo`` detail (``"retryDelay": "7s"``) rather than a Retry-After header.
"""

from __future__ import annotations

import msgspec

from floopy import errors
from floopy.providers.base import upstream_error
from floopy.providers.gemini.wire import Error, error_decoder

_CREDENTIAL_REASONS = {
    "API_KEY_INVALID",
    "API_KEY_SERVICE_BLOCKED",
    "API_KEY_HTTP_REFERRER_BLOCKED",
}


def gemini_error(
    provider: str, status: int, body: bytes, headers: dict[str, str]
) -> errors.FloopyError:
    error = _parse(body)
    if error is None:
        return upstream_error(provider, status, body[:200].decode("utf-8", "replace").strip())
    reason = next((d.reason for d in error.details if d.reason in _CREDENTIAL_REASONS), None)
    if reason is not None:
        failure = errors.ProviderError(
            f"{provider} rejected the gateway's credentials (HTTP {status} {reason}): "
            f"{error.message}"
        )
        failure.upstream_status = status  # another target may do; a retry will not
        return failure
    if status == 429:
        headers = _with_retry_after(headers, error)
    return upstream_error(provider, status, error.message, headers=headers)


def _parse(body: bytes) -> Error | None:
    try:
        return error_decoder.decode(body).error
    except msgspec.DecodeError:
        return None


def _with_retry_after(headers: dict[str, str], error: Error) -> dict[str, str]:
    if any(name.lower() == "retry-after" for name in headers):
        return headers
    for detail in error.details:
        seconds = _seconds(detail.retry_delay)
        if seconds is not None:
            return {**headers, "retry-after": str(seconds)}
    return headers


def _seconds(delay: str | None) -> float | None:
    """``"7s"`` or ``"0.5s"`` (protobuf Duration in JSON) as seconds."""
    if not delay or not delay.endswith("s"):
        return None
    try:
        return float(delay[:-1])
    except ValueError:
        return None
