"""The Anthropic provider's translations: OpenAI request -> Messages request, message ->
chat completion, event stream -> chunks; checked against Anthropic exchanges in the project's
fixtures (``tests/fixtures/anthropic``), the openai SDK's own types and the fields OpenAI's
API reference requires."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import openai.types.chat as oai
import pytest

from floopy import errors
from floopy._native import SseParser
from floopy.providers.anthropic.provider import messages_url
from floopy.providers.anthropic.request import JSON_TOOL, to_anthropic
from floopy.providers.anthropic.response import to_completion
from floopy.providers.anthropic.stream import (
    AnthropicStream,
    ChunkTranslator,
    EventRelay,
    Mode,
    StreamTally,
)
from floopy.providers.anthropic.wire import http_error
from floopy.providers.base import StreamSummary

from .openapi_schema import chunk_valid, completion_valid
from .upstream import upstream_body
from .wire_fixtures import fixture_bytes

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


def fixture(name: str) -> bytes:
    return fixture_bytes("anthropic", name)


def translate(doc: dict[str, Any], *, stream: bool = False, default: int = 4096) -> Any:
    return to_anthropic(doc, model="claude-x", default_max_tokens=default, stream=stream)


def body_of(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    doc.update(fields)
    return dict(translate(doc).body)


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


# --- request ----------------------------------------------------------------------------------


def test_system_and_developer_messages_become_system_blocks_in_order() -> None:
    body = body_of(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Answer in French."},
        ]
    )
    assert body["system"] == [
        text("Be brief."),
        text("Use metric units."),
        text("Answer in French."),
    ]
    assert body["messages"] == [{"role": "user", "content": [text("hi")]}]


def test_multi_turn_alternates_and_merges_same_role_turns() -> None:
    refusal = [{"type": "refusal", "refusal": "I can't."}, {"type": "text", "text": "three"}]
    body = body_of(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": refusal},
            {"role": "user", "content": "four"},
            {"role": "user", "content": ""},  # nothing to say: Anthropic refuses empty text
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": [text("one"), text("two")]},
        {"role": "assistant", "content": [text("I can't."), text("three")]},
        {"role": "user", "content": [text("four")]},
    ]


def test_images_as_data_urls_and_links() -> None:
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    body = body_of(messages=[{"role": "user", "content": parts}])
    assert body["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_image_with_another_scheme_is_a_bad_request() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}]
    with pytest.raises(errors.BadRequest) as caught:
        body_of(messages=[{"role": "user", "content": parts}])
    assert caught.value.param == "messages.0.content.0.image_url.url"


def test_cache_control_on_parts_is_kept() -> None:
    part = {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}
    body = body_of(
        messages=[{"role": "system", "content": [part]}, {"role": "user", "content": "q"}]
    )
    assert body["system"] == [{**text("long context"), "cache_control": {"type": "ephemeral"}}]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tools_and_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    fields: dict[str, Any] = {"tools": [WEATHER]}
    if choice is not None:
        fields["tool_choice"] = choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    body = body_of(**fields)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather of a city",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert body.get("tool_choice") == expected


def test_bad_tool_choice_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest) as caught:
        body_of(tools=[WEATHER], tool_choice="sometimes")
    assert caught.value.param == "tool_choice"


def test_parallel_tool_calls_and_results_round_trip_as_blocks() -> None:
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Rome"}'},
        },
    ]
    body = body_of(
        messages=[
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "call_b",
                "content": [{"type": "text", "text": "24C"}],
            },
            {"role": "user", "content": "and tomorrow?"},
        ]
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            text("Checking."),
            {
                "type": "tool_use",
                "id": "call_a",
                "name": "get_weather",
                "input": {"location": "Paris"},
            },
            {
                "type": "tool_use",
                "id": "call_b",
                "name": "get_weather",
                "input": {"location": "Rome"},
            },
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_b", "content": [text("24C")]},
            text("and tomorrow?"),
        ],
    }
    assert len(body["messages"]) == 3


def test_tool_call_arguments_that_are_not_an_object_are_a_bad_request() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2"}}
    with pytest.raises(errors.BadRequest) as caught:
        body_of(
            messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}]
        )
    assert caught.value.param == "messages.1.tool_calls.function.arguments"


def test_sampling_parameters() -> None:
    body = body_of(temperature=1.6, top_p=0.9, stop="END", user="user-42", max_tokens=300)
    assert body["temperature"] == 1.0  # Anthropic's range ends at 1
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert body["max_tokens"] == 300
    assert body_of(stop=["a", "  ", "b"])["stop_sequences"] == ["a", "b"]


def test_max_tokens_prefers_max_completion_tokens_then_the_default() -> None:
    assert body_of(max_completion_tokens=77, max_tokens=5)["max_tokens"] == 77
    doc = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert translate(doc, default=1234).body["max_tokens"] == 1234


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "ten"}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": 7}, "stop"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id"),
        ({"tools": [{"type": "function"}]}, "tools.0.function"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ],
)
def test_bad_input_is_a_bad_request_naming_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        body_of(**fields)
    assert caught.value.param == param


def test_json_object_becomes_a_forced_tool() -> None:
    request = translate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"},
        }
    )
    assert request.json_tool == JSON_TOOL
    assert request.body["tools"][0]["name"] == JSON_TOOL
    assert request.body["tools"][0]["input_schema"] == {"type": "object"}
    assert request.body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


def test_json_schema_becomes_the_forced_tool_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = body_of(
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    )
    assert body["tools"][0]["input_schema"] == schema


def test_json_schema_beside_client_tools_goes_into_the_system_prompt() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    request = translate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [WEATHER],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "c", "schema": schema},
            },
        }
    )
    assert request.json_tool is None
    assert [tool["name"] for tool in request.body["tools"]] == ["get_weather"]
    assert '"city"' in request.body["system"][-1]["text"]


def test_stream_flag() -> None:
    doc = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert translate(doc, stream=True).body["stream"] is True
    assert "stream" not in translate(doc).body


def normalized(body: dict[str, Any]) -> dict[str, Any]:
    """Anthropic accepts a string wherever one text block would do; compare in block form."""
    body = dict(body)
    if isinstance(body.get("system"), str):
        body["system"] = [text(body["system"])]
    body["messages"] = [
        {**m, "content": [text(m["content"])] if isinstance(m["content"], str) else m["content"]}
        for m in body["messages"]
    ]
    for message in body["messages"]:
        for block in message["content"]:
            block.pop("caller", None)  # recorded responses carry it; requests need not
    return body


def test_recorded_request_is_what_its_openai_twin_translates_to() -> None:
    recorded = json.loads(fixture("messages_request.json"))
    tool = recorded["tools"][0]
    openai_request = {
        "model": "claude-haiku-4-5",
        "max_tokens": 512,
        "temperature": 0.3,
        "stop": ["END"],
        "tool_choice": "auto",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    "description": tool["description"],
                    "parameters": tool["input_schema"],
                },
            }
        ],
        "messages": [
            {"role": "system", "content": recorded["system"]},
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
                            "arguments": '{"destination": "Porto", "after": "now"}',
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "toolu_01Hx7RkVq3mTzP9bWc4NdLsE",
                "content": recorded["messages"][2]["content"][0]["content"],
            },
        ],
    }
    translated = to_anthropic(
        openai_request, model="claude-haiku-4-5", default_max_tokens=1, stream=False
    )
    assert normalized(translated.body) == normalized(recorded)


# --- response ---------------------------------------------------------------------------------


def completion(data: bytes, json_tool: str | None = None) -> tuple[Any, dict[str, Any]]:
    result = to_completion("anthropic", data, json_tool)
    body = json.loads(result.body)
    oai.ChatCompletion.model_validate(body)  # what the openai SDK will make of it
    completion_valid(body)  # and what OpenAI's specification says it must be
    return result, body


def test_recorded_text_response() -> None:
    result, body = completion(fixture("messages_response_end_turn.json"))
    choice = body["choices"][0]
    assert choice["message"]["content"] == (
        "The next train to Porto leaves at **14:05** from platform 3."
    )
    assert choice["finish_reason"] == "stop" == result.finish_reason
    assert body["id"] == "msg_01Tq8ZbV4nXr2KcW7mLs9PdH"
    # input_tokens 14 is the uncached part; the 1,650 written to the cache are prompt too.
    assert body["usage"]["prompt_tokens"] == 1664 and body["usage"]["completion_tokens"] == 21
    details = body["usage"]["prompt_tokens_details"]
    assert details == {"cached_tokens": 0, "cache_write_tokens": 1650}
    assert (result.usage.cache_write_tokens, result.usage.total_tokens) == (1650, 1685)


def test_recorded_tool_use_response() -> None:
    result, body = completion(fixture("messages_response_tool_use.json"))
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": "toolu_01Hx7RkVq3mTzP9bWc4NdLsE",
            "type": "function",
            "function": {
                "name": "next_departure",
                "arguments": '{"destination":"Porto","after":"now"}',
            },
        }
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls" == result.finish_reason
    assert result.usage.prompt_tokens == 583 and result.usage.completion_tokens == 64


def anthropic_message(**fields: Any) -> bytes:
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [text("ok")],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    message.update(fields)
    return msgspec.json.encode(message)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop_reason: str | None, finish: str) -> None:
    result, body = completion(anthropic_message(stop_reason=stop_reason))
    assert body["choices"][0]["finish_reason"] == finish == result.finish_reason


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    usage = {
        "input_tokens": 100,
        "cache_read_input_tokens": 50,
        "cache_creation_input_tokens": 30,
        "output_tokens": 7,
    }
    result, body = completion(anthropic_message(usage=usage))
    assert body["usage"] == {
        "prompt_tokens": 180,
        "completion_tokens": 7,
        "total_tokens": 187,
        "prompt_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 30},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert (result.usage.cached_tokens, result.usage.cache_write_tokens) == (50, 30)


def test_null_cache_counts_are_zero() -> None:
    usage = {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": None}
    result, _ = completion(anthropic_message(usage=usage))
    assert result.usage.prompt_tokens == 3 and result.usage.cached_tokens == 0


def test_json_tool_call_becomes_the_content() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {"city": "Paris"}}
    result, body = completion(anthropic_message(content=[call], stop_reason="tool_use"), JSON_TOOL)
    assert json.loads(body["choices"][0]["message"]["content"]) == {"city": "Paris"}
    assert "tool_calls" not in body["choices"][0]["message"]
    assert result.finish_reason == "stop"


def test_thinking_blocks_are_left_out() -> None:
    blocks = [{"type": "thinking", "thinking": "hmm", "signature": "s"}, text("42")]
    _, body = completion(anthropic_message(content=blocks))
    assert body["choices"][0]["message"]["content"] == "42"


def test_unreadable_message_is_a_provider_error() -> None:
    with pytest.raises(errors.ProviderError):
        to_completion("anthropic", b"<html>bad gateway</html>", None)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "kind", "code"),
    [
        ("error_401_authentication_error.json", 401, errors.ProviderError, "PROVIDER_ERROR"),
        ("error_429_rate_limit_error.json", 429, errors.RateLimitExceeded, "RATE_LIMIT_EXCEEDED"),
        ("error_529_overloaded_error.json", 529, errors.ProviderError, "PROVIDER_ERROR"),
    ],
)
def test_recorded_error_bodies(name: str, status: int, kind: type, code: str) -> None:
    error = http_error("anthropic", status, fixture(name), {"retry-after": "12"})
    assert isinstance(error, kind) and error.code == code
    detail = json.loads(fixture(name))["error"]
    assert detail["type"] in error.message and detail["message"][:40] in error.message
    if status == 429:
        assert error.headers["Retry-After"] == "12"
    else:
        assert error.status == 502


def test_invalid_request_keeps_its_status() -> None:
    body = (
        b'{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}'
    )
    error = http_error("anthropic", 400, body, {})
    assert error.status == 400 and "max_tokens: too big" in error.message


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/messages"),
    ],
)
def test_messages_url(base_url: str, url: str) -> None:
    assert messages_url(base_url) == url


# --- stream -----------------------------------------------------------------------------------


def translate_stream(
    data: bytes, *, include_usage: bool = True, json_tool: str | None = None, piece: int = 0
) -> tuple[list[Any], StreamTally]:
    """Feeds ``data`` whole, or in pieces of ``piece`` bytes, and parses what comes out."""
    translator = ChunkTranslator(model="claude-x", include_usage=include_usage, json_tool=json_tool)
    parser = SseParser()
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)] if piece else [data]
    out = b"".join(translator.feed(parser.feed(p), p) for p in pieces)
    out += translator.feed(parser.finish(), b"")
    return [e.data for e in SseParser().feed(out)], translator.tally


def chunks_of(data: list[str]) -> list[dict[str, Any]]:
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    for chunk in chunks:
        oai.ChatCompletionChunk.model_validate(chunk)
        chunk_valid(chunk)
    return chunks


def assembled(chunks: list[dict[str, Any]]) -> tuple[str, dict[int, dict[str, str]], str | None]:
    content, calls, finish = "", {}, None
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                into = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                into["id"] += call.get("id") or ""
                into["name"] += call.get("function", {}).get("name") or ""
                into["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return content, calls, finish


@pytest.mark.parametrize("piece", [0, 1, 7])
def test_recorded_text_stream(piece: int) -> None:
    data, tally = translate_stream(fixture("messages_stream_text.sse"), piece=piece)
    chunks = chunks_of(data)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content, calls, finish = assembled(chunks)
    assert (content, calls, finish) == ("Hi! How can I help?", {}, "stop")
    assert chunks[-1]["choices"] == []
    # 9 uncached input tokens and 1,650 read from the cache.
    assert chunks[-1]["usage"]["prompt_tokens"] == 1659
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 1650
    assert chunks[-1]["usage"]["completion_tokens"] == 8
    summary = StreamSummary()
    tally.fill(summary)
    assert summary.completed and summary.content == "Hi! How can I help?"
    assert summary.usage is not None and summary.usage.total_tokens == 1667


def test_recorded_tool_use_stream() -> None:
    data, _ = translate_stream(fixture("messages_stream_tool_use.sse"), include_usage=False)
    chunks = chunks_of(data)
    assert all(chunk["choices"] for chunk in chunks), "usage chunk not asked for"
    content, calls, finish = assembled(chunks)
    assert content == "I'll look up the next departure to Porto."
    assert calls == {
        0: {
            "id": "toolu_01Gc5Vm8Nx2Rb7Tk4Wq9Ld3S",
            "name": "next_departure",
            "arguments": '{"destination": "Porto", "after": "now"}',
        }
    }
    assert finish == "tool_calls"


def test_recorded_error_event_becomes_an_openai_error_event() -> None:
    data, tally = translate_stream(fixture("messages_stream_error_event.sse"))
    assert json.loads(data[0])["error"]["message"] == "overloaded_error: Overloaded"
    assert tally.error is not None and not tally.done


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def synthetic_stream(blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]], stop: str) -> bytes:
    usage = {"input_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5}
    message = {
        "id": "msg_s",
        "model": "claude-x",
        "content": [],
        "usage": {**usage, "output_tokens": 1},
    }
    events = [sse({"type": "message_start", "message": message})]
    for index, (start, deltas) in enumerate(blocks):
        events.append(sse({"type": "content_block_start", "index": index, "content_block": start}))
        events.extend(
            sse({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
        )
        events.append(sse({"type": "content_block_stop", "index": index}))
    delta = {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 9}}
    events.append(sse(delta))
    events.append(sse({"type": "message_stop"}))
    return b"".join(events)


def json_delta(partial: str) -> dict[str, Any]:
    return {"type": "input_json_delta", "partial_json": partial}


def test_parallel_tool_calls_stream_with_their_own_indexes() -> None:
    def tool(n: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        start = {"type": "tool_use", "id": f"toolu_{n}", "name": f"tool_{n}", "input": {}}
        return start, [json_delta('{"n": '), json_delta(f"{n}}}")]

    thinking = (
        {"type": "thinking", "thinking": ""},
        [{"type": "thinking_delta", "thinking": "hm"}],
    )
    data, _ = translate_stream(synthetic_stream([thinking, tool(1), tool(2)], "tool_use"))
    _, calls, finish = assembled(chunks_of(data))
    assert calls == {
        0: {"id": "toolu_1", "name": "tool_1", "arguments": '{"n": 1}'},
        1: {"id": "toolu_2", "name": "tool_2", "arguments": '{"n": 2}'},
    }
    assert finish == "tool_calls"


def test_json_tool_streams_as_content() -> None:
    start = {"type": "tool_use", "id": "toolu_j", "name": JSON_TOOL, "input": {}}
    stream = synthetic_stream(
        [(start, [json_delta('{"city"'), json_delta(': "Paris"}')])], "tool_use"
    )
    data, tally = translate_stream(stream, json_tool=JSON_TOOL)
    chunks = chunks_of(data)
    content, calls, finish = assembled(chunks)
    assert json.loads(content) == {"city": "Paris"}
    assert (calls, finish) == ({}, "stop")
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 125,
        "completion_tokens": 9,
        "total_tokens": 134,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert str(tally.text) == '{"city": "Paris"}'


def test_garbage_events_are_skipped() -> None:
    data, _ = translate_stream(
        b"event: ping\ndata: not json\n\n" + synthetic_stream([], "end_turn")
    )
    assert assembled(chunks_of(data))[2] == "stop"


# --- the stream object ------------------------------------------------------------------------


class FakeContent:
    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def iter_any(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            await asyncio.sleep(0)
            yield piece


class FakeResponse:
    """Just what AnthropicStream reads of an aiohttp response: the body in pieces."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.content = FakeContent([data[i : i + piece] for i in range(0, len(data), piece)])
        self.closed = False

    def close(self) -> None:
        self.closed = True


async def drain(stream: AnthropicStream) -> bytes:
    return stream.first + b"".join([piece async for piece in stream])


def relayed(response: FakeResponse, mode: Mode) -> tuple[bytes, AnthropicStream]:
    """Everything the stream sends on, from its first event to its end."""

    async def run() -> tuple[bytes, AnthropicStream]:
        stream = AnthropicStream(upstream_body("anthropic", response), mode)
        await stream.open()
        return await drain(stream), stream

    return asyncio.run(run())


def test_error_event_before_anything_was_sent_raises_so_dispatch_can_fall_back() -> None:
    response = FakeResponse(fixture("messages_stream_error_event.sse"), 5)
    translator = ChunkTranslator(model="m", include_usage=False, json_tool=None)
    with pytest.raises(errors.ProviderError) as caught:
        relayed(response, translator)
    assert "overloaded_error" in caught.value.message and response.closed


def test_relay_passes_bytes_through_and_summarizes() -> None:
    data = fixture("messages_stream_tool_use.sse")
    out, stream = relayed(FakeResponse(data, random.randint(3, 50)), EventRelay())
    assert out == data
    summary = stream.summary
    assert summary.completed and summary.error is None
    assert summary.finish_reason == "tool_calls"
    assert summary.usage is not None and summary.usage.completion_tokens == 71


def test_stream_ending_early_ends_with_an_error_event() -> None:
    data = fixture("messages_stream_text.sse")
    cut = data[: data.index(b"event: content_block_stop")]
    translator = ChunkTranslator(model="m", include_usage=False, json_tool=None)
    out, stream = relayed(FakeResponse(cut, 40), translator)
    events = [e.data for e in SseParser().feed(out)]
    assert json.loads(events[-1])["error"]["message"] == "anthropic ended the stream early"
    assert stream.summary.error == "anthropic ended the stream early"
    assert stream.summary.content == "Hi! How can I help?"
