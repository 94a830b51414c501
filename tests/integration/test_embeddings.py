"""``POST /v1/embeddings`` through the gateway with the openai SDK: passed through to OpenAI-
compatible providers (Azure included), translated for Gemini, made up by echo, refused for
providers without embeddings."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from .conftest import Gateway
from .provider_gateway import contract_gateway, forget, received

pytestmark = pytest.mark.integration
__all__ = ["contract_gateway"]


@pytest.fixture
def client(contract_gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=contract_gateway.base_url, api_key=contract_gateway.key, max_retries=0
    )


def test_openai_compatible_is_passed_through(
    client: openai.OpenAI, contract_gateway: Gateway
) -> None:
    forget(contract_gateway)
    raw = client.embeddings.with_raw_response.create(
        model="openai-plain", input=["the food was delicious", "and the waiter"]
    )
    answer = raw.parse()  # the SDK asked for base64 and decoded it
    assert [len(item.embedding) for item in answer.data] == [8, 8]
    assert answer.usage.prompt_tokens == 7
    assert raw.headers["floopy-provider"] == "openai"
    assert float(raw.headers["floopy-cost"]) == pytest.approx(7 / 1_000_000)
    upstream = received(contract_gateway)[-1]
    assert upstream["path"] == "/v1/embeddings"
    assert upstream["body"]["model"] == "plain"  # the catalog's upstream name
    assert upstream["body"]["encoding_format"] == "base64"


def test_azure_deployment(client: openai.OpenAI, contract_gateway: Gateway) -> None:
    forget(contract_gateway)
    answer = client.embeddings.create(model="azure/mapped", input="hi", encoding_format="float")
    assert len(answer.data[0].embedding) == 8
    upstream = received(contract_gateway)[-1]
    assert upstream["path"] == "/openai/deployments/my-deployment/embeddings"
    assert upstream["query"] == {"api-version": "2024-10-21"}


def test_gemini_one_text(client: openai.OpenAI, contract_gateway: Gateway) -> None:
    forget(contract_gateway)
    floats = client.embeddings.create(
        model="gemini/embedder", input="hello", encoding_format="float", dimensions=4
    )
    upstream = received(contract_gateway)[-1]
    assert upstream["path"] == "/v1beta/models/embedder:embedContent"
    assert upstream["body"] == {
        "content": {"parts": [{"text": "hello"}]},
        "outputDimensionality": 4,
    }
    assert len(floats.data[0].embedding) == 4
    assert floats.model == "embedder" and floats.usage.prompt_tokens == 0
    base64 = client.embeddings.create(model="gemini/embedder", input="hello", dimensions=4)
    assert base64.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_gemini_several_texts_in_a_batch(client: openai.OpenAI, contract_gateway: Gateway) -> None:
    forget(contract_gateway)
    answer = client.embeddings.create(model="gemini/embedder", input=["a", "b", "a"])
    upstream = received(contract_gateway)[-1]
    assert upstream["path"] == "/v1beta/models/embedder:batchEmbedContents"
    assert [r["model"] for r in upstream["body"]["requests"]] == ["models/embedder"] * 3
    vectors = [item.embedding for item in answer.data]
    assert [item.index for item in answer.data] == [0, 1, 2]
    assert vectors[0] == vectors[2] != vectors[1]


def test_echo_is_deterministic(client: openai.OpenAI) -> None:
    first = client.embeddings.create(model="echo", input=["same text", "other"])
    again = client.embeddings.create(model="echo", input="same text", encoding_format="float")
    vector = first.data[0].embedding
    assert len(vector) == 64 and math.isclose(math.fsum(v * v for v in vector), 1, rel_tol=1e-5)
    assert again.data[0].embedding == pytest.approx(vector, abs=1e-6)
    assert first.data[1].embedding != vector


def test_provider_without_embeddings_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="anthropic/plain", input="x")
    assert "anthropic" in caught.value.message and "no embeddings" in caught.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "echo", "input": []}, "input"),
        ({"model": "echo", "input": [1, "a"]}, "input"),
        ({"model": "echo", "input": {"text": "a"}}, "input"),
        ({"model": "echo"}, None),
        ({"model": "echo", "input": "a", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "echo", "input": "a", "dimensions": 0}, "dimensions"),
        ({"model": "gemini/embedder", "input": [[1, 2], [3]]}, "input"),
    ],
)
def test_bad_requests_name_the_field(
    body: dict[str, object], param: str | None, contract_gateway: Gateway
) -> None:
    resp = httpx.post(
        f"{contract_gateway.base_url}/embeddings",
        json=body,
        headers={"Authorization": f"Bearer {contract_gateway.key}"},
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "BAD_REQUEST"
    if param is not None:
        assert error["param"] == param


def test_upstream_errors_are_mapped(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.embeddings.create(model="openai/error-429", input="x")
    assert caught.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="gemini/error-429", input="x")
    with pytest.raises(openai.InternalServerError) as failed:
        client.embeddings.create(model="gemini_badkey/embedder", input="x")
    assert failed.value.status_code == 502


def test_bad_gateway_key(contract_gateway: Gateway) -> None:
    with (
        openai.OpenAI(
            base_url=contract_gateway.base_url, api_key="fpk_wrong", max_retries=0
        ) as bad,
        pytest.raises(openai.AuthenticationError),
    ):
        bad.embeddings.create(model="echo", input="x")


@pytest.mark.parametrize("depth", [65, 100, 1000])
def test_input_nested_past_the_depth_limit_is_refused_before_any_call(
    depth: int, contract_gateway: Gateway
) -> None:
    forget(contract_gateway)
    nested = "[" * depth + "1" + "]" * depth
    resp = httpx.post(
        f"{contract_gateway.base_url}/embeddings",
        content=f'{{"model": "openai/text-embedding-3-small", "input": {nested}}}',
        headers={
            "Authorization": f"Bearer {contract_gateway.key}",
            "Content-Type": "application/json",
        },
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "BAD_REQUEST"
    assert "deep" in resp.json()["error"]["message"] or "depth" in resp.json()["error"]["message"]
    assert received(contract_gateway) == []
