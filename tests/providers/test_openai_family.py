"""The OpenAI wire format as configuration: presets, Azure URLs, the output limit's name."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from floopy.providers.base import Call
from floopy.providers.http import Timeouts
from floopy.providers.openai import AzureOpenAIProvider, OpenAIProvider
from floopy.providers.presets import PRESETS
from floopy.settings import ProviderConfig

VENDORS = (
    "openai",
    "groq",
    "mistral",
    "deepseek",
    "together",
    "fireworks",
    "xai",
    "perplexity",
    "openrouter",
    "cerebras",
    "ollama",
    "vllm",
)


def openai_provider(kind: str) -> OpenAIProvider:
    return OpenAIProvider(
        "p",
        kind,
        base_url="https://api.example.com/v1/",
        api_key="sk",
        extra_headers={},
        upstream=None,  # type: ignore[arg-type]  # no call goes out in these tests
        timeouts=Timeouts(connect=1, first_byte=1, total=1),
    )


def call(model: str, stream: bool = False, **body: Any) -> Call:
    raw = msgspec.json.encode({"model": model, "messages": [], **body})
    return Call(body=raw, model=model, requested_model=model, stream=stream, include_usage=False)


def sent(provider: OpenAIProvider, request: Call, ask_usage: bool = False) -> dict[str, Any]:
    return dict(json.loads(provider._body(request, ask_usage=ask_usage)))


def test_every_vendor_preset_is_valid_settings() -> None:
    assert set(VENDORS) <= set(PRESETS)
    for name, preset in PRESETS.items():
        config = msgspec.convert(preset, ProviderConfig)
        assert config.kind in ("openai", "openai_compatible", "anthropic", "gemini"), name
    assert not msgspec.convert(PRESETS["ollama"], ProviderConfig).needs_key
    assert not msgspec.convert(PRESETS["vllm"], ProviderConfig).needs_key


def test_the_body_goes_as_sent_when_nothing_needs_changing() -> None:
    request = call("gpt-4o", max_tokens=5)
    assert openai_provider("openai")._body(request, ask_usage=False) is request.body


@pytest.mark.parametrize(
    "model", ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5-nano", "gpt-5.1"]
)
def test_reasoning_models_get_max_completion_tokens(model: str) -> None:
    body = sent(openai_provider("openai"), call(model, max_tokens=5))
    assert body.get("max_completion_tokens") == 5 and "max_tokens" not in body


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "o5", "gpt-50"])
def test_other_openai_models_keep_max_tokens(model: str) -> None:
    assert sent(openai_provider("openai"), call(model, max_tokens=5))["max_tokens"] == 5


def test_compatible_vendors_get_max_tokens() -> None:
    body = sent(openai_provider("openai_compatible"), call("llama", max_completion_tokens=7))
    assert body.get("max_tokens") == 7 and "max_completion_tokens" not in body
    both = sent(
        openai_provider("openai_compatible"),
        call("llama", max_completion_tokens=7, max_tokens=3),
    )
    assert both["max_tokens"] == 3 and "max_completion_tokens" not in both


def test_a_limit_named_only_in_a_message_is_left_alone() -> None:
    request = call("o3", messages=[{"role": "user", "content": '"max_tokens"'}])
    assert sent(openai_provider("openai"), request)["messages"][0]["content"] == '"max_tokens"'


def test_streams_ask_for_usage() -> None:
    body = sent(openai_provider("openai"), call("gpt-4o", stream=True), ask_usage=True)
    assert body["stream_options"] == {"include_usage": True}


def test_azure_deployment_urls() -> None:
    azure = AzureOpenAIProvider(
        "az",
        base_url="https://res.openai.azure.com/",
        api_key="k",
        api_version="2024-10-21",
        deployments={"gpt-4o": "prod 4o"},
        extra_headers={},
        upstream=None,  # type: ignore[arg-type]
        timeouts=Timeouts(connect=1, first_byte=1, total=1),
    )
    assert azure._endpoint("gpt-4o", "chat/completions") == (
        "https://res.openai.azure.com/openai/deployments/prod%204o/chat/completions"
        "?api-version=2024-10-21"
    )
    assert azure._endpoint("o3", "embeddings").startswith(
        "https://res.openai.azure.com/openai/deployments/o3/embeddings?"
    )
    assert azure._headers["api-key"] == "k" and "Authorization" not in azure._headers
    assert sent(azure, call("o3", max_tokens=5))["max_completion_tokens"] == 5


def test_azure_needs_its_api_version() -> None:
    with pytest.raises(ValueError, match="api_version is required"):
        ProviderConfig(kind="azure", base_url="https://r", api_key_env="K")
    with pytest.raises(ValueError, match="for kind 'azure', not 'openai'"):
        ProviderConfig(kind="openai", base_url="https://r", api_key_env="K", api_version="v")
