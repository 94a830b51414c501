"""``/v1/responses`` to a provider that speaks only chat: the Responses request as a chat
request, and the answer (whole, or streamed) back as a ``response`` object or its typed event
stream, read back through the openai SDK's own types and stream accumulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec
import pytest
from openai import omit
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from floopy import errors
from floopy._native import SseParser
from floopy.providers.base import Completion, StreamSummary, Usage
from floopy.providers.responses.request import to_chat
from floopy.providers.responses.response import Frame, to_response
from floopy.providers.responses.stream import EventWriter, responses_stream
from providers.wire_fixtures import fixture_bytes


def fixture(path: str) -> bytes:
    return fixture_bytes(*path.split("/"))


def followup() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(fixture("openai/responses_followup_request.json")))


# --- request ----------------------------------------------------------------------------------


def test_followup_request_as_chat() -> None:
    body = to_chat(followup(), stream=False)
    assert body["messages"] == [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "system", "content": "Use metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather in Lisbon?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/lisbon.png", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_lisbon_weather",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Lisbon"}'},
                },
                {
                    "id": "call_lisbon_time",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"city":"Lisbon"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_lisbon_weather", "content": "21 C, sunny"},
        {"role": "tool", "tool_call_id": "call_lisbon_time", "content": "14:05"},
        {"role": "assistant", "content": "It is 21 C and sunny."},
        {"role": "user", "content": "And tomorrow?"},
    ]


def test_followup_parameters_as_chat() -> None:
    body = to_chat(followup(), stream=True)
    weather, clock = body["tools"]
    assert weather["function"]["name"] == "get_weather" and weather["function"]["strict"] is False
    assert weather["function"]["description"] == "Current weather of a city"
    assert clock["function"]["strict"] is True  # Responses' default, made explicit
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "forecast"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["reasoning_effort"] == "low"
    assert body["max_completion_tokens"] == 300
    assert (body["temperature"], body["top_p"], body["user"]) == (0.3, 0.9, "user-lisbon")
    assert body["parallel_tool_calls"] is False
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "metadata" not in body and "input" not in body and "text" not in body


def test_string_input_is_one_user_message() -> None:
    body = to_chat({"model": "m", "input": "hello"}, stream=False)
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert "stream" not in body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0.type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input.0.type"),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input.0.role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input.0.content.0.type",
        ),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input.0.call_id"),
    ],
)
def test_what_only_openai_runs_is_a_bad_request(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        to_chat({"model": "m", **fields}, stream=False)
    assert caught.value.param == param


# --- whole answer -----------------------------------------------------------------------------


def frame(**fields: Any) -> Frame:
    return Frame({"model": "m", "input": "hi", **fields}, "gpt-4o-mini")


def test_recorded_tool_completion_as_a_response() -> None:
    usage = Usage(prompt_tokens=86, completion_tokens=22, total_tokens=108, cached_tokens=64)
    completion = Completion(body=fixture("openai/chat_tools_response.json"), usage=usage)
    reply = to_response(completion, frame(instructions="Be brief."), "openai")
    response = Response.model_validate_json(reply.body)
    assert response.status == "completed" and response.instructions == "Be brief."
    (call,) = response.output
    assert call.type == "function_call"
    assert (call.call_id, call.name) == ("call_R2dK8wQz5NfJ1hTs6VmC0bXa", "get_weather")
    assert json.loads(call.arguments) == {"city": "Lisbon", "unit": "celsius"}
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (86, 22)
    assert response.usage.input_tokens_details.cached_tokens == 64
    assert reply.usage is usage and reply.finish_reason == "tool_calls"


def test_length_finish_is_an_incomplete_response() -> None:
    body = {"choices": [{"message": {"content": "Once upon"}, "finish_reason": "length"}]}
    reply = to_response(Completion(body=msgspec.json.encode(body)), frame(), "gemini")
    response = Response.model_validate_json(reply.body)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Once upon"


def test_unreadable_completion_is_a_provider_error() -> None:
    with pytest.raises(errors.ProviderError):
        to_response(Completion(body=b"not json"), frame(), "gemini")


# --- stream -----------------------------------------------------------------------------------


def events_of(data: bytes) -> list[dict[str, Any]]:
    parser = SseParser()
    events = [*parser.feed(data), *parser.finish()]
    decoded = [json.loads(event.data) for event in events]
    assert [event.event for event in events] == [d["type"] for d in decoded]
    return decoded


def accumulate(data: bytes) -> tuple[Response | None, list[dict[str, Any]]]:
    """The stream as the openai SDK's ``responses.stream`` helper reads it."""
    events = events_of(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(cast(Any, construct_type(type_=ResponseStreamEvent, value=event)))
    completed = state._completed_response  # the helper's own final answer
    return cast(Response | None, completed), events


def translate(data: bytes, piece: int = 0) -> bytes:
    writer = EventWriter(frame())
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)] if piece else [data]
    return writer.start() + b"".join(writer.feed(p) for p in pieces) + writer.end()


@pytest.mark.parametrize("piece", [0, 7])
def test_recorded_chat_tool_stream_as_events(piece: int) -> None:
    response, events = accumulate(translate(fixture("openai/chat_tools_stream.sse"), piece))
    assert response is not None and response.status == "completed"
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    json.loads(calls[0].arguments)  # whole arguments, assembled from the deltas
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-1] == "response.completed"
    assert events[-1]["response"]["usage"]["input_tokens"] == 47


def test_recorded_chat_text_stream_as_events() -> None:
    response, events = accumulate(translate(fixture("openai/chat_text_stream.sse")))
    assert response is not None and response.output_text
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == response.output_text


def test_recorded_chat_length_stream_is_an_incomplete_response() -> None:
    events = events_of(translate(fixture("openai/chat_length_stream.sse")))
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    (message,) = last["response"]["output"]
    assert message["status"] == "incomplete" and message["content"][0]["text"]


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    doc = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + msgspec.json.encode(doc) + b"\n\n"


def test_text_then_two_tool_calls_get_items_in_order() -> None:
    call = {"id": "call_a", "function": {"name": "get_weather", "arguments": '{"city"'}}
    data = b"".join(
        [
            chunk({"content": "Checking."}),
            chunk({"tool_calls": [{"index": 0, **call}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ':"Lisbon"}'}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "get_time"}}]}),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )
    response, events = accumulate(translate(data))
    assert response is not None
    assert [item.type for item in response.output] == ["message", "function_call", "function_call"]
    assert [getattr(item, "call_id", None) for item in response.output] == [
        None,
        "call_a",
        "call_b",
    ]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["name"], e["arguments"]) for e in done] == [
        ("get_weather", '{"city":"Lisbon"}'),
        ("get_time", "{}"),
    ]


def test_error_chunk_becomes_error_and_failed_events() -> None:
    error = b'data: {"error": {"message": "upstream broke", "code": "PROVIDER_ERROR"}}\n\n'
    events = events_of(translate(chunk({"content": "Hel"}) + error))
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["message"] == "upstream broke" and events[-2]["code"] == "PROVIDER_ERROR"
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"]["message"] == "upstream broke"


def test_stream_cut_without_a_finish_ends_with_failure() -> None:
    events = events_of(translate(chunk({"content": "Hel"})))
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert "ended the stream early" in events[-2]["message"]


class FakeStream:
    def __init__(self, first: bytes, rest: list[bytes]) -> None:
        self.first = first
        self.summary = StreamSummary()
        self._rest = rest
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._rest:
            yield piece

    async def close(self) -> None:
        self.closed = True


def test_responses_stream_wraps_a_provider_stream() -> None:
    inner = FakeStream(chunk({"content": "Hi"}), [chunk({}, "stop"), b"data: [DONE]\n\n"])

    async def relay() -> bytes:
        stream = responses_stream(inner, frame())
        assert stream.summary is inner.summary
        out = stream.first + b"".join([piece async for piece in stream])
        await stream.close()
        return out

    response, _ = accumulate(asyncio.run(relay()))
    assert response is not None and response.output_text == "Hi"
    assert inner.closed
