"""A gateway with one provider of every kind, all pointing at the mock provider process.

Provider names are the kinds (``openai``, ``azure``, ``gemini``, ``anthropic``), so a test
asks for ``<kind>/<behaviour>`` and the mock's model-name conventions pick the behaviour.
Every (kind, behaviour) pair the tests cost is in the catalog with the same made-up prices,
distinct per token class so that a token priced in the wrong class shows.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from floopy.settings import SETTING_NAMES

from .conftest import TEST_KEY, Gateway, start_gateway, stop, write_settings

KINDS = ("openai", "azure", "gemini", "anthropic")
PRICES = {
    "input_price": 1.0,
    "output_price": 2.0,
    "cached_input_price": 0.5,
    "cache_write_price": 1.25,
    "reasoning_price": 3.0,
}
PRICED_BEHAVIOURS = ("plain", "tools", "parallel-tools", "cached")
TOOL_ARGS = {"location": "Paris, France", "unit": "celsius"}
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
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time of a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


def providers(mock_url: str) -> dict[str, dict[str, Any]]:
    keyed = {"api_key_env": "FLOOPY_TEST_MOCK_KEY"}
    return {
        "openai": {"kind": "openai", "base_url": f"{mock_url}/v1", **keyed},
        "azure": {
            "kind": "azure",
            "base_url": mock_url,
            "api_version": "2024-10-21",
            "deployments": {"mapped": "my-deployment"},
            **keyed,
        },
        "gemini": {"kind": "gemini", "base_url": f"{mock_url}/v1beta", **keyed},
        "anthropic": {"kind": "anthropic", "base_url": mock_url, **keyed},
        "compat": {"kind": "openai_compatible", "base_url": f"{mock_url}/v1"},
        "gemini_badkey": {
            "kind": "gemini",
            "base_url": f"{mock_url}/v1beta",
            "api_key_env": "FLOOPY_TEST_BAD_KEY",
        },
        "echo": {"kind": "echo"},
    }


def models() -> dict[str, dict[str, Any]]:
    catalog: dict[str, dict[str, Any]] = {
        f"{kind}-{behaviour}": {"provider": kind, "upstream_model": behaviour, **PRICES}
        for kind in KINDS
        for behaviour in PRICED_BEHAVIOURS
    }
    catalog["echo"] = {"provider": "echo"}
    return catalog


# The contract holds whichever HTTP client calls the providers (UPSTREAM_CLIENT).
UPSTREAM_CLIENTS = ("native", "aiohttp")


@pytest.fixture(scope="module", params=UPSTREAM_CLIENTS)
def contract_gateway(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp(f"contract-{request.param}")
    extra = {"PROVIDERS": repr(providers(mock_upstream)), "MODELS": repr(models())}
    extra["UPSTREAM_CLIENT"] = repr(request.param)
    if "RETRY_ATTEMPTS" in SETTING_NAMES:
        extra["RETRY_ATTEMPTS"] = "0"  # each error case once, at once
    settings = write_settings(root / "settings.py", mock_upstream, root / "data", **extra)
    url, proc = start_gateway(
        settings, root / "gateway.log", {"FLOOPY_TEST_BAD_KEY": "bad-key-for-gemini"}
    )
    gateway = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root, proc=proc)
    try:
        yield gateway
    finally:
        stop(proc)


def received(gateway: Gateway) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{gateway.mock_url}/_requests") as resp:
        return list(json.load(resp))


def forget(gateway: Gateway) -> None:
    request = urllib.request.Request(f"{gateway.mock_url}/_requests", method="DELETE")
    urllib.request.urlopen(request).close()


def expected_cost(usage: dict[str, Any]) -> float:
    """What the catalog's PRICES make of an OpenAI-format usage object."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") or 0
    written = prompt_details.get("cache_write_tokens") or 0
    reasoning = completion_details.get("reasoning_tokens") or 0
    micro = (
        (usage["prompt_tokens"] - cached - written) * PRICES["input_price"]
        + cached * PRICES["cached_input_price"]
        + written * PRICES["cache_write_price"]
        + (usage["completion_tokens"] - reasoning) * PRICES["output_price"]
        + reasoning * PRICES["reasoning_price"]
    )
    return micro / 1_000_000
