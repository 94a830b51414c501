"""``POST /v1/messages/count_tokens`` for the mock provider: Anthropic's token counting.

Like the real API it answers 401 without ``x-api-key`` and 400 without a known
``anthropic-version``; the count is made up but deterministic (a quarter of the JSON length
of the messages, the system prompt and the tools), so a test can work it out.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic_wire  # run as a script, so this folder is on sys.path
from aiohttp import web


def add_routes(app: web.Application, received: list[dict[str, Any]]) -> None:
    async def handler(request: web.Request) -> web.Response:
        return await count_tokens(request, received)

    app.router.add_post("/v1/messages/count_tokens", handler)


def counted(body: dict[str, Any]) -> int:
    parts = (body.get("messages"), body.get("system", ""), body.get("tools", []))
    return sum(len(json.dumps(part)) // 4 for part in parts)


async def count_tokens(request: web.Request, received: list[dict[str, Any]]) -> web.Response:
    body = json.loads(await request.read())
    received.append({"headers": dict(request.headers), "body": body, "path": request.path})
    key = request.headers.get("x-api-key", "")
    if not key:
        return anthropic_wire.error_response(401, "x-api-key header is required")
    if request.headers.get("anthropic-version") not in anthropic_wire.VERSIONS:
        return anthropic_wire.error_response(400, "anthropic-version: unknown or missing")
    if not isinstance(body.get("messages"), list) or not isinstance(body.get("model"), str):
        return anthropic_wire.error_response(400, "model and messages: Field required")
    return web.json_response({"input_tokens": counted(body)})
