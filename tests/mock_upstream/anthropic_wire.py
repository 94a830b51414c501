"""``POST /v1/messages`` for the mock provider: Anthropic's Messages API wire format.

The same model-name conventions as the OpenAI mock (``openai_server.py``):

    <anything>            a reply quoting the last user message (streamed in 3-char pieces)
    tools                 a call of the first tool (or of the tool ``tool_choice`` names),
                          its input split across input_json_delta events
    parallel-tools        a short text, then a call of each of the first two tools
    cached                a plain reply whose usage reads and writes the prompt cache
    priced                a plain reply with fixed usage (PRICED_USAGE: input, cache read,
                          cache write, output), which the accounting tests price by hand
    error-<status>        that HTTP status with an Anthropic error body (429 adds retry-after,
                          529 is overloaded_error)
    slow-<ms>             waits <ms> before answering
    cut-<n>               streams n text deltas, then drops the connection
    end-<n>               streams n text deltas, then ends the response cleanly: no
                          content_block_stop, message_delta or message_stop
    fail-<n>              streams n text deltas, then an ``error`` event (overloaded)
    drip-<ms>             streams message_start and ping, then every later event in two
                          halves <ms> apart (the gateway sees events torn across reads)

Besides, like Claude: a forced tool (``tool_choice`` of type tool or any) is called whatever
the model; stop_sequences cut the reply (stop_reason stop_sequence); a max_tokens below the
reply's token count cuts it (stop_reason max_tokens). Like the real API, it answers 401
without ``x-api-key`` (or ``Authorization: Bearer``), 400 without a known
``anthropic-version``, and 400 for a body the real API refuses: no max_tokens, roles that do
not alternate, tool results not answering the previous turn's tool calls, blank text blocks.
Requests are recorded in the list ``add_routes`` is given (the one of the whole process).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

VERSIONS = ("2023-06-01", "2026-10-21")
# Sampling parameters the 2026-10-21 version no longer accepts.
REMOVED_IN_2026 = ("temperature", "top_p", "top_k")
TOOL_INPUT = {"location": "Paris, France", "unit": "celsius"}
# input_tokens is the uncached part of the prompt, as Anthropic counts it.
PRICED_USAGE = {
    "input_tokens": 300,
    "cache_creation_input_tokens": 500,
    "cache_read_input_tokens": 2000,
    "output_tokens": 250,
    "service_tier": "standard",
}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def add_routes(app: web.Application, received: list[dict[str, Any]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await messages(request, received)

    app.router.add_post("/v1/messages", handler)


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_m"}


def error_response(status: int, message: str | None = None) -> web.Response:
    headers = {"retry-after": "7", "x-should-retry": "true"} if status == 429 else {}
    body = error_body(status, message or f"mock upstream error {status}")
    return web.json_response(body, status=status, headers=headers)


# --- checks the real API makes ----------------------------------------------------------------


def refusal(request: web.Request, body: Any) -> web.Response | None:
    key = request.headers.get("x-api-key") or request.headers.get("authorization", "")
    if not key.removeprefix("Bearer ").strip():
        return error_response(401, "x-api-key header is required")
    version = request.headers.get("anthropic-version")
    if version not in VERSIONS:
        return error_response(400, f"anthropic-version: unknown or missing ({version})")
    problem = body_problem(body, version)
    return None if problem is None else error_response(400, problem)


def body_problem(body: Any, version: str) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if version == "2026-10-21":
        for name in REMOVED_IN_2026:
            if name in body:
                return f"{name}: Extra inputs are not permitted"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    return turns_problem(messages)


def turns_problem(messages: list[Any]) -> str | None:
    previous: dict[str, Any] | None = None
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if previous is not None and previous["role"] == role:
            return f"messages.{index}: roles must alternate between user and assistant"
        problem = blocks_problem(message, previous, index)
        if problem is not None:
            return problem
        previous = message
    return None


def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def blocks_problem(message: dict[str, Any], previous: Any, index: int) -> str | None:
    called = {b["id"] for b in blocks(previous) if b["type"] == "tool_use"} if previous else set()
    for block in blocks(message):
        if block["type"] == "text" and not block["text"].strip():
            return f"messages.{index}: text content blocks must contain non-whitespace text"
        if block["type"] == "tool_result" and block.get("tool_use_id") not in called:
            return (
                f"messages.{index}: unexpected tool_use_id found in tool_result blocks: "
                f"{block.get('tool_use_id')}"
            )
    return None


# --- answers -----------------------------------------------------------------------------------


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            texts = [b["text"] for b in blocks(message) if b["type"] == "text"]
            if texts:
                return " ".join(texts)
    return ""


def forced_tool(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        return str(choice["name"])
    if tools and (choice.get("type") == "any" or body["model"] == "tools"):
        return str(tools[0]["name"])
    return None


def plan(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
    """The content blocks of the answer, its stop_reason and stop_sequence."""
    model = body["model"]
    tool = forced_tool(body)
    if tool is not None:
        return [tool_use(tool, 1)], "tool_use", None
    if model == "parallel-tools":
        names = [tool["name"] for tool in body["tools"][:2]]
        calls = [tool_use(name, i + 1) for i, name in enumerate(names)]
        return [{"type": "text", "text": "Checking both."}, *calls], "tool_use", None
    text = f"Mock reply to: {last_user_text(body)}"
    for stop in body.get("stop_sequences") or []:
        if stop in text:
            return [{"type": "text", "text": text[: text.index(stop)]}], "stop_sequence", stop
    if body["max_tokens"] < len(text) // 4:
        return [{"type": "text", "text": text[: body["max_tokens"] * 4]}], "max_tokens", None
    return [{"type": "text", "text": text}], "end_turn", None


def tool_use(name: str, number: int) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_mock_{number}", "name": name, "input": TOOL_INPUT}


def usage(body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = (
        sum(len(json.dumps(m)) // 4 for m in body["messages"])
        + len(json.dumps(body.get("system", ""))) // 4
    )
    if body["model"] == "priced":
        return dict(PRICED_USAGE)
    output = max(1, len(json.dumps(content)) // 4)
    cache_read, cache_write = (40, 20) if body["model"] == "cached" else (0, 0)
    return {
        "input_tokens": prompt,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output,
        "service_tier": "standard",
    }


def message(body: dict[str, Any]) -> dict[str, Any]:
    content, stop_reason, stop_sequence = plan(body)
    return {
        "id": "msg_mock123",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage(body, content),
    }


# --- stream ------------------------------------------------------------------------------------


def sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def stream_events(body: dict[str, Any]) -> list[bytes]:
    whole = message(body)
    start = {**whole, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**whole["usage"], "output_tokens": 1}
    events = [sse({"type": "message_start", "message": start}), sse({"type": "ping"})]
    for index, block in enumerate(whole["content"]):
        events.extend(block_events(index, block))
    delta = {"stop_reason": whole["stop_reason"], "stop_sequence": whole["stop_sequence"]}
    final_usage = {"output_tokens": whole["usage"]["output_tokens"]}
    events.append(sse({"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(sse({"type": "message_stop"}))
    return events


def block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    if block["type"] == "text":
        opening = {"type": "text", "text": ""}
        pieces = [block["text"][i : i + 3] for i in range(0, len(block["text"]), 3)]
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
    else:
        opening = {**block, "input": {}}
        arguments = json.dumps(block["input"])
        pieces = [""] + [arguments[i : i + 5] for i in range(0, len(arguments), 5)]
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
    events = [sse({"type": "content_block_start", "index": index, "content_block": opening})]
    events.extend(
        sse({"type": "content_block_delta", "index": index, "delta": delta}) for delta in deltas
    )
    events.append(sse({"type": "content_block_stop", "index": index}))
    return events


async def messages(request: web.Request, received: list[dict[str, Any]]) -> web.StreamResponse:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return error_response(400, "the body is not valid JSON")
    received.append({"headers": dict(request.headers), "body": body, "path": request.path})
    refused = refusal(request, body)
    if refused is not None:
        return refused
    model = body["model"]
    if model.startswith("error-"):
        return error_response(int(model.removeprefix("error-")))
    if model.startswith("slow-"):
        await asyncio.sleep(int(model.removeprefix("slow-")) / 1000)
    if not body.get("stream"):
        return web.json_response(message(body), headers={"request-id": "req_mock"})
    return await stream(request, body)


async def stream(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    events = stream_events(body)
    model = body["model"]
    for prefix in ("cut-", "fail-", "end-"):
        if model.startswith(prefix):
            keep = int(model.removeprefix(prefix))
            events = events[: 4 + keep]  # message_start, ping, content_block_start, deltas
    if model.startswith("drip-"):
        return await drip(response, events, int(model.removeprefix("drip-")) / 1000)
    for event in events:
        await response.write(event)
    if model.startswith("cut-"):
        assert request.transport is not None
        request.transport.abort()  # the connection drops mid-stream, no message_stop
        return response
    if model.startswith("fail-"):
        await response.write(sse(error_body(529, "Overloaded")))
    await response.write_eof()
    return response


async def drip(
    response: web.StreamResponse, events: list[bytes], pause: float
) -> web.StreamResponse:
    await response.write(b"".join(events[:2]))  # message_start, ping
    for event in events[2:]:
        half = len(event) // 2
        await response.write(event[:half])
        await asyncio.sleep(pause)
        await response.write(event[half:])
    await response.write_eof()
    return response
