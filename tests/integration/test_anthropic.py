"""Anthropic both ways, through a real gateway process and a mock speaking each wire format:
the openai SDK answered by an Anthropic-speaking provider, and the anthropic SDK on
``/v1/messages`` answered natively by the Anthropic mock or, translated, by the OpenAI one."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from .conftest import TEST_KEY, Gateway, start_gateway, stop

pytestmark = pytest.mark.integration

PROVIDER_KEY = "sk-ant-mock-provider-key"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
CLAUDE_WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
}
PARIS = {"location": "Paris, France", "unit": "celsius"}


def settings_text(mock_url: str, data_dir: Path) -> str:
    key_hash = hashlib.sha256(TEST_KEY.encode()).hexdigest()
    return f"""
DATA_DIR = {str(data_dir)!r}
PROVIDERS = {{
    'mock': {{'kind': 'openai_compatible', 'base_url': '{mock_url}/v1',
              'api_key_env': 'FLOOPY_TEST_MOCK_KEY'}},
    'claude': {{'kind': 'anthropic', 'base_url': '{mock_url}',
                'api_key_env': 'FLOOPY_TEST_ANTHROPIC_KEY'}},
    'echo': {{'kind': 'echo'}},
}}
MODELS = {{
    'gpt-4o-mini': {{'provider': 'mock'}},
    'claude-test': {{'provider': 'claude', 'upstream_model': 'plain', 'max_output_tokens': 2048}},
    'echo': {{'provider': 'echo'}},
}}
API_KEYS = [{{'id': 'test', 'hash': 'sha256:{key_hash}', 'organization': 'acme'}}]
"""


@pytest.fixture(scope="module", params=["native", "python"])
def gateway(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    """Each stream relay (STREAM_RELAY) in turn: both translate the same way."""
    root = tmp_path_factory.mktemp("anthropic")
    settings = root / "settings.py"
    relay = f"STREAM_RELAY = {request.param!r}\n"
    settings.write_text(settings_text(mock_upstream, root / "data") + relay)
    env = {"FLOOPY_TEST_ANTHROPIC_KEY": PROVIDER_KEY}
    url, proc = start_gateway(settings, root / "gateway.log", env)
    try:
        yield Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root, proc=proc)
    finally:
        stop(proc)


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)


@pytest.fixture
def claude(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)


def received(gateway: Gateway) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{gateway.mock_url}/_requests") as resp:
        return list(json.load(resp))


def last_upstream(gateway: Gateway) -> dict[str, Any]:
    return received(gateway)[-1]


def forget(gateway: Gateway) -> None:
    request = urllib.request.Request(f"{gateway.mock_url}/_requests", method="DELETE")
    urllib.request.urlopen(request).close()


def say(text: str) -> list[Any]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def streamed(stream: Any) -> tuple[str, dict[int, dict[str, str]], str | None, list[Any]]:
    """Content, tool calls by index, finish reason and the chunks of an openai SDK stream."""
    content, calls, finish, chunks = "", {}, None, list(stream)
    for chunk in chunks:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                into = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                into["id"] += call.id or ""
                if call.function is not None:
                    into["name"] += call.function.name or ""
                    into["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    return content, calls, finish, chunks


# --- the openai SDK, answered by an Anthropic-speaking provider ----------------------------------


def test_simple_completion(client: openai.OpenAI, gateway: Gateway) -> None:
    forget(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model="claude-test", messages=say("hello there"), temperature=0.3
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello there"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert raw.headers["floopy-provider"] == "claude"
    upstream = last_upstream(gateway)
    assert upstream["path"] == "/v1/messages"
    assert upstream["headers"]["x-api-key"] == PROVIDER_KEY
    assert upstream["headers"]["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in upstream["headers"]
    body = upstream["body"]
    assert body["model"] == "plain"
    assert body["max_tokens"] == 2048  # the catalog's max_output_tokens
    assert body["system"] == [{"type": "text", "text": "Be brief."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
    ]
    assert body["temperature"] == 0.3


def test_stream_hides_usage_not_asked_for(client: openai.OpenAI) -> None:
    text = "a streamed answer in small pieces"
    stream = client.chat.completions.create(model="claude-test", messages=say(text), stream=True)
    content, calls, finish, chunks = streamed(stream)
    assert content == f"Mock reply to: {text}"
    assert (calls, finish) == ({}, "stop")
    assert all(chunk.choices for chunk in chunks)


def test_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude/cached",
        messages=say("count me"),
        stream=True,
        stream_options={"include_usage": True},
    )
    *_, chunks = streamed(stream)
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 40
    # Anthropic counts cached input apart; OpenAI's prompt_tokens include it.
    assert last.usage.prompt_tokens > 60


def test_cache_usage_in_a_whole_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="claude/cached", messages=say("x"))
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 40
    assert usage.prompt_tokens_details.cache_write_tokens == 20


def test_tools(client: openai.OpenAI, gateway: Gateway) -> None:
    forget(gateway)
    completion = client.chat.completions.create(
        model="claude/tools", messages=say("weather in Paris?"), tools=[WEATHER], tool_choice="auto"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id == "toolu_mock_1" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == PARIS  # type: ignore[union-attr]
    body = last_upstream(gateway)["body"]
    assert body["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert body["tool_choice"] == {"type": "auto"}


def test_tools_stream_assembles_split_arguments(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude/tools", messages=say("weather?"), tools=[WEATHER], stream=True
    )
    _, calls, finish, chunks = streamed(stream)
    assert calls[0]["id"] == "toolu_mock_1" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == PARIS
    assert finish == "tool_calls"
    pieces = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(pieces) > 3, "arguments arrive in pieces, as the upstream sent them"


def test_parallel_tool_calls_and_the_follow_up_turn(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    stream = client.chat.completions.create(
        model="claude/parallel-tools", messages=say("both?"), tools=[WEATHER, TIME], stream=True
    )
    content, calls, finish, _ = streamed(stream)
    assert content == "Checking both." and finish == "tool_calls"
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    # The results go back as one user turn of tool_result blocks, as Anthropic requires.
    forget(gateway)
    follow_up = [
        *say("both?"),
        {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": calls[i]["id"],
                    "type": "function",
                    "function": {"name": calls[i]["name"], "arguments": calls[i]["arguments"]},
                }
                for i in (0, 1)
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
    ]
    completion = client.chat.completions.create(
        model="claude-test", messages=follow_up, tools=[WEATHER, TIME], parallel_tool_calls=False
    )
    assert completion.choices[0].finish_reason == "stop"
    body = last_upstream(gateway)["body"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "tool_result"]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


@pytest.mark.parametrize("stream", [False, True])
def test_json_mode(client: openai.OpenAI, gateway: Gateway, stream: bool) -> None:
    forget(gateway)
    answer = client.chat.completions.create(
        model="claude-test",
        messages=say("weather as JSON"),
        response_format={"type": "json_object"},
        stream=stream,
    )
    if stream:
        content, calls, finish, _ = streamed(answer)
    else:
        choice = answer.choices[0]  # type: ignore[union-attr]
        content, calls, finish = (
            choice.message.content,
            choice.message.tool_calls or {},
            choice.finish_reason,
        )
    assert json.loads(content or "") == PARIS
    assert (calls, finish) == ({}, "stop")
    assert last_upstream(gateway)["body"]["tool_choice"]["type"] == "tool"


def test_max_tokens_and_stop_sequences(client: openai.OpenAI, gateway: Gateway) -> None:
    cut = client.chat.completions.create(
        model="claude-test", messages=say("a long question"), max_tokens=2
    )
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "Mock rep"
    stopped = client.chat.completions.create(
        model="claude-test", messages=say("please stop here"), stop=["stop"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == "Mock reply to: please "
    assert last_upstream(gateway)["body"]["stop_sequences"] == ["stop"]


@pytest.mark.parametrize(
    ("status", "exception", "code"),
    [
        (400, openai.BadRequestError, "BAD_REQUEST"),
        (401, openai.InternalServerError, "PROVIDER_ERROR"),  # the gateway's key, not yours
        (429, openai.RateLimitError, "RATE_LIMIT_EXCEEDED"),
        (500, openai.InternalServerError, "PROVIDER_ERROR"),
        (529, openai.InternalServerError, "PROVIDER_ERROR"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors(
    client: openai.OpenAI,
    status: int,
    exception: type[openai.APIStatusError],
    code: str,
    stream: bool,
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(
            model=f"claude/error-{status}", messages=say("x"), stream=stream
        )
    error = caught.value
    assert error.code == code  # type: ignore[attr-defined]
    if status < 500:  # (a 5xx may also have tripped the target's circuit breaker by now)
        assert "mock upstream error" in error.message
    if status == 429:
        assert error.response.headers["retry-after"] == "7"
    if status >= 500:
        assert error.status_code == 502


def test_overloaded_falls_back(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude/error-529",
        messages=say("fall back"),
        extra_headers={"floopy-fallback": "claude-test"},
    )
    assert raw.headers["floopy-fallback-used"] == "true"
    assert raw.parse().choices[0].message.content == "Mock reply to: fall back"


@pytest.mark.parametrize("model", ["claude/fail-2", "claude/cut-2"])
def test_stream_broken_midway_reaches_the_client_as_an_error(
    client: openai.OpenAI, model: str
) -> None:
    stream = client.chat.completions.create(model=model, messages=say("long answer"), stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_bad_gateway_key(gateway: Gateway) -> None:
    with (
        openai.OpenAI(base_url=gateway.base_url, api_key="fpk_wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError),
    ):
        bad.chat.completions.create(model="claude-test", messages=say("x"))


# --- the anthropic SDK on /v1/messages ----------------------------------------------------------


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_messages_native(claude: anthropic.Anthropic, gateway: Gateway) -> None:
    forget(gateway)
    raw = claude.messages.with_raw_response.create(
        model="claude-test",
        max_tokens=300,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=ask("hello there"),
        extra_headers={"anthropic-beta": "some-beta-2025-01-01"},
    )
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Mock reply to: hello there"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert raw.headers["floopy-provider"] == "claude"
    upstream = last_upstream(gateway)
    assert upstream["headers"]["x-api-key"] == PROVIDER_KEY
    assert "Authorization" not in upstream["headers"]
    assert upstream["headers"]["anthropic-beta"] == "some-beta-2025-01-01"
    assert upstream["headers"]["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    # Passed through as sent: only the model is the provider's name for it.
    assert upstream["body"]["model"] == "plain"
    assert upstream["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_messages_native_stream_with_tools(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude/tools", max_tokens=300, messages=ask("weather?"), tools=[CLAUDE_WEATHER]
    ) as stream:
        deltas = [e for e in stream if e.type == "content_block_delta"]
        message = stream.get_final_message()
    assert len(deltas) > 3
    block = message.content[0]
    assert block.type == "tool_use" and block.input == PARIS
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "echo"])
def test_messages_translated(claude: anthropic.Anthropic, gateway: Gateway, model: str) -> None:
    forget(gateway)
    message = claude.messages.create(
        model=model, max_tokens=300, system="Be brief.", messages=ask("hello there")
    )
    expected = "hello there" if model == "echo" else "Mock reply to: hello there"
    assert message.content[0].type == "text" and message.content[0].text == expected
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    if model == "gpt-4o-mini":
        upstream = last_upstream(gateway)
        assert upstream["path"] == "/v1/chat/completions"
        assert upstream["body"]["messages"] == say("hello there")
        assert upstream["body"]["max_tokens"] == 300


def test_messages_translated_stream(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="gpt-4o-mini", max_tokens=300, messages=ask("stream this")
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "Mock reply to: stream this"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_messages_translated_tools(
    claude: anthropic.Anthropic, gateway: Gateway, stream: bool
) -> None:
    params: Any = {
        "model": "mock/tools",
        "max_tokens": 300,
        "messages": ask("weather?"),
        "tools": [CLAUDE_WEATHER],
        "tool_choice": {"type": "any"},
    }
    if stream:
        with claude.messages.stream(**params) as events:
            message = events.get_final_message()
    else:
        message = claude.messages.create(**params)
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == PARIS
    assert message.stop_reason == "tool_use"
    assert last_upstream(gateway)["body"]["tool_choice"] == "required"
    # The tool result goes back through the same translation.
    follow_up = claude.messages.create(
        model="gpt-4o-mini",
        max_tokens=300,
        tools=[CLAUDE_WEATHER],
        messages=[
            *ask("weather?"),
            {"role": "assistant", "content": [block.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "18C"}],
            },
        ],
    )
    assert follow_up.stop_reason == "end_turn"
    sent = last_upstream(gateway)["body"]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": block.id, "content": "18C"}


def test_messages_fall_back_from_anthropic_to_another_format(
    claude: anthropic.Anthropic, gateway: Gateway
) -> None:
    forget(gateway)
    with claude.messages.with_streaming_response.create(
        model="claude/error-503",  # a target no other test has tripped a breaker on
        max_tokens=300,
        messages=ask("fall back"),
        stream=True,
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    ) as response:
        assert response.headers["floopy-fallback-used"] == "true"
        events = list(response.parse())
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "Mock reply to: fall back"
    paths = [r["path"] for r in received(gateway)]
    assert paths[0] == "/v1/messages" and paths[-1] == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("model", "exception", "status"),
    [
        ("claude/error-429", anthropic.RateLimitError, 429),
        ("mock/error-429", anthropic.RateLimitError, 429),
        ("claude/error-400", anthropic.BadRequestError, 400),
        ("claude/error-529", anthropic.InternalServerError, 502),
        ("mock/error-500", anthropic.InternalServerError, 502),
        ("no-such-model", anthropic.BadRequestError, 400),
    ],
)
def test_messages_errors_in_anthropic_shape(
    claude: anthropic.Anthropic, model: str, exception: type[anthropic.APIStatusError], status: int
) -> None:
    with pytest.raises(exception) as caught:
        claude.messages.create(model=model, max_tokens=10, messages=ask("x"))
    error = caught.value
    assert error.status_code == status
    assert isinstance(error.body, dict) and error.body["type"] == "error"
    assert error.body["error"]["type"] == {
        429: "rate_limit_error",
        400: "invalid_request_error",
    }.get(status, "api_error")
    if status == 429:
        assert error.response.headers["retry-after"] == "7"


def test_messages_bad_key(gateway: Gateway) -> None:
    with anthropic.Anthropic(base_url=gateway.url, api_key="fpk_wrong", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            bad.messages.create(model="claude-test", max_tokens=10, messages=ask("x"))
        assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        # x-api-key, as older Anthropic clients send it, is accepted too.
        resp = httpx.post(
            f"{gateway.url}/v1/messages",
            headers={"x-api-key": gateway.key, "anthropic-version": "2023-06-01"},
            json={"model": "echo", "max_tokens": 5, "messages": ask("ok")},
        )
        assert resp.status_code == 200 and resp.json()["content"][0]["text"] == "ok"


def test_messages_malformed_body(gateway: Gateway) -> None:
    resp = httpx.post(
        f"{gateway.url}/v1/messages",
        headers={"x-api-key": gateway.key},
        content=b'{"model": "claude-test", "messages": [',
    )
    assert resp.status_code == 400
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model", ["claude/fail-2", "mock/cut-2"])
def test_messages_stream_broken_midway(claude: anthropic.Anthropic, model: str) -> None:
    with (
        pytest.raises(anthropic.APIError),
        claude.messages.stream(model=model, max_tokens=300, messages=ask("long answer")) as stream,
    ):
        for _ in stream:
            pass
