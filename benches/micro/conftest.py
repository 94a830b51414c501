"""Bodies and streams the micro benches run on: small, 20 messages, and about 200 KB."""

from __future__ import annotations

import json

import pytest

SIZES = ("small", "20msg", "200kb")


def chat_body(size: str) -> bytes:
    if size == "small":
        messages = [{"role": "user", "content": "What is the capital of France?"}]
    elif size == "20msg":
        messages = [{"role": "system", "content": "You are a helpful assistant."}]
        for i in range(19):
            role = "user" if i % 2 == 0 else "assistant"
            messages.append({"role": role, "content": f"Turn {i}: " + "lorem ipsum dolor " * 12})
    else:
        paragraph = "The quick brown fox jumps over the lazy dog. " * 40
        messages = [{"role": "system", "content": "Summarise the documents."}]
        for i in range(110):
            messages.append(
                {
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": f"Document {i}. {paragraph}",
                }
            )
    body = {
        "model": "gpt-4o-mini",
        "messages": messages,
        "temperature": 0.7,
        "top_p": 1.0,
        "max_tokens": 512,
        "stream": False,
        "user": "user-42",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
    }
    return json.dumps(body).encode()


def chat_stream(size: str) -> bytes:
    words = {"small": 20, "20msg": 200, "200kb": 2000}[size]
    events = []
    head = (
        '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,'
        '"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,'
    )
    events.append(head + '"delta":{"role":"assistant","content":""},"finish_reason":null}]}')
    for i in range(words):
        events.append(head + f'"delta":{{"content":"word{i} "}},"finish_reason":null}}]}}')
    events.append(head + '"delta":{},"finish_reason":"stop"}]}')
    events.append(
        '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,'
        '"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,'
        f'"completion_tokens":{words},"total_tokens":{words + 12}}}}}'
    )
    events.append("[DONE]")
    return "".join(f"data: {e}\n\n" for e in events).encode()


def network_pieces(stream: bytes, size: int = 1400) -> list[bytes]:
    """The stream cut as a TCP connection would deliver it: pieces ignoring event bounds."""
    return [stream[i : i + size] for i in range(0, len(stream), size)]


HEADERS = [
    ("host", "127.0.0.1:8787"),
    ("authorization", "Bearer fpk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"),
    ("content-type", "application/json"),
    ("user-agent", "OpenAI/Python 1.50.0"),
    ("accept", "application/json"),
    ("floopy-session-id", "sess-8d2f"),
    ("floopy-session-name", "checkout"),
    ("floopy-session-path", "/cart/pay"),
    ("floopy-user-id", "user-42"),
    ("Floopy-Property-Environment", "production"),
    ("floopy-property-team", "payments"),
    ("x-floopy-cache-enabled", "true"),
    ("floopy-cache-ignore-keys", "metadata,user"),
    ("cache-control", "max-age=3600"),
    ("floopy-fallback", "claude-sonnet-4-5, gemini-2.5-pro"),
    ("x-stainless-lang", "python"),
    ("x-stainless-retry-count", "0"),
]


@pytest.fixture(params=SIZES)
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)
