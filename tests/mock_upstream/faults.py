"""Fault injection for the mock provider: models named ``fail-<n>-<fault>`` fail their first
``n`` requests for each distinct prompt (the last user message), then answer normally, so a
test that puts a unique token in its prompt gets a fresh fault budget.

    fail-<n>-<status>              that HTTP status with an OpenAI error body
    fail-<n>-<status>-after<ms>    ... with ``retry-after-ms: <ms>`` (and retry-after)
    fail-<n>-reset                 the connection drops before any response
    fail-<n>-hang                  no answer for 10 s (the gateway's timeout fires first)
    fail-<n>-<status>-leakkey      ... whose error message quotes the key the mock was sent,
                                   as OpenAI's "Incorrect API key provided" does
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

_FAULT = re.compile(
    r"fail-(?P<times>\d+)-(?P<fault>\d{3}|reset|hang)(?:-after(?P<ms>\d+))?(?P<leak>-leakkey)?"
)
_KEY_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
_seen: Counter[tuple[str, str]] = Counter()


async def inject(
    request: web.Request,
    body: dict[str, Any],
    error_response: Callable[[int], web.Response],
) -> web.StreamResponse | None:
    """The fault to answer with, or None to answer normally."""
    match = _FAULT.fullmatch(str(body.get("model", "")))
    if match is None:
        return None
    key = (match[0], json.dumps(body.get("messages", [])[-1:]))
    _seen[key] += 1
    if _seen[key] > int(match["times"]):
        return None
    fault = match["fault"]
    if fault == "reset":
        assert request.transport is not None
        request.transport.abort()
        return web.Response()  # never sent: the connection is gone
    if fault == "hang":
        await asyncio.sleep(10)
        return web.Response(status=504)
    response = error_response(int(fault))
    if match["leak"]:
        _quote_the_key(request, response)
    if match["ms"] is not None:
        millis = int(match["ms"])
        response.headers["retry-after-ms"] = str(millis)
        response.headers["retry-after"] = str(math.ceil(millis / 1000))
    return response


def _quote_the_key(request: web.Request, response: web.Response) -> None:
    presented = next((request.headers[h] for h in _KEY_HEADERS if h in request.headers), "")
    key = presented.removeprefix("Bearer ").strip()
    assert response.body is not None and isinstance(response.body, bytes)
    doc = json.loads(response.body)
    doc["error"]["message"] = f"Incorrect API key provided: {key}. You can find your key..."
    response.body = json.dumps(doc).encode()
