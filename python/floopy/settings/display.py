"""Settings as operators see them (``floopy settings check``, start-up output): secrets masked.

What counts as a secret: a password in a URL, URL query values whose name suggests a
credential (some vendors take the key as ``?key=``), and every provider and OTEL_HEADERS
header value, since extra headers are where vendor credentials go. API keys appear only as
hashes anyway.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from floopy.settings.schema import Settings

MASK = "***"
_SECRET_PARAMS = ("key", "token", "secret", "password", "signature", "sig", "auth")


def mask_url(url: str) -> str:
    """``url`` with its password and credential-like query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    query = urlencode(
        [(name, MASK if _is_secret(name) else value) for name, value in parse_qsl(parts.query)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_PARAMS)


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by its UPPER_CASE name, as plain values, secrets masked."""
    plain = msgspec.to_builtins(settings)
    plain.pop("source", None)
    for provider in plain["providers"].values():
        provider["base_url"] = mask_url(provider["base_url"])
        provider["headers"] = dict.fromkeys(provider["headers"], MASK)
    plain["otel_headers"] = dict.fromkeys(plain["otel_headers"], MASK)
    for field in ("clickhouse_url", "qdrant_url", "redis_url", "otel_endpoint"):
        if plain[field] is not None:
            plain[field] = mask_url(plain[field])
    return {name.upper(): value for name, value in plain.items()}
