"""One Responses API contract, every provider kind: the openai SDK's ``client.responses`` gets
equivalent answers (text, function calls through a round trip, JSON schema output, usage) from
OpenAI- and Azure-speaking upstreams (which get the request natively) and from Gemini and
Anthropic ones (which get it over chat), whole and streamed with the SDK's event helpers;
a stream cut short ends with an ``error`` event; what needs a kept response is a 400.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from .conftest import Gateway
from .provider_gateway import (
    KINDS,
    PRICED_ACCOUNTING,
    TOOL_ARGS,
    contract_gateway,
    forget,
    received,
)

pytestmark = pytest.mark.integration
__all__ = ["contract_gateway"]  # the module-scoped gateway these tests share

kinds = pytest.mark.parametrize("kind", KINDS)
NATIVE = {"openai": "/v1/responses", "azure": "/openai/responses"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
    "strict": False,
}
SCHEMA = {
    "type": "json_schema",
    "name": "reply",
    "schema": {"type": "object", "properties": {"reply": {"type": "string"}}},
    "strict": False,
}
STREAM_KINDS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture
def client(contract_gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=contract_gateway.base_url, api_key=contract_gateway.key, max_retries=0
    )


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "input_text", "text": text}]}]


def usage_is_consistent(usage: Any) -> None:
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


@kinds
def test_text(kind: str, client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model=f"{kind}/plain", input="hello there", instructions="Be brief."
    )
    response = raw.parse()
    assert response.output_text == "Mock reply to: hello there"
    assert response.status == "completed" and response.object == "response"
    assert raw.headers["floopy-provider"] == kind
    assert response.usage is not None
    usage_is_consistent(response.usage)


@kinds
def test_each_provider_gets_its_own_wire_format(
    kind: str, client: openai.OpenAI, contract_gateway: Gateway
) -> None:
    forget(contract_gateway)
    client.responses.create(model=f"{kind}/plain", input=ask("wire"), instructions="Be brief.")
    (seen,) = received(contract_gateway)
    if kind in NATIVE:
        assert seen["path"] == NATIVE[kind]
        assert seen["body"]["input"] == ask("wire")  # as the client sent it
        assert seen["body"]["model"] == "plain" and seen["body"]["instructions"] == "Be brief."
    elif kind == "anthropic":
        assert seen["path"] == "/v1/messages"
        assert "Be brief." in json.dumps(seen["body"]["system"])
    else:
        assert seen["path"].startswith("/v1beta/models/plain:")
        assert "Be brief." in json.dumps(seen["body"]["systemInstruction"])


@kinds
def test_stream_with_the_sdk_helper(kind: str, client: openai.OpenAI) -> None:
    with client.responses.stream(model=f"{kind}/plain", input="stream this") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == "Mock reply to: stream this"
    assert final.usage is not None
    usage_is_consistent(final.usage)
    seen = [event.type for event in events]
    assert [kind for kind in STREAM_KINDS if kind in seen] == STREAM_KINDS
    assert seen[0] == "response.created" and seen[-1] == "response.completed"
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text


@kinds
def test_function_call_round_trip(kind: str, client: openai.OpenAI) -> None:
    question = ask("What is the weather in Paris?")
    first = client.responses.create(model=f"{kind}/tools", input=question, tools=[WEATHER])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == TOOL_ARGS
    assert call.call_id
    history = [item.model_dump(exclude_none=True) for item in first.output]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "22 C, sunny"}
    second = client.responses.create(
        model=f"{kind}/plain",
        input=[*question, *history, output],  # type: ignore[list-item]
        tools=[WEATHER],
    )
    assert second.output_text == "Mock reply to: What is the weather in Paris?"


@kinds
def test_streamed_function_call(kind: str, client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=f"{kind}/tools", input=ask("weather?"), tools=[WEATHER]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert json.loads(call.arguments) == TOOL_ARGS
    seen = {event.type for event in events}
    assert {"response.function_call_arguments.delta", "response.output_item.done"} <= seen


@kinds
def test_json_schema_output(kind: str, client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=f"{kind}/plain",
        input=ask("Answer in JSON"),
        text={"format": SCHEMA},  # type: ignore[typeddict-item]
    )
    assert isinstance(json.loads(response.output_text), dict)


@kinds
def test_priced_usage(kind: str, client: openai.OpenAI) -> None:
    expected = PRICED_ACCOUNTING[kind]
    usage = client.responses.create(model=f"{kind}/priced", input="count me").usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (expected.prompt, expected.completion)
    assert usage.input_tokens_details.cached_tokens == expected.cached
    assert usage.output_tokens_details.reasoning_tokens == expected.reasoning


def raw_events(gateway: Gateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/responses",
        json=body,
        headers={"Authorization": f"Bearer {gateway.key}"},
        timeout=30,
    ) as resp:
        assert resp.status_code == 200
        lines = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines]


@kinds
def test_stream_cut_short_ends_with_an_error_event(kind: str, contract_gateway: Gateway) -> None:
    events = raw_events(contract_gateway, {"model": f"{kind}/cut-2", "input": "hi", "stream": True})
    kinds_seen = [event["type"] for event in events]
    assert "response.completed" not in kinds_seen
    assert "error" in kinds_seen
    if kind not in NATIVE:
        assert kinds_seen[-1] == "response.failed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@kinds
def test_provider_errors_keep_their_meaning(kind: str, client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=f"{kind}/error-429", input="hi")
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model=f"{kind}/error-500", input="hi")
    assert caught.value.status_code == 502


def test_native_failure_falls_back_over_chat(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model="openai/error-500",
        input="fall back",
        extra_headers={"floopy-fallback": "anthropic/plain"},
    )
    assert raw.parse().output_text == "Mock reply to: fall back"
    assert raw.headers["floopy-provider"] == "anthropic"
    assert raw.headers["floopy-fallback-used"] == "true"


@pytest.mark.parametrize(
    "fields",
    [{"previous_response_id": "resp_earlier"}, {"store": True}],
)
def test_kept_responses_are_refused(fields: dict[str, Any], client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="openai/plain", input="hi", **fields)
    assert "does not keep responses" in caught.value.message


def test_openai_compatible_server_gets_it_natively(
    client: openai.OpenAI, contract_gateway: Gateway
) -> None:
    forget(contract_gateway)
    response = client.responses.create(model="compat/plain", input="compatible")
    assert response.output_text == "Mock reply to: compatible"
    (seen,) = received(contract_gateway)
    assert seen["path"] == "/v1/responses" and seen["body"]["input"] == "compatible"


def test_echo_answers_over_chat(client: openai.OpenAI) -> None:
    assert client.responses.create(model="echo", input="say it back").output_text == "say it back"
    with client.responses.stream(model="echo", input="say it again") as stream:
        assert stream.get_final_response().output_text == "say it again"
