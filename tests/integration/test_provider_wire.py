"""What each provider kind really sends upstream, and the answers only some kinds give:
Gemini's paths, key header, thought signatures, safety stops and stream errors; Azure's
deployment URLs; the output-limit name per model family; resolution by model-name prefix.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from .conftest import Gateway
from .provider_gateway import PROVIDER_KEYS, WEATHER_TOOL, contract_gateway, forget, received

pytestmark = pytest.mark.integration
__all__ = ["contract_gateway"]


@pytest.fixture
def client(contract_gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=contract_gateway.base_url, api_key=contract_gateway.key, max_retries=0
    )


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def last_upstream(gateway: Gateway) -> dict[str, Any]:
    return received(gateway)[-1]


# --- Gemini --------------------------------------------------------------------------------------


def test_gemini_request_on_the_wire(client: openai.OpenAI, contract_gateway: Gateway) -> None:
    forget(contract_gateway)
    client.chat.completions.create(
        model="gemini/plain", messages=say("hi"), temperature=0.3, max_tokens=50, stop=["END"]
    )
    upstream = last_upstream(contract_gateway)
    assert upstream["path"] == "/v1beta/models/plain:generateContent"
    assert upstream["headers"]["x-goog-api-key"] == PROVIDER_KEYS["gemini"][1]
    assert "key" not in upstream["query"], "the key must not travel in the URL"
    assert upstream["body"] == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50, "stopSequences": ["END"]},
    }
    list(client.chat.completions.create(model="gemini/plain", messages=say("hi"), stream=True))
    upstream = last_upstream(contract_gateway)
    assert upstream["path"] == "/v1beta/models/plain:streamGenerateContent"
    assert upstream["query"] == {"alt": "sse"}


def test_gemini_thought_signature_goes_back_with_the_call(
    client: openai.OpenAI, contract_gateway: Gateway
) -> None:
    messages: list[Any] = say("weather?")
    first = client.chat.completions.create(
        model="gemini/tools", messages=messages, tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C"})
    forget(contract_gateway)
    client.chat.completions.create(model="gemini/plain", messages=messages, tools=[WEATHER_TOOL])
    contents = last_upstream(contract_gateway)["body"]["contents"]
    assert contents[1]["parts"][0]["functionCall"]["name"] == "get_weather"
    assert contents[1]["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJlLW9mLXRoZS10aG91Z2h0"
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}}],
    }


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("behaviour", ["blocked", "safety"])
def test_gemini_safety_stops_are_content_filter(
    behaviour: str, stream: bool, client: openai.OpenAI
) -> None:
    if stream:
        chunks = list(
            client.chat.completions.create(
                model=f"gemini/{behaviour}", messages=say("x"), stream=True
            )
        )
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        completion = client.chat.completions.create(model=f"gemini/{behaviour}", messages=say("x"))
        finish = completion.choices[0].finish_reason
    assert finish == "content_filter"


def test_gemini_candidates_are_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gemini/plain", messages=say("two"), n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert {c.message.content for c in completion.choices} == {"Mock reply to: two"}


def test_gemini_max_tokens_is_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gemini/plain", messages=say("a rather long question indeed"), max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize("behaviour", ["fail-2", "bare-2"])
def test_gemini_error_inside_a_stream_reaches_the_client(
    behaviour: str, client: openai.OpenAI
) -> None:
    stream = client.chat.completions.create(
        model=f"gemini/{behaviour}", messages=say("long answer please"), stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_gemini_rejecting_the_gateways_key_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gemini_badkey/plain", messages=say("x"))
    assert caught.value.status_code == 502
    assert "rejected the gateway's credentials" in caught.value.message
    assert "API_KEY_INVALID" in caught.value.message


def test_gemini_refusing_a_body_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini/plain",
            messages=[{"role": "tool", "tool_call_id": "call_unknown", "content": "x"}],
        )
    assert caught.value.body["param"] == "messages[0].tool_call_id"  # type: ignore[index]


# --- Azure and the OpenAI family -----------------------------------------------------------------


def test_azure_deployment_url_and_key(client: openai.OpenAI, contract_gateway: Gateway) -> None:
    forget(contract_gateway)
    client.chat.completions.create(model="azure/plain", messages=say("hi"))
    client.chat.completions.create(model="azure/mapped", messages=say("hi"))
    by_name, mapped = received(contract_gateway)
    assert by_name["path"] == "/openai/deployments/plain/chat/completions"
    assert mapped["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert by_name["query"] == {"api-version": "2024-10-21"}
    assert by_name["headers"]["api-key"] == PROVIDER_KEYS["azure"][1]
    assert "Authorization" not in by_name["headers"]


@pytest.mark.parametrize(
    ("model", "sent", "expected"),
    [
        ("openai/o3-mini", {"max_tokens": 50}, {"max_completion_tokens": 50}),
        ("openai/gpt-5-mini", {"max_tokens": 50}, {"max_completion_tokens": 50}),
        ("openai/gpt-4o", {"max_tokens": 50}, {"max_tokens": 50}),
        ("azure/o4-mini", {"max_tokens": 50}, {"max_completion_tokens": 50}),
        ("compat/llama-3.3", {"max_completion_tokens": 50}, {"max_tokens": 50}),
        ("compat/llama-3.3", {"max_tokens": 50}, {"max_tokens": 50}),
    ],
)
def test_output_limit_named_as_the_model_wants(
    model: str,
    sent: dict[str, int],
    expected: dict[str, int],
    client: openai.OpenAI,
    contract_gateway: Gateway,
) -> None:
    forget(contract_gateway)
    client.chat.completions.create(model=model, messages=say("x"), extra_body=sent)
    body = last_upstream(contract_gateway)["body"]
    limits = {k: v for k, v in body.items() if k in ("max_tokens", "max_completion_tokens")}
    assert limits == expected


def test_compatible_vendor_without_a_key(client: openai.OpenAI, contract_gateway: Gateway) -> None:
    forget(contract_gateway)
    client.chat.completions.create(model="compat/llama-3.3", messages=say("x"))
    assert "Authorization" not in last_upstream(contract_gateway)["headers"]


# --- model resolution ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "path"),
    [
        ("gemini-2.5-flash-001", "gemini", "/v1beta/models/gemini-2.5-flash-001:generateContent"),
        ("claude-sonnet-4-5-20250929", "anthropic", "/v1/messages"),
        ("gpt-4o-2024-08-06", "openai", "/v1/chat/completions"),
        ("o4-mini", "openai", "/v1/chat/completions"),
    ],
)
def test_model_families_resolve_by_prefix(
    model: str, provider: str, path: str, client: openai.OpenAI, contract_gateway: Gateway
) -> None:
    forget(contract_gateway)
    raw = client.chat.completions.with_raw_response.create(model=model, messages=say("x"))
    assert raw.headers["floopy-provider"] == provider
    assert last_upstream(contract_gateway)["path"] == path
    assert "floopy-cost" not in raw.headers, "a model without a price has no cost"


def test_unknown_model_names_what_is_configured(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="llama-3", messages=say("x"))
    message = caught.value.message
    assert "gemini-plain" in message and "compat" in message and "claude-*" in message
    assert json.loads(caught.value.response.text)["error"]["param"] == "model"
