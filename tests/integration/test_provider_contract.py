"""One contract, every provider kind: the same openai-SDK script gets equivalent answers (text,
tool calls, finish reason, usage, cost) from OpenAI-, Azure-, Gemini- and Anthropic-speaking
upstreams, streamed and not, and the same errors when they fail: a stream that breaks or
simply stops half-way ends with an error event, never ``[DONE]``. Each provider gets its own
key and nobody else's; the gateway key never goes upstream.

The upstreams are the mock provider process speaking each wire format; answers are checked
against the fields OpenAI's API reference requires as they reach the client, after the
checks of what they say.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from providers.openapi_schema import chunk_valid, completion_valid

from .conftest import Gateway
from .provider_gateway import (
    KINDS,
    PRICED_ACCOUNTING,
    PROVIDER_KEYS,
    TIME_TOOL,
    TOOL_ARGS,
    WEATHER_TOOL,
    Accounting,
    contract_gateway,
    forget,
    received,
)

pytestmark = pytest.mark.integration
__all__ = ["contract_gateway"]  # the module-scoped gateway these tests share

kinds = pytest.mark.parametrize("kind", KINDS)


@pytest.fixture
def client(contract_gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=contract_gateway.base_url, api_key=contract_gateway.key, max_retries=0
    )


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def usage_is_consistent(usage: dict[str, Any]) -> None:
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def stream_text(stream: Any) -> tuple[str, str | None, list[Any]]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    return text, next((f for f in reversed(finishes) if f), None), chunks


def stream_calls(stream: Any) -> tuple[dict[int, dict[str, str]], str | None]:
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            if call.function is not None:
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    return calls, finish


def raw_events(gateway: Gateway, body: dict[str, Any]) -> list[str]:
    """The data of every event of the stream, as the client receives it."""
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gateway.key}"},
        timeout=30,
    ) as resp:
        assert resp.status_code == 200
        return [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]


def raw_chunks(gateway: Gateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream's chunks decoded; it must end with [DONE]."""
    events = raw_events(gateway, body)
    assert events[-1] == "[DONE]"
    return [json.loads(data) for data in events[:-1]]


def counted(usage: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    """prompt, completion, total, cached, cache-write and reasoning tokens of a usage object."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return (
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["total_tokens"],
        prompt_details.get("cached_tokens", 0),
        prompt_details.get("cache_write_tokens", 0),
        completion_details.get("reasoning_tokens", 0),
    )


def tokens_of(expected: Accounting) -> tuple[int, int, int, int, int, int]:
    return (
        expected.prompt,
        expected.completion,
        expected.total,
        expected.cached,
        expected.cache_write,
        expected.reasoning,
    )


# --- answers -------------------------------------------------------------------------------------


@kinds
def test_simple(kind: str, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=f"{kind}/plain", messages=say("hello there")
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["floopy-provider"] == kind
    usage_is_consistent(raw.http_response.json()["usage"])
    completion_valid(raw.http_response.json())


@kinds
def test_stream(kind: str, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=f"{kind}/plain", messages=say("a streamed answer, please"), stream=True
    )
    text, finish, chunks = stream_text(stream)
    assert text == "Mock reply to: a streamed answer, please"
    assert finish == "stop"
    assert all(c.choices for c in chunks), "a usage chunk the client did not ask for leaked"


@kinds
def test_stream_with_usage(kind: str, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=f"{kind}/plain",
        messages=say("count me"),
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, chunks = stream_text(stream)
    assert text == "Mock reply to: count me" and finish == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    usage_is_consistent(chunks[-1].usage.model_dump())


@kinds
@pytest.mark.parametrize("behaviour", ["plain", "tools"])
def test_stream_chunks_follow_the_openapi_schema(
    kind: str, behaviour: str, contract_gateway: Gateway
) -> None:
    body = {
        "model": f"{kind}/{behaviour}",
        "messages": say("weather in Paris?"),
        "tools": [WEATHER_TOOL],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = raw_chunks(contract_gateway, body)
    for chunk in chunks:
        chunk_valid(chunk)
    assert len({chunk["id"] for chunk in chunks}) == 1


@kinds
def test_tools(kind: str, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=f"{kind}/tools", messages=say("weather in Paris?"), tools=[WEATHER_TOOL]
    )
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id and call.type == "function"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == TOOL_ARGS  # type: ignore[union-attr]
    completion_valid(raw.http_response.json())


@kinds
def test_tools_stream_assembles_arguments(kind: str, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=f"{kind}/tools", messages=say("weather in Paris?"), tools=[WEATHER_TOOL], stream=True
    )
    calls, finish = stream_calls(stream)
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == TOOL_ARGS


@pytest.mark.parametrize("kind", ["gemini", "anthropic"])  # translated, not passed through
@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls(kind: str, stream: bool, client: openai.OpenAI) -> None:
    request: dict[str, Any] = {
        "model": f"{kind}/parallel-tools",
        "messages": say("weather and time in Paris?"),
        "tools": [WEATHER_TOOL, TIME_TOOL],
    }
    if stream:
        calls, finish = stream_calls(client.chat.completions.create(**request, stream=True))
        found = [calls[i] for i in sorted(calls)]
    else:
        choice = client.chat.completions.create(**request).choices[0]
        finish = choice.finish_reason
        found = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}  # type: ignore[union-attr]
            for c in choice.message.tool_calls or []
        ]
    assert finish == "tool_calls"
    assert [c["name"] for c in found] == ["get_weather", "get_time"]
    assert len({c["id"] for c in found}) == 2
    assert all(json.loads(c["arguments"]) == TOOL_ARGS for c in found)


@kinds
def test_tool_results_go_back(kind: str, client: openai.OpenAI) -> None:
    messages: list[Any] = say("weather in Paris?")
    first = client.chat.completions.create(
        model=f"{kind}/tools", messages=messages, tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 18}'})
    second = client.chat.completions.create(
        model=f"{kind}/plain", messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == "Mock reply to: weather in Paris?"
    assert second.choices[0].finish_reason == "stop"


@kinds
@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object"},
        {
            "type": "json_schema",
            "json_schema": {
                "name": "weather",
                "schema": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        },
    ],
)
def test_json_mode(kind: str, response_format: dict[str, Any], client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=f"{kind}/plain",
        messages=say("answer in JSON"),
        response_format=response_format,  # type: ignore[arg-type]
    )
    content = completion.choices[0].message.content
    assert isinstance(json.loads(content or ""), dict)
    assert completion.choices[0].finish_reason == "stop"


# --- accounting: literal numbers, worked out by hand (provider_gateway.PRICED_ACCOUNTING) ---------


@kinds
def test_usage_and_cost_of_an_answer(kind: str, client: openai.OpenAI) -> None:
    expected = PRICED_ACCOUNTING[kind]
    raw = client.chat.completions.with_raw_response.create(
        model=f"{kind}/priced", messages=say("a long prompt, cached")
    )
    assert counted(raw.http_response.json()["usage"]) == tokens_of(expected)
    assert float(raw.headers["floopy-cost"]) == pytest.approx(expected.cost_usd, abs=1e-12)


@kinds
def test_usage_of_a_streamed_answer(kind: str, contract_gateway: Gateway) -> None:
    """The stream's usage chunk; its cost is checked in the log (test_accounting_log.py)."""
    body = {
        "model": f"{kind}/priced",
        "messages": say("a long prompt, cached"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = raw_chunks(contract_gateway, body)
    assert chunks[-1]["choices"] == []
    assert counted(chunks[-1]["usage"]) == tokens_of(PRICED_ACCOUNTING[kind])


# --- failures ------------------------------------------------------------------------------------


@kinds
@pytest.mark.parametrize(
    ("status", "exception", "gateway_status"),
    [
        (401, openai.InternalServerError, 502),
        (429, openai.RateLimitError, 429),
        (500, openai.InternalServerError, 502),
        (529, openai.InternalServerError, 502),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors(
    kind: str,
    status: int,
    exception: type[openai.APIStatusError],
    gateway_status: int,
    stream: bool,
    client: openai.OpenAI,
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(
            model=f"{kind}/error-{status}", messages=say("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == gateway_status
    assert isinstance(error.body, dict) and set(error.body) >= {"message", "type", "code"}
    if status == 429:
        assert error.response.headers["retry-after"] == "7"
        assert error.body["code"] == "RATE_LIMIT_EXCEEDED"
    else:
        assert error.body["code"] == "PROVIDER_ERROR"


@kinds
def test_bad_gateway_key(kind: str, contract_gateway: Gateway) -> None:
    forget(contract_gateway)
    with openai.OpenAI(
        base_url=contract_gateway.base_url, api_key="fpk_wrong", max_retries=0
    ) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model=f"{kind}/plain", messages=say("x"))
        assert caught.value.code == "INVALID_API_KEY"
        assert received(contract_gateway) == [], "a request with a bad key went upstream"


@kinds
def test_stream_cut_midway_reaches_the_client_as_an_error(kind: str, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=f"{kind}/cut-3", messages=say("a long answer"), stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


@kinds
@pytest.mark.parametrize("fault", ["cut-2", "end-2"])
def test_stream_stopping_midway_ends_with_an_error_event_not_done(
    kind: str, fault: str, contract_gateway: Gateway
) -> None:
    """``cut``: the connection drops; ``end``: the upstream closes its answer cleanly but
    half-way, with no finish reason. Either way the client must not take the half answer
    for a whole one."""
    body = {"model": f"{kind}/{fault}", "messages": say("a long answer"), "stream": True}
    events = raw_events(contract_gateway, body)
    assert "[DONE]" not in events
    *chunks, last = [json.loads(data) for data in events]
    assert "choices" not in last, "the stream ends with an error event"
    assert last["error"]["code"] == "PROVIDER_ERROR" and kind in last["error"]["message"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text and "Mock reply to: a long answer".startswith(text)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks if c["choices"])


# --- keys ----------------------------------------------------------------------------------------


def key_in(headers: dict[str, str], key: str) -> bool:
    return any(key in value for value in headers.values())


@kinds
@pytest.mark.parametrize("stream", [False, True])
def test_each_provider_gets_its_own_key_and_nothing_else(
    kind: str, stream: bool, contract_gateway: Gateway, client: openai.OpenAI
) -> None:
    forget(contract_gateway)
    answer = client.chat.completions.create(
        model=f"{kind}/plain", messages=say("whose key?"), stream=stream
    )
    if stream:
        list(answer)  # type: ignore[arg-type]
    (upstream,) = received(contract_gateway)
    headers = {name.lower(): value for name, value in upstream["headers"].items()}
    _, own_key, header = PROVIDER_KEYS[kind]
    assert headers[header].removeprefix("Bearer ") == own_key
    others = [value for other, (_, value, _) in PROVIDER_KEYS.items() if other != kind]
    assert not [key for key in others if key_in(headers, key)], "another provider's key"
    assert not key_in(headers, contract_gateway.key), "the gateway key went upstream"
    assert not key_in(upstream.get("query") or {}, own_key), "the key travelled in the URL"


# --- the Anthropic Messages API in front of every kind -------------------------------------------


@kinds
def test_anthropic_sdk_against_every_kind(kind: str, contract_gateway: Gateway) -> None:
    client = anthropic.Anthropic(
        base_url=contract_gateway.url, api_key=contract_gateway.key, max_retries=0
    )
    message = client.messages.create(
        model=f"{kind}/plain", max_tokens=100, messages=[{"role": "user", "content": "hi there"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Mock reply to: hi there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    tool = {
        "name": "get_weather",
        "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
    }
    with client.messages.stream(
        model=f"{kind}/tools",
        max_tokens=100,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[tool],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    calls = [block for block in final.content if block.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_weather", TOOL_ARGS)]
