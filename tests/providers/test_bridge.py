"""``/v1/messages`` to a provider that speaks OpenAI's format: the Anthropic request as a
chat-completions request, and the answer (whole, or streamed) back as an Anthropic message,
read back through the anthropic SDK's own types and stream accumulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from floopy import errors
from floopy._native import SseParser
from floopy.providers.anthropic.request import to_anthropic
from floopy.providers.base import Completion, StreamSummary, Usage
from floopy.providers.bridge.request import TOOL_ERROR_MARK, to_openai
from floopy.providers.bridge.response import to_message
from floopy.providers.bridge.stream import EventWriter, messages_stream
from providers.wire_fixtures import fixture_bytes


def fixture(path: str) -> bytes:
    return fixture_bytes(*path.split("/"))


def request(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    doc.update(fields)
    return to_openai(doc)


# --- request ----------------------------------------------------------------------------------


def test_recorded_request_as_openai() -> None:
    body = to_openai(json.loads(fixture("anthropic/messages_request.json")))
    assert body["messages"] == [
        {"role": "system", "content": "You answer questions about train timetables. Be short."},
        {"role": "user", "content": "When does the next train to Porto leave?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01Hx7RkVq3mTzP9bWc4NdLsE",
                    "type": "function",
                    "function": {
                        "name": "next_departure",
                        "arguments": '{"destination":"Porto","after":"now"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "toolu_01Hx7RkVq3mTzP9bWc4NdLsE",
            "content": '{"destination": "Porto", "departs": "14:05", "platform": "3"}',
        },
    ]
    assert body["tools"][0]["function"]["name"] == "next_departure"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["destination", "after"]
    assert body["tool_choice"] == "auto"
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (512, 0.3, ["END"])


def test_recorded_request_survives_the_round_trip() -> None:
    """Anthropic -> OpenAI -> Anthropic gives the request back (in block form)."""
    recorded = json.loads(fixture("anthropic/messages_request.json"))
    back = to_anthropic(
        to_openai(recorded), model="claude-haiku-4-5", default_max_tokens=1, stream=False
    )
    assert back.body["system"] == [{"type": "text", "text": recorded["system"]}]
    assert back.body["messages"][1]["content"][0]["input"] == {
        "destination": "Porto",
        "after": "now",
    }
    assert back.body["messages"][2]["content"] == recorded["messages"][2]["content"]
    assert back.body["tools"] == recorded["tools"]
    assert back.body["stop_sequences"] == ["END"]


def test_system_blocks_images_and_metadata() -> None:
    body = request(
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        metadata={"user_id": "u-1"},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is it?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.png"},
                    },
                ],
            }
        ],
    )
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    assert body["user"] == "u-1"


def test_tool_results_come_first_as_tool_messages() -> None:
    body = request(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "...", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "t2", "name": "w", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "18C"}],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": "no data",
                        "is_error": True,
                    },
                    {"type": "text", "text": "and tomorrow?"},
                ],
            },
        ]
    )
    assistant, first, second, user = body["messages"][1:]
    assert assistant["content"] == "Checking."
    assert [c["id"] for c in assistant["tool_calls"]] == ["t1", "t2"]
    assert first == {"role": "tool", "tool_call_id": "t1", "content": "18C"}
    assert second == {"role": "tool", "tool_call_id": "t2", "content": TOOL_ERROR_MARK + "no data"}
    assert user == {"role": "user", "content": "and tomorrow?"}


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "w"}, {"type": "function", "function": {"name": "w"}}, None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool | None) -> None:
    tools = [
        {"name": "w", "description": "weather", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search"},  # only Anthropic runs these
    ]
    body = request(tools=tools, tool_choice=choice)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "w", "parameters": {"type": "object"}, "description": "weather"},
        }
    ]
    assert body["tool_choice"] == expected
    assert body.get("parallel_tool_calls") == parallel


def test_stream_asks_for_usage_and_structured_output_maps() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = request(stream=True, output_config={"format": {"type": "json_schema", "schema": schema}})
    assert body["stream_options"] == {"include_usage": True}
    assert body["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "system", "content": "x"}], "messages.0.role"),
        ([{"role": "user", "content": [{"type": "audio"}]}], "messages.0.content.0.type"),
        (
            [{"role": "user", "content": [{"type": "tool_result"}]}],
            "messages.0.content.0.tool_use_id",
        ),
        (
            [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}],
            "messages.0.content.0.source",
        ),
    ],
)
def test_bad_blocks_are_bad_requests(messages: list[Any], param: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        request(messages=messages)
    assert caught.value.param == param


# --- response ---------------------------------------------------------------------------------


def test_recorded_openai_tool_response_as_a_message() -> None:
    usage = Usage(prompt_tokens=86, completion_tokens=22, total_tokens=108, cached_tokens=64)
    inner = Completion(fixture("openai/chat_tools_response.json"), usage, "tool_calls")
    result = to_message(inner, "mock")
    message = Message.model_validate(json.loads(result.body))
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.id == "call_R2dK8wQz5NfJ1hTs6VmC0bXa"
    assert block.input == {"city": "Lisbon", "unit": "celsius"}
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (22, 64)
    assert message.usage.output_tokens == 22
    assert result.usage is usage and result.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_stop_reasons(finish: str, stop_reason: str) -> None:
    body = {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [{"message": {"content": "hi"}, "finish_reason": finish}],
    }
    result = to_message(Completion(msgspec.json.encode(body)), "mock")
    message = Message.model_validate(json.loads(result.body))
    assert message.stop_reason == stop_reason
    assert message.content[0].type == "text" and message.content[0].text == "hi"
    assert message.id == "msg_chatcmpl-1"


def test_unparsable_tool_arguments_are_kept() -> None:
    call = {"id": "c", "function": {"name": "f", "arguments": "not json"}}
    body = {"choices": [{"message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    message = json.loads(to_message(Completion(msgspec.json.encode(body)), "mock").body)
    assert message["content"][0]["input"] == {"arguments": "not json"}


# --- stream -----------------------------------------------------------------------------------


def accumulate(data: bytes) -> tuple[Message, list[str]]:
    """Our events through the anthropic SDK's own accumulator, as a client sees them."""
    snapshot: Any = None
    names = []
    json_bufs: dict[int, bytes] = {}
    for sse in SseParser().feed(data):
        assert sse.event is not None, "the anthropic SDKs skip events without a name"
        names.append(sse.event)
        if sse.event == "error":
            continue
        snapshot = accumulate_event(
            event=json.loads(sse.data), current_snapshot=snapshot, json_bufs=json_bufs
        )
    return snapshot, names


def translate_stream(data: bytes, piece: int = 0) -> bytes:
    writer = EventWriter("gpt-4o")
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)] if piece else [data]
    return writer.start() + b"".join(writer.feed(p) for p in pieces) + writer.end()


@pytest.mark.parametrize("piece", [0, 3])
def test_recorded_openai_tool_stream_as_events(piece: int) -> None:
    out = translate_stream(fixture("openai/chat_tools_stream.sse"), piece)
    message, names = accumulate(out)
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.id == "call_Vb7Xq2Lm9RkT4sWn8YpD3cHf"
    assert message.usage.input_tokens == 47 and message.usage.output_tokens == 14


def test_recorded_openai_text_stream_as_events() -> None:
    out = translate_stream(fixture("openai/chat_text_stream.sse"))
    message, names = accumulate(out)
    assert names.count("content_block_start") == names.count("content_block_stop") == 1
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    doc = {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + msgspec.json.encode(doc) + b"\n\n"


def test_text_then_parallel_tool_calls_get_blocks_in_order() -> None:
    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    stream = [
        chunk({"role": "assistant", "content": "Checking "}),
        chunk({"content": "both."}),
        chunk(call(0, id="c_a", function={"name": "w", "arguments": ""})),
        chunk(call(0, function={"arguments": '{"city": "Pa'})),
        chunk(call(1, id="c_b", function={"name": "w", "arguments": '{"city"'})),
        chunk(call(0, function={"arguments": 'ris"}'})),  # a late piece of the first call
        chunk(call(1, function={"arguments": ': "Rome"}'})),
        chunk({}, "tool_calls"),
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}\n\n',
        b"data: [DONE]\n\n",
    ]
    message, _ = accumulate(translate_stream(b"".join(stream)))
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Checking both."  # type: ignore[union-attr]
    assert message.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert message.content[2].input == {"city": "Rome"}  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 4)


def test_error_chunk_becomes_an_error_event() -> None:
    error = b'data: {"error": {"message": "mock broke", "type": "api_error"}}\n\n'
    out = translate_stream(chunk({"content": "par"}) + error)
    events = SseParser().feed(out)
    assert events[-1].event == "error"
    assert json.loads(events[-1].data)["error"] == {"type": "api_error", "message": "mock broke"}


def test_stream_cut_without_a_finish_ends_with_an_error_event() -> None:
    events = SseParser().feed(translate_stream(chunk({"content": "par"})))
    assert events[-1].event == "error"
    assert [e.event for e in events].count("message_stop") == 0


class FakeStream:
    def __init__(self, first: bytes, rest: list[bytes]) -> None:
        self.first, self._rest = first, rest
        self.summary = StreamSummary(content="kept")
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._rest:
            yield piece

    async def close(self) -> None:
        self.closed = True


def test_messages_stream_wraps_a_provider_stream() -> None:
    inner = FakeStream(
        chunk({"role": "assistant", "content": ""}),
        [chunk({"content": "hi"}, "stop"), b"data: [DONE]\n\n"],
    )
    stream = messages_stream(inner, "gpt-4o")

    async def run() -> bytes:
        out = stream.first + b"".join([piece async for piece in stream])
        await stream.close()
        return out

    message, _ = accumulate(asyncio.run(run()))
    assert message.content[0].text == "hi"  # type: ignore[union-attr]
    assert stream.summary is inner.summary and inner.closed
