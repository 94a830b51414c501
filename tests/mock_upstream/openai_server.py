"""A mock OpenAI-compatible provider on loopback, speaking the real wire format.

The requested model picks the behaviour, so tests drive it through the gateway unchanged:

    <anything>            a reply quoting the last user message (streamed in 3-char pieces);
                          JSON (``{"reply": ...}``) when response_format asks for JSON
    tools                 a call of the first tool, arguments split across stream chunks
    numbered<anything>    a reply that also names the call's number, so no two are alike
    ...guard...           a Llama Guard safety model (llamaguard_wire.py)
    priced                a plain reply with fixed usage (PRICED_USAGE: cached and reasoning
                          tokens), which the accounting tests price by hand
    error-<status>        that HTTP status with an OpenAI error body (429 adds retry-after)
    slow-<ms>             waits <ms> before answering
    cut-<n>               streams n content chunks, then drops the connection
    end-<n>               streams n content chunks, then ends the response cleanly: no
                          finish reason, no [DONE]
    drip-<ms>             streams up to 200 chunks, one every <ms>; notes a client that left
    big-<MB>              streams <MB> MiB of content in 16 KiB chunks as fast as it is read;
                          notes the bytes written so far (``bytes_sent``), their sha256 once
                          done, and a client that left
    fail-<n>-<fault>      fails the first n requests per prompt, then answers (faults.py)

Every request received is kept; ``GET /_requests`` returns them (headers and body) and
``DELETE /_requests`` forgets them. Run: ``python openai_server.py --port N``. The same
process speaks Anthropic (anthropic_wire.py, count_tokens_wire.py), Gemini (gemini_wire.py),
Azure OpenAI and embeddings (openai_family_wire.py) and the Responses API (responses_wire.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic_wire  # run as a script, so this folder is on sys.path
import count_tokens_wire
import faults
import gemini_wire
import llamaguard_wire
import openai_family_wire
import responses_wire
from aiohttp import web

RECEIVED: list[dict[str, Any]] = []
PRICED_USAGE = {
    "prompt_tokens": 1500,
    "completion_tokens": 400,
    "total_tokens": 1900,
    "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 120, "audio_tokens": 0},
}

ERROR_TYPES = {
    400: ("invalid_request_error", "context_length_exceeded"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def reply_text(body: dict[str, Any]) -> str:
    text = quote_last_user(body)
    if str(body.get("model", "")).startswith("numbered"):  # each call answers differently
        text += f" (call {len(RECEIVED)})"
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        return json.dumps({"reply": text})
    return text


def quote_last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return f"Mock reply to: {content}"
    return "Mock reply."


def usage_for(body: dict[str, Any], text: str) -> dict[str, Any]:
    if body["model"] == "priced":
        return PRICED_USAGE
    prompt = sum(len(json.dumps(m)) // 4 for m in body.get("messages", []))
    completion = max(1, len(text) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def tool_call(body: dict[str, Any]) -> tuple[str, str]:
    name = body["tools"][0]["function"]["name"]
    return name, json.dumps({"location": "Paris, France", "unit": "celsius"})


def completion(body: dict[str, Any]) -> dict[str, Any]:
    model = body["model"]
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if model == "tools":
        name, arguments = tool_call(body)
        message["tool_calls"] = [
            {
                "id": "call_mock_1",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        ]
        finish, text = "tool_calls", arguments
    else:
        text = reply_text(body)
        message["content"] = text
        finish = "stop"
    return {
        "id": "chatcmpl-mock123",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_for(body, text),
        "system_fingerprint": "fp_mock",
    }


def chunk(
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "id": "chatcmpl-mock123",
        "object": "chat.completion.chunk",
        "created": 1727346168,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": []
        if usage
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        doc["usage"] = usage
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def stream_events(body: dict[str, Any]) -> list[bytes]:
    model = body["model"]
    events = [chunk(model, {"role": "assistant", "content": "", "refusal": None})]
    if model == "tools":
        name, arguments = tool_call(body)
        events.append(
            chunk(
                model,
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_mock_1",
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                },
            )
        )
        for i in range(0, len(arguments), 5):
            events.append(
                chunk(
                    model,
                    {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 5]}}]},
                )
            )
        finish, text = "tool_calls", arguments
    else:
        text = reply_text(body)
        events.extend(chunk(model, {"content": text[i : i + 3]}) for i in range(0, len(text), 3))
        finish = "stop"
    events.append(chunk(model, {}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(chunk(model, {}, usage=usage_for(body, text)))
    events.append(b"data: [DONE]\n\n")
    return events


def error_response(status: int) -> web.Response:
    kind, code = ERROR_TYPES.get(status, ("server_error", None))
    body = {
        "error": {
            "message": f"mock upstream error {status}",
            "type": kind,
            "param": None,
            "code": code,
        }
    }
    headers = {"retry-after": "7"} if status == 429 else {}
    return web.json_response(body, status=status, headers=headers)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    body = json.loads(raw)
    RECEIVED.append(
        {
            "headers": dict(request.headers),
            "body": body,
            "at": time.time(),
            "path": request.path,
            "query": dict(request.query),
        }
    )
    model = str(body.get("model", ""))
    fault = await faults.inject(request, body, error_response)
    if fault is not None:
        return fault
    if model.startswith("error-"):
        return error_response(int(model.removeprefix("error-")))
    if llamaguard_wire.is_guard(model):
        return await llamaguard_wire.answer(body, error_response)
    if model.startswith("bulky-"):  # a whole answer padded to about that many bytes
        padded = completion(body)
        padded["padding"] = "x" * int(model.removeprefix("bulky-"))
        return web.json_response(padded)
    if model.startswith("slow-"):
        await asyncio.sleep(int(model.removeprefix("slow-")) / 1000)
    if not body.get("stream"):
        return web.json_response(completion(body))
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    if model.startswith("big-"):
        return await big(response, body, float(model.removeprefix("big-")))
    events = stream_events(body)
    if model.startswith("drip-"):
        return await drip(request, response, body, int(model.removeprefix("drip-")) / 1000)
    if model.startswith("cut-"):
        keep = int(model.removeprefix("cut-"))
        for event in events[: keep + 1]:
            await response.write(event)
        assert request.transport is not None
        request.transport.abort()  # the connection drops mid-stream, no [DONE]
        return response
    if model.startswith("end-"):
        events = events[: int(model.removeprefix("end-")) + 1]  # a clean end, half-way
    for event in events:
        await response.write(event)
    await response.write_eof()
    return response


async def drip(
    request: web.Request, response: web.StreamResponse, body: dict[str, Any], pause: float
) -> web.StreamResponse:
    record = RECEIVED[-1]
    record["chunks_sent"] = 0
    try:
        for i in range(200):
            await response.write(chunk(body["model"], {"content": f"drop{i} "}))
            record["chunks_sent"] = i + 1
            await asyncio.sleep(pause)
        await response.write(b"data: [DONE]\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        record["client_gone"] = True  # the gateway closed the upstream connection
        raise
    return response


async def big(
    response: web.StreamResponse, body: dict[str, Any], megabytes: float
) -> web.StreamResponse:
    """A stream far larger than any answer, written as fast as the gateway reads it (each
    write waits while the connection's buffer is full), so a test sees the writes stop."""
    record = RECEIVED[-1]
    record["bytes_sent"] = 0
    model, digest, total = body["model"], hashlib.sha256(), int(megabytes * 1024 * 1024)
    events = _big_events(model, body, total)
    try:
        for event in events:
            await response.write(event)
            digest.update(event)
            record["bytes_sent"] += len(event)
        record["sha256"] = digest.hexdigest()
    except (ConnectionError, asyncio.CancelledError):
        record["client_gone"] = True
        raise
    return response


def _big_events(model: str, body: dict[str, Any], total: int) -> Iterator[bytes]:
    yield chunk(model, {"role": "assistant", "content": ""})
    sent, i = 0, 0
    while sent < total:
        event = chunk(model, {"content": f"<{i:07d}>" + "x" * (16 * 1024 - 9)})
        yield event
        sent, i = sent + len(event), i + 1
    yield chunk(model, {}, "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield chunk(
            model, {}, usage={"prompt_tokens": 7, "completion_tokens": i, "total_tokens": 7 + i}
        )
    yield b"data: [DONE]\n\n"


async def received(request: web.Request) -> web.Response:
    if request.method == "DELETE":
        RECEIVED.clear()
        return web.json_response([])
    return web.json_response(RECEIVED)


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_route("*", "/_requests", received)
    anthropic_wire.add_routes(app, RECEIVED)
    gemini_wire.add_routes(app, RECEIVED)
    openai_family_wire.add_routes(app, RECEIVED, chat_completions)
    responses_wire.add_routes(app, RECEIVED, openai_family_wire.azure_refusal, error_response)
    count_tokens_wire.add_routes(app, RECEIVED)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # Stopping does not wait for handlers still sleeping on purpose (slow-, fail-n-hang).
    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        shutdown_timeout=1.0,
    )


if __name__ == "__main__":
    main()
