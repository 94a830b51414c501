"""Gemini's API for the mock provider: ``POST /v1beta/models/{model}:{method}`` with
generateContent, streamGenerateContent (``?alt=sse``), embedContent and batchEmbedContents.

The same model-name conventions as the OpenAI mock (``openai_server.py``):

    <anything>            a reply quoting the last user message (streamed in 8-char pieces);
                          JSON (``{"reply": ...}``) when responseMimeType is application/json
    tools                 a call of the first declared function (or the one toolConfig
                          allows), with a thoughtSignature, as Gemini 2.5 sends
    parallel-tools        a short text, then a call of each of the first two functions
    cached                a plain reply whose usage has cached content and thinking tokens
    priced                a plain reply with fixed usage (PRICED_USAGE: cached content and
                          thinking tokens), which the accounting tests price by hand
    blocked               no candidate: the prompt was blocked (promptFeedback.blockReason)
    safety                a candidate stopped by SAFETY, without content
    error-<status>        that HTTP status with a Gemini error body (429 carries RetryInfo
                          retryDelay 7s and no retry-after header, as Gemini does)
    slow-<ms>             waits <ms> before answering
    cut-<n>               streams n chunks, then drops the connection
    end-<n>               streams n chunks, then ends the response cleanly, no finishReason
    fail-<n>              streams n chunks, then an ``{"error": ...}`` event
    bare-<n>              streams n chunks, then a bare ``{"error": ...}`` line (no ``data:``)

Like the real API it answers 403 without ``x-goog-api-key``, 400 API_KEY_INVALID for a key
starting with ``bad``, and 400 INVALID_ARGUMENT for a body it would refuse: unknown fields,
roles other than user/model, turns without parts, a function-response turn whose count of
responses differs from the calls of the turn before, both ``parameters`` and
``parametersJsonSchema`` on one declaration. Requests are recorded, with their path and
query, in the list ``add_routes`` is given (the one of the whole process).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiohttp import web

TOOL_ARGS = {"location": "Paris, France", "unit": "celsius"}
SIGNATURE = "c2lnbmF0dXJlLW9mLXRoZS10aG91Z2h0"
# promptTokenCount includes the cached tokens; thoughts are not in candidatesTokenCount.
PRICED_USAGE = {
    "promptTokenCount": 1800,
    "cachedContentTokenCount": 1200,
    "candidatesTokenCount": 300,
    "thoughtsTokenCount": 200,
    "totalTokenCount": 2300,
}
TOP_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
}
CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "responseLogprobs",
    "logprobs",
}
PART_FIELDS = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "thought",
    "thoughtSignature",
}
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    529: "UNAVAILABLE",
}


def add_routes(app: web.Application, received: list[dict[str, Any]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await models_call(request, received)

    app.router.add_post("/v1beta/models/{target}", handler)


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Any:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUSES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, message: str | None = None) -> web.Response:
    details = None
    if status == 429:
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    body = error_body(status, message or f"mock upstream error {status}", details)
    return web.json_response(body, status=status)


def invalid(message: str) -> web.Response:
    return web.json_response(error_body(400, message), status=400)


# --- checks the real API makes ----------------------------------------------------------------


def key_refusal(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-goog-api-key", "")
    if not key:
        return web.json_response(
            error_body(403, "Method doesn't allow unregistered callers"), status=403
        )
    if key.startswith("bad"):
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ]
        body = error_body(400, "API key not valid. Please pass a valid API key.", details)
        return web.json_response(body, status=400)
    return None


def body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = set(body) - TOP_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}"
    config = body.get("generationConfig") or {}
    unknown = set(config) - CONFIG_FIELDS
    if unknown:
        return f"Unknown name {sorted(unknown)[0]!r} at 'generation_config'"
    if len(config.get("stopSequences") or []) > 5:
        return "stopSequences: at most 5"
    return contents_problem(body.get("contents")) or tools_problem(body.get("tools") or [])


def contents_problem(contents: Any) -> str | None:
    if not isinstance(contents, list) or not contents:
        return "contents is not specified"
    calls_before = 0
    for index, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"contents[{index}].role must be user or model"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"contents[{index}].parts must not be empty"
        for part in parts:
            if set(part) - PART_FIELDS:
                return f"Unknown name {sorted(set(part) - PART_FIELDS)[0]!r} in a part"
            response = part.get("functionResponse")
            if response is not None and not isinstance(response.get("response"), dict):
                return "functionResponse.response must be an object"
        responses = sum("functionResponse" in part for part in parts)
        if responses and responses != calls_before:
            return (
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )
        calls_before = sum("functionCall" in part for part in parts)
    return None


def tools_problem(tools: list[Any]) -> str | None:
    for tool in tools:
        for declaration in tool.get("functionDeclarations", []):
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return "parameters and parametersJsonSchema are mutually exclusive"
            if not declaration.get("name"):
                return "function declarations need a name"
    return None


# --- answers -----------------------------------------------------------------------------------


def last_user_text(body: dict[str, Any]) -> str:
    for content in reversed(body["contents"]):
        if content["role"] == "user":
            texts = [part["text"] for part in content["parts"] if "text" in part]
            if texts:
                return " ".join(texts)
    return ""


def declared(body: dict[str, Any]) -> list[str]:
    names = [d["name"] for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    allowed = calling.get("allowedFunctionNames")
    return [name for name in names if name in allowed] if allowed else names


def reply_text(body: dict[str, Any]) -> str:
    text = f"Mock reply to: {last_user_text(body)}"
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        return json.dumps({"reply": text})
    return text


def answer_parts(body: dict[str, Any], model: str) -> tuple[list[dict[str, Any]], str]:
    """The parts of candidate 0 and its finishReason."""
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    names = declared(body)
    if names and (model == "tools" or mode == "ANY"):
        return [call_part(names[0], signed=True)], "STOP"
    if model == "parallel-tools":
        return [{"text": "Checking both."}, *(call_part(n) for n in names[:2])], "STOP"
    if model == "safety":
        return [], "SAFETY"
    text = reply_text(body)
    limit = (body.get("generationConfig") or {}).get("maxOutputTokens")
    if limit is not None and limit < len(text) // 4:
        return [{"text": text[: limit * 4]}], "MAX_TOKENS"
    return [{"text": text}], "STOP"


def call_part(name: str, signed: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {"functionCall": {"name": name, "args": TOOL_ARGS}}
    if signed:
        part["thoughtSignature"] = SIGNATURE
    return part


def usage(body: dict[str, Any], model: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    if model == "priced":
        return dict(PRICED_USAGE)
    prompt = sum(len(json.dumps(c)) // 4 for c in body["contents"])
    prompt += len(json.dumps(body.get("systemInstruction", ""))) // 4
    output = max(1, len(json.dumps(parts)) // 4)
    meta = {"promptTokenCount": prompt, "candidatesTokenCount": output}
    thoughts = 0
    if model == "cached":
        meta["promptTokenCount"] = prompt = max(prompt, 60)
        meta["cachedContentTokenCount"] = 40
        meta["thoughtsTokenCount"] = thoughts = 12
    meta["totalTokenCount"] = prompt + output + thoughts
    return meta


def candidate(index: int, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"index": index}
    if parts:
        found["content"] = {"parts": parts, "role": "model"}
    if finish is not None:
        found["finishReason"] = finish
    return found


def generate(body: dict[str, Any], model: str) -> dict[str, Any]:
    if model == "blocked":
        return {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": model,
        }
    parts, finish = answer_parts(body, model)
    count = (body.get("generationConfig") or {}).get("candidateCount") or 1
    return {
        "candidates": [candidate(i, parts, finish) for i in range(count)],
        "usageMetadata": usage(body, model, parts),
        "modelVersion": model,
        "responseId": "mock-response-1",
    }


# --- stream ------------------------------------------------------------------------------------


def sse(data: Any) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def stream_chunks(body: dict[str, Any], model: str) -> list[dict[str, Any]]:
    whole = generate(body, model)
    if "candidates" not in whole:
        return [whole]
    parts = whole["candidates"][0].get("content", {}).get("parts", [])
    finish = whole["candidates"][0]["finishReason"]
    pieces: list[list[dict[str, Any]]] = []
    for part in parts:
        text = part.get("text")
        if text is not None:
            pieces.extend([{"text": text[i : i + 8]}] for i in range(0, len(text), 8))
        else:
            pieces.append([part])
    pieces = pieces or [[]]
    meta = whole["usageMetadata"]
    running = {"promptTokenCount": meta["promptTokenCount"]}
    chunks = []
    for number, piece in enumerate(pieces):
        last = number == len(pieces) - 1
        chunks.append(
            {
                "candidates": [candidate(0, piece, finish if last else None)],
                "usageMetadata": meta if last else running,
                "modelVersion": model,
                "responseId": "mock-response-1",
            }
        )
    return chunks


# --- embeddings --------------------------------------------------------------------------------


def vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest() * (dimensions // 32 + 1)
    return [round(byte / 255 - 0.5, 6) for byte in digest[:dimensions]]


def embed_one(request: dict[str, Any]) -> dict[str, Any]:
    text = " ".join(part.get("text", "") for part in request["content"]["parts"])
    return {"values": vector(text, int(request.get("outputDimensionality") or 8))}


def embeddings(model: str, method: str, body: dict[str, Any]) -> web.Response:
    if method == "embedContent":
        return web.json_response({"embedding": embed_one(body)})
    for request in body["requests"]:
        if request.get("model") != f"models/{model}":
            return invalid(f"requests[].model must be models/{model}")
    return web.json_response({"embeddings": [embed_one(r) for r in body["requests"]]})


# --- the route ---------------------------------------------------------------------------------


async def models_call(request: web.Request, received: list[dict[str, Any]]) -> web.StreamResponse:
    model, _, method = request.match_info["target"].partition(":")
    try:
        body = json.loads(await request.read())
    except ValueError:
        return invalid("Invalid JSON payload received.")
    received.append(
        {
            "headers": dict(request.headers),
            "body": body,
            "path": request.path,
            "query": dict(request.query),
        }
    )
    refused = key_refusal(request)
    if refused is not None:
        return refused
    if model.startswith("error-"):
        return error_response(int(model.removeprefix("error-")))
    if model.startswith("slow-"):
        await asyncio.sleep(int(model.removeprefix("slow-")) / 1000)
    if method in ("embedContent", "batchEmbedContents"):
        return embeddings(model, method, body)
    problem = body_problem(body)
    if problem is not None:
        return invalid(problem)
    if method == "generateContent":
        return web.json_response(generate(body, model))
    if method == "streamGenerateContent" and request.query.get("alt") == "sse":
        return await stream(request, body, model)
    return web.json_response(error_body(404, f"no method {method}"), status=404)


async def stream(request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    chunks = stream_chunks(body, model)
    prefix, _, count = model.partition("-")
    broken = prefix in ("cut", "fail", "bare", "end") and count.isdigit()
    if broken:
        chunks = chunks[: int(count)]
    for chunk in chunks:
        await response.write(sse(chunk))
    if broken and prefix == "cut":
        assert request.transport is not None
        request.transport.abort()  # the connection drops mid-stream
        return response
    if broken and prefix == "fail":
        await response.write(sse(error_body(503, "The model is overloaded.")))
    if broken and prefix == "bare":
        await response.write(json.dumps(error_body(500, "Internal error")).encode() + b"\n")
    await response.write_eof()
    return response
