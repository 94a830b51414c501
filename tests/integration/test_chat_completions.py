"""The gateway driven by the official openai SDK, against a mock provider process."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import httpx
import openai
import pytest

from .conftest import Gateway

pytestmark = pytest.mark.integration

WEATHER_TOOL = {
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


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)


def received(gateway: Gateway) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{gateway.mock_url}/_requests") as resp:
        return list(json.load(resp))


def forget(gateway: Gateway) -> None:
    request = urllib.request.Request(f"{gateway.mock_url}/_requests", method="DELETE")
    urllib.request.urlopen(request).close()


def say(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_non_stream_completion(client: openai.OpenAI, gateway: Gateway) -> None:
    forget(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=say("hello there")
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["floopy-provider"] == "mock"
    assert raw.headers["floopy-model"] == "gpt-4o-mini"
    assert raw.headers["floopy-fallback-used"] == "false"
    assert raw.headers["x-request-id"].startswith("req_")
    upstream = received(gateway)[-1]
    assert upstream["headers"]["Authorization"] == "Bearer sk-mock-upstream-key"
    assert upstream["body"]["messages"] == say("hello there")


def test_stream_relays_content_and_hides_usage_not_asked_for(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    forget(gateway)
    text = "a streamed answer, please, in many small pieces"
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=say(text), stream=True)
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == f"Mock reply to: {text}"
    assert all(c.choices for c in chunks), "a usage chunk the client did not ask for leaked"
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The gateway asked the provider for usage so the request can be costed.
    assert received(gateway)[-1]["body"]["stream_options"] == {"include_usage": True}


def test_stream_with_usage_requested(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=say("count me"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stream_headers(gateway: Gateway) -> None:
    body = {"model": "gpt-4o-mini", "messages": say("hi"), "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gateway.key}"},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        assert resp.headers["floopy-provider"] == "mock"
        text = resp.read().decode()
    assert text.rstrip().endswith("data: [DONE]")


def test_tools_non_stream(client: openai.OpenAI) -> None:
    # floopy-model-override replaces the body's model.
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=say("weather in Paris?"),
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        extra_headers={"floopy-model-override": "mock/tools"},
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}


def test_tools_stream_assembles_split_arguments(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock/tools", messages=say("weather in Paris?"), tools=[WEATHER_TOOL], stream=True
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            name += call.function.name or "" if call.function else ""
            arguments += call.function.arguments or "" if call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert json.loads(arguments) == {"location": "Paris, France", "unit": "celsius"}
    assert finish == "tool_calls"


def test_catalog_renames_model_upstream(client: openai.OpenAI, gateway: Gateway) -> None:
    forget(gateway)
    raw = client.chat.completions.with_raw_response.create(model="mock-alias", messages=say("x"))
    assert raw.headers["floopy-model"] == "renamed-upstream"
    assert received(gateway)[-1]["body"]["model"] == "renamed-upstream"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_upstream_errors_mapped_into_envelope(
    client: openai.OpenAI, status: int, exception: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=f"mock/error-{status}", messages=say("x"))
    error = caught.value
    assert "mock upstream error" in error.message
    body = error.body
    assert isinstance(body, dict) and set(body) >= {"message", "type", "code", "param"}
    if status >= 500:
        assert error.status_code == 502 and body["code"] == "PROVIDER_ERROR"
    if status == 429:
        assert error.response.headers["retry-after"] == "7"
        assert body["code"] == "RATE_LIMIT_EXCEEDED"


def test_upstream_rejecting_gateway_credentials_is_a_gateway_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="mock/error-401", messages=say("x"))
    assert caught.value.status_code == 502


def test_bad_key(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key="fpk_wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model="gpt-4o-mini", messages=say("x"))
        assert caught.value.code == "INVALID_API_KEY"
        assert "fpk_wrong" not in caught.value.message


def test_missing_key(gateway: Gateway) -> None:
    resp = httpx.post(f"{gateway.base_url}/chat/completions", json={"model": "x"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "INVALID_API_KEY"


def post_raw(gateway: Gateway, content: bytes, **headers: str | bytes) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=content,
        headers={
            "Authorization": f"Bearer {gateway.key}",
            "content-type": "application/json",
            **headers,
        },
    )


def test_malformed_json(gateway: Gateway) -> None:
    resp = post_raw(gateway, b'{"model": "gpt-4o-mini", "messages": [')
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "BAD_REQUEST" and error["type"] == "invalid_request_error"
    assert resp.headers["x-request-id"]


def test_wrong_type_names_the_field(gateway: Gateway) -> None:
    resp = post_raw(
        gateway,
        json.dumps({"model": "gpt-4o-mini", "messages": say("x"), "stream": "yes"}).encode(),
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "stream"


def test_oversized_body_is_413(gateway: Gateway, client: openai.OpenAI) -> None:
    resp = post_raw(gateway, b'{"model": "gpt-4o-mini", "messages": "' + b"x" * 1_200_000 + b'"}')
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=say("y" * 1_100_000))
    assert caught.value.status_code == 413


def test_bad_header_value(gateway: Gateway) -> None:
    resp = post_raw(
        gateway,
        json.dumps({"model": "gpt-4o-mini", "messages": say("x")}).encode(),
        **{"floopy-cache-enabled": "perhaps"},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "floopy-cache-enabled"


@pytest.mark.parametrize("value", [b"\xff\xfe", "Caf\u00e9".encode()], ids=["bytes", "utf8"])
def test_unreadable_header_value_is_refused(gateway: Gateway, value: bytes) -> None:
    # The server cannot hand such a value over as text; acting as if the header were absent
    # would lose the session silently, so the gateway answers 400 naming it.
    resp = post_raw(
        gateway,
        json.dumps({"model": "gpt-4o-mini", "messages": say("x")}).encode(),
        **{"floopy-session-name": value},
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == "floopy-session-name"
    assert error["code"] == "BAD_REQUEST" and error["type"] == "invalid_request_error"
    assert "outside printable ASCII" in error["message"]


def test_unknown_model_names_what_is_configured(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="no-such-model", messages=say("x"))
    assert "gpt-4o-mini" in caught.value.message
    assert caught.value.param == "model"  # type: ignore[attr-defined]


def test_stream_cut_midway_reaches_client_as_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock/cut-3", messages=say("long answer"), stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_models_list(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"gpt-4o-mini", "mock-alias", "echo"} <= ids


def test_healthz_and_unknown_route(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    resp = httpx.get(f"{gateway.url}/v2/nothing")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"
    resp = httpx.get(f"{gateway.base_url}/chat/completions")
    assert resp.status_code == 405


def test_echo_provider(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="echo", messages=say("ping pong"))
    assert completion.choices[0].message.content == "ping pong"
    chunks = list(
        client.chat.completions.create(model="echo", messages=say("ping pong"), stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ping pong"


def test_client_disconnect_cancels_the_upstream_call(gateway: Gateway) -> None:
    forget(gateway)
    body = {"model": "mock/drip-50", "messages": say("drip"), "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gateway.key}"},
    ) as resp:
        first = next(resp.iter_bytes())
        assert b"drop0" in first
    # The client is gone: the gateway must drop the upstream call, not read it to the end.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not received(gateway)[-1].get("client_gone"):
        time.sleep(0.05)
    record = received(gateway)[-1]
    assert record.get("client_gone") is True
    assert record["chunks_sent"] < 200


def test_stream_failing_before_first_event_gets_a_real_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="mock/error-429", messages=say("x"), stream=True)
    assert caught.value.response.headers["content-type"] == "application/json"
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="mock/error-503", messages=say("x"), stream=True)
    assert failed.value.status_code == 502


def test_fallback_chain_from_header(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mock/error-500",
        messages=say("fall back"),
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    )
    assert raw.headers["floopy-fallback-used"] == "true"
    assert raw.headers["floopy-model"] == "gpt-4o-mini"
    assert raw.parse().choices[0].message.content == "Mock reply to: fall back"
