"""More of the OpenAI wire format for the mock provider: ``POST /v1/embeddings`` and Azure
OpenAI's deployment paths.

Azure: ``/openai/deployments/{deployment}/chat/completions`` and ``.../embeddings``, each
answering 401 without the ``api-key`` header (Azure's own header, not ``Authorization``) and
404 without the ``api-version`` query parameter, as Azure does; otherwise the same answers,
behaviour chosen by the body's model, as on the OpenAI paths.

Embeddings: deterministic vectors from a hash of each input (8 dimensions unless
``dimensions`` says otherwise), base64 when ``encoding_format`` asks for it, usage counting
one token per word; ``error-<status>`` as for chat, ``slow-<ms>`` waits before answering.
Requests are recorded in the list ``add_routes`` is given, with their path and query.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, received: list[dict[str, Any]], chat: Handler) -> None:
    async def embeddings_route(request: web.Request) -> web.Response:
        return await embeddings(request, received)

    async def azure_chat(request: web.Request) -> web.StreamResponse:
        return azure_refusal(request) or await chat(request)

    async def azure_embeddings(request: web.Request) -> web.Response:
        return azure_refusal(request) or await embeddings(request, received)

    app.router.add_post("/v1/embeddings", embeddings_route)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", azure_chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", azure_embeddings)


def error(status: int, message: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None}}
    body["error"]["code"] = code
    headers = {"retry-after": "7"} if status == 429 else {}
    return web.json_response(body, status=status, headers=headers)


def azure_refusal(request: web.Request) -> web.Response | None:
    if not request.headers.get("api-key"):
        return error(401, "Access denied due to missing subscription key.", "401")
    if not request.query.get("api-version"):
        return error(404, "Resource not found", "404")
    return None


def vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest() * (dimensions // 32 + 1)
    return [round(byte / 255 - 0.5, 6) for byte in digest[:dimensions]]


def encoded(values: list[float], encoding_format: str | None) -> list[float] | str:
    if encoding_format != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


async def embeddings(request: web.Request, received: list[dict[str, Any]]) -> web.Response:
    body = await request.json()
    received.append(
        {
            "headers": dict(request.headers),
            "body": body,
            "path": request.path,
            "query": dict(request.query),
        }
    )
    model = str(body.get("model", ""))
    if model.startswith("error-"):
        status = int(model.removeprefix("error-"))
        return error(status, f"mock upstream error {status}")
    if model.startswith("slow-"):  # waits <ms> before answering
        await asyncio.sleep(int(model.removeprefix("slow-")) / 1000)
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dimensions = int(body.get("dimensions") or 8)
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": encoded(vector(str(item), dimensions), body.get("encoding_format")),
        }
        for index, item in enumerate(inputs)
    ]
    tokens = sum(len(str(item).split()) for item in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})
