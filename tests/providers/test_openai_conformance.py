"""OpenAI streams in the project's fixtures (``tests/fixtures/openai``), relayed as the gateway
relays them, give the content, tool calls, finish reason and usage they imply, in chunks that follow
OpenAI's OpenAPI schema; a usage chunk the client did not ask for is kept from it but still
counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from floopy._native import OpenAIStreamRelay
from floopy.providers.openai import OpenAIStream

from .openapi_schema import chunk_valid, completion_valid
from .upstream import upstream_body
from .wire_fixtures import fixture_path

STREAMS = {
    "chat_text_stream.sse": {"finish": "stop", "usage": (21, 12, 33), "calls": []},
    "chat_length_stream.sse": {
        "finish": "length",
        "usage": (57, 1, 58),
        "content": '{"',
        "calls": [],
    },
    "chat_tools_stream.sse": {
        "finish": "tool_calls",
        "usage": (47, 14, 61),
        "content": "",
        "calls": [("get_weather", {"city": "Lisbon"})],
    },
}


class _Body:
    def __init__(self, raw: bytes, piece: int) -> None:
        self._pieces = [raw[i : i + piece] for i in range(0, len(raw), piece)]

    async def _iterate(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._iterate()


class _Response:
    def __init__(self, raw: bytes, piece: int) -> None:
        self.content = _Body(raw, piece)

    def close(self) -> None:
        pass


def relay(raw: bytes, strip_usage: bool, piece: int = 37) -> tuple[bytes, OpenAIStream]:
    async def run() -> tuple[bytes, OpenAIStream]:
        stream = OpenAIStream(
            upstream_body("openai", _Response(raw, piece)), OpenAIStreamRelay(strip_usage)
        )
        await stream.open()
        out = [stream.first] + [chunk async for chunk in stream]
        return b"".join(out), stream

    return asyncio.run(run())


def data_lines(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


def implied_content(raw: bytes) -> str:
    chunks = [json.loads(d) for d in data_lines(raw) if d != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("name", sorted(STREAMS))
@pytest.mark.parametrize("strip_usage", [False, True])
def test_recorded_stream(name: str, strip_usage: bool) -> None:
    raw = fixture_path("openai", name).read_bytes()
    expected = STREAMS[name]
    out, stream = relay(raw, strip_usage)
    lines = data_lines(out)
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    for chunk in chunks:
        chunk_valid(chunk)
    assert any(not c["choices"] for c in chunks) == (not strip_usage and bool(expected["usage"]))
    summary = stream.summary
    assert summary.content == expected.get("content", implied_content(raw))
    assert summary.finish_reason == expected["finish"]
    assert summary.completed and summary.error is None
    if expected["usage"] is None:
        assert summary.usage is None
    else:
        assert summary.usage is not None
        usage = summary.usage
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == expected[
            "usage"
        ]
    calls = [(call.name, json.loads(call.arguments)) for call in stream._relay.tool_calls]
    assert calls == expected["calls"]


def test_recorded_text_stream_content() -> None:
    raw = fixture_path("openai", "chat_text_stream.sse").read_bytes()
    _, stream = relay(raw, strip_usage=True, piece=1)  # byte by byte
    assert stream.summary.content == "The Eiffel Tower is about 330 metres tall, antennas included."


def test_recorded_completion_follows_the_schema() -> None:
    raw = fixture_path("openai", "chat_tools_response.json").read_text()
    completion_valid(json.loads(raw))


def test_the_schema_refuses_what_a_client_would_choke_on() -> None:
    """The schema excerpt is a real check: a completion without ``message.refusal`` or with
    an unknown finish reason fails it, and so does a chunk with a string usage."""
    doc = json.loads(fixture_path("openai", "chat_tools_response.json").read_text())
    del doc["choices"][0]["message"]["refusal"]
    with pytest.raises(AssertionError, match="refusal"):
        completion_valid(doc)
    doc = json.loads(fixture_path("openai", "chat_tools_response.json").read_text())
    doc["choices"][0]["finish_reason"] = "done"
    with pytest.raises(AssertionError, match="finish_reason"):
        completion_valid(doc)
    chunk = json.loads(data_lines(fixture_path("openai", "chat_text_stream.sse").read_bytes())[0])
    chunk["usage"] = "21 tokens"
    with pytest.raises(AssertionError, match="usage"):
        chunk_valid(chunk)
