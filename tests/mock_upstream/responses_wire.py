"""``POST /v1/responses`` for the mock provider: OpenAI's Responses API wire format, and Azure
OpenAI's ``/openai/responses`` (``api-key`` header and ``api-version`` query required, the
deployment named by the body's model).

The same model-name conventions as the chat mock (``openai_server.py``):

    <anything>            a ``message`` item quoting the last user text (streamed in 3-char
                          deltas); JSON (``{"reply": ...}``) when text.format asks for JSON
    tools                 a ``function_call`` item calling the first tool, arguments streamed
                          in 5-char deltas
    priced                a plain reply with fixed usage (PRICED_USAGE: cached and reasoning
                          tokens), which the accounting tests price by hand
    error-<status>        that HTTP status with an OpenAI error body
    cut-<n>               streams n text deltas, then drops the connection

Requests are recorded with their path and query, like every other route of the mock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

PRICED_USAGE = {
    "input_tokens": 1500,
    "input_tokens_details": {"cached_tokens": 1000},
    "output_tokens": 400,
    "output_tokens_details": {"reasoning_tokens": 120},
    "total_tokens": 1900,
}
TOOL_ARGUMENTS = json.dumps({"location": "Paris, France", "unit": "celsius"})
Refusal = Callable[[web.Request], web.Response | None]
ErrorResponse = Callable[[int], web.Response]


def add_routes(
    app: web.Application,
    received: list[dict[str, Any]],
    azure_refusal: Refusal,
    error_response: ErrorResponse,
) -> None:
    async def plain(request: web.Request) -> web.StreamResponse:
        return await responses(request, received, error_response)

    async def azure(request: web.Request) -> web.StreamResponse:
        return azure_refusal(request) or await responses(request, received, error_response)

    app.router.add_post("/v1/responses", plain)
    app.router.add_post("/openai/responses", azure)


def last_user_text(body: dict[str, Any]) -> str:
    value = body.get("input")
    if isinstance(value, str):
        return value
    for item in reversed(value or []):
        if item.get("role") == "user":
            content = item["content"]
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content if p.get("type") == "input_text")
    return ""


def reply_text(body: dict[str, Any]) -> str:
    text = f"Mock reply to: {last_user_text(body)}"
    spec = (body.get("text") or {}).get("format") or {}
    return (
        json.dumps({"reply": text}) if spec.get("type") in ("json_schema", "json_object") else text
    )


def usage(body: dict[str, Any], text: str) -> dict[str, Any]:
    if body["model"] == "priced":
        return PRICED_USAGE
    prompt = max(1, len(json.dumps(body.get("input"))) // 4)
    output = max(1, len(text) // 4)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }


def output_item(body: dict[str, Any]) -> dict[str, Any]:
    if body["model"] == "tools":
        name = body["tools"][0]["name"]
        return {
            "id": "fc_mock1",
            "type": "function_call",
            "status": "completed",
            "arguments": TOOL_ARGUMENTS,
            "call_id": "call_mock_1",
            "name": name,
        }
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": reply_text(body)}
    return {
        "id": "msg_mock1",
        "type": "message",
        "status": "completed",
        "content": [part],
        "role": "assistant",
    }


def response(body: dict[str, Any], status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    done = status == "completed"
    text = json.dumps(output)
    return {
        "id": "resp_mock1",
        "object": "response",
        "created_at": 1758064478,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": body.get("store", True),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "usage": usage(body, text) if done else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def sse(kind: str, sequence: int, fields: dict[str, Any]) -> bytes:
    data = {"type": kind, "sequence_number": sequence, **fields}
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def item_events(item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    at = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        args = item["arguments"]
        added = {**item, "status": "in_progress", "arguments": ""}
        deltas = [{**at, "delta": args[i : i + 5]} for i in range(0, len(args), 5)]
        return [
            ("response.output_item.added", {"output_index": 0, "item": added}),
            *(("response.function_call_arguments.delta", d) for d in deltas),
            ("response.function_call_arguments.done", {**at, "arguments": args}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
        ]
    part = item["content"][0]
    text, at = part["text"], {**at, "content_index": 0}
    deltas = [{**at, "delta": text[i : i + 3], "logprobs": []} for i in range(0, len(text), 3)]
    return [
        ("response.output_item.added", {"output_index": 0, "item": {**item, "content": []}}),
        ("response.content_part.added", {**at, "part": {**part, "text": ""}}),
        *(("response.output_text.delta", d) for d in deltas),
        ("response.output_text.done", {**at, "text": text, "logprobs": []}),
        ("response.content_part.done", {**at, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
    ]


def stream_events(body: dict[str, Any]) -> list[bytes]:
    item = output_item(body)
    opening = response(body, "in_progress", [])
    events = [
        ("response.created", {"response": opening}),
        ("response.in_progress", {"response": opening}),
        *item_events(item),
        ("response.completed", {"response": response(body, "completed", [item])}),
    ]
    return [sse(kind, n, fields) for n, (kind, fields) in enumerate(events)]


async def responses(
    request: web.Request, received: list[dict[str, Any]], error_response: ErrorResponse
) -> web.StreamResponse:
    body = json.loads(await request.read())
    record = {"headers": dict(request.headers), "body": body, "path": request.path}
    received.append({**record, "query": dict(request.query)})
    model = str(body.get("model", ""))
    if model.startswith("error-"):
        return error_response(int(model.removeprefix("error-")))
    if not body.get("stream"):
        return web.json_response(response(body, "completed", [output_item(body)]))
    reply = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await reply.prepare(request)
    events = stream_events(body)
    if model.startswith("cut-"):
        for event in events[: 4 + int(model.removeprefix("cut-"))]:
            await reply.write(event)
        assert request.transport is not None
        request.transport.abort()  # the connection drops mid-stream, no response.completed
        return reply
    for event in events:
        await reply.write(event)
    await reply.write_eof()
    return reply
