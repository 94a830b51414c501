"""The rest of the API surface the SDKs reach for: ``models.retrieve`` in both SDKs (OpenAI's
and Anthropic's model shapes, 404 ``model_not_found``), the anthropic SDK's
``messages.count_tokens`` (Anthropic's own count for Claude targets, a clear 400 for the
others), and every error under ``/v1/messages`` in Anthropic's envelope, before any routing
too (404, 405, 401)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from .conftest import Gateway
from .provider_gateway import PROVIDER_KEYS, contract_gateway, forget, received

pytestmark = pytest.mark.integration
__all__ = ["contract_gateway"]  # the module-scoped gateway these tests share

MESSAGES = [{"role": "user", "content": "How many tokens is this?"}]


@pytest.fixture
def openai_client(contract_gateway: Gateway) -> Iterator[openai.OpenAI]:
    gateway = contract_gateway
    with openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0) as client:
        yield client


@pytest.fixture
def anthropic_client(contract_gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    gateway = contract_gateway
    with anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0) as client:
        yield client


# --- models.retrieve ----------------------------------------------------------------------------


def test_openai_models_retrieve(openai_client: openai.OpenAI) -> None:
    model = openai_client.models.retrieve("anthropic-plain")
    assert (model.id, model.object, model.owned_by) == ("anthropic-plain", "model", "anthropic")
    assert model.created > 0


def test_openai_models_retrieve_unknown(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    assert "no-such-model" in caught.value.message


def test_anthropic_models_retrieve(anthropic_client: anthropic.Anthropic) -> None:
    model = anthropic_client.models.retrieve("anthropic-priced")
    assert (model.id, model.type, model.display_name) == (
        "anthropic-priced",
        "model",
        "anthropic-priced",
    )
    assert model.created_at.year >= 2024


def test_anthropic_models_list(anthropic_client: anthropic.Anthropic) -> None:
    page = anthropic_client.models.list()
    ids = [model.id for model in page.data]
    assert "anthropic-plain" in ids and ids == sorted(ids)
    assert all(model.type == "model" for model in page.data)
    assert page.has_more is False


def test_anthropic_models_retrieve_unknown(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client.models.retrieve("no-such-model")
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"


def test_models_retrieve_needs_a_key(contract_gateway: Gateway) -> None:
    resp = httpx.get(f"{contract_gateway.base_url}/models/anthropic-plain")
    assert resp.status_code == 401


# --- messages.count_tokens ----------------------------------------------------------------------


def test_count_tokens_for_a_claude_model(
    contract_gateway: Gateway, anthropic_client: anthropic.Anthropic
) -> None:
    forget(contract_gateway)
    counted = anthropic_client.messages.count_tokens(
        model="anthropic/plain",
        messages=MESSAGES,
        system="Be brief.",  # type: ignore[arg-type]
    )
    expected = len(json.dumps(MESSAGES)) // 4 + len(json.dumps("Be brief.")) // 4
    expected += len(json.dumps([])) // 4
    assert counted.input_tokens == expected
    (seen,) = received(contract_gateway)
    assert seen["path"] == "/v1/messages/count_tokens"
    assert seen["body"]["model"] == "plain"
    _, key, header = PROVIDER_KEYS["anthropic"]
    assert seen["headers"][header] == key  # the provider's key, not the gateway's
    assert seen["headers"]["anthropic-version"]


@pytest.mark.parametrize("model", ["openai/plain", "gemini/plain"])
def test_count_tokens_elsewhere_is_a_clear_bad_request(
    model: str, anthropic_client: anthropic.Anthropic
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client.messages.count_tokens(
            model=model,
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    assert "counting tokens is not available" in str(caught.value)


# --- Anthropic's envelope on every /v1/messages path --------------------------------------------


def anthropic_error(resp: httpx.Response, status: int) -> dict[str, str]:
    assert resp.status_code == status
    body = resp.json()
    assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}
    return dict(body["error"])


def test_unknown_messages_path_is_an_anthropic_404(contract_gateway: Gateway) -> None:
    resp = httpx.post(
        f"{contract_gateway.base_url}/messages/batches_nope",
        headers={"x-api-key": contract_gateway.key},
        json={},
    )
    assert anthropic_error(resp, 404)["type"] == "not_found_error"


def test_wrong_method_on_messages_is_an_anthropic_405(contract_gateway: Gateway) -> None:
    resp = httpx.get(f"{contract_gateway.base_url}/messages/count_tokens")
    anthropic_error(resp, 405)
    assert resp.headers["allow"] == "POST"


def test_missing_key_on_count_tokens_is_an_anthropic_401(contract_gateway: Gateway) -> None:
    resp = httpx.post(
        f"{contract_gateway.base_url}/messages/count_tokens",
        json={"model": "anthropic/plain", "messages": MESSAGES},
    )
    assert anthropic_error(resp, 401)["type"] == "authentication_error"


def test_other_paths_keep_openai_envelope(contract_gateway: Gateway) -> None:
    resp = httpx.get(f"{contract_gateway.base_url}/nothing-here")
    assert resp.status_code == 404 and "type" in resp.json()["error"]
    assert "type" not in resp.json() or resp.json().get("type") != "error"
