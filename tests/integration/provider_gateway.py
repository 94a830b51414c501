"""A gateway with one provider of every kind, all pointing at the mock provider process.

Provider names are the kinds (``openai``, ``azure``, ``gemini``, ``anthropic``), so a test
asks for ``<kind>/<behaviour>`` and the mock's model-name conventions pick the behaviour.
Every (kind, behaviour) pair the tests cost is in the catalog with the same made-up prices,
distinct per token class so that a token priced in the wrong class shows.

Each provider has a key of its own (PROVIDER_KEYS), different from the gateway key and from
every other provider's, so a key sent to the wrong provider, or the gateway key sent
upstream, shows in what the mock received.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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
PRICED_BEHAVIOURS = ("plain", "tools", "parallel-tools", "cached", "priced")
# provider -> (environment variable, key value, the header its wire format carries it in)
PROVIDER_KEYS = {
    "openai": ("FLOOPY_TEST_OPENAI_KEY", "sk-openai-contract-1f0c9e7a", "authorization"),
    "azure": ("FLOOPY_TEST_AZURE_KEY", "azure-contract-5b2d8c41", "api-key"),
    "gemini": ("FLOOPY_TEST_GEMINI_KEY", "AIza-gemini-contract-9e4a7f30", "x-goog-api-key"),
    "anthropic": ("FLOOPY_TEST_ANTHROPIC_KEY", "sk-ant-contract-3c6e1b92", "x-api-key"),
}
BAD_GEMINI_KEY = "bad-key-for-gemini"


@dataclass(frozen=True)
class Accounting:
    """What one answer must be counted and cost as: tokens in OpenAI's convention (prompt
    includes cached and cache-write tokens, completion includes reasoning) and USD."""

    prompt: int
    completion: int
    cached: int
    cache_write: int
    reasoning: int
    cost_usd: float

    @property
    def total(self) -> int:
        return self.prompt + self.completion


# The ``priced`` behaviour of each mock sends fixed usage (PRICED_USAGE in its wire module);
# these are worked out by hand from it and PRICES (USD per million tokens: input 1.00,
# cached 0.50, cache write 1.25, output 2.00, reasoning 3.00).
PRICED_ACCOUNTING = {
    # prompt 1,500 of which 1,000 cached; completion 400 of which 120 reasoning:
    # 500 x 1.00 + 1,000 x 0.50 + 280 x 2.00 + 120 x 3.00 = 1,920 micro-USD
    "openai": Accounting(1500, 400, 1000, 0, 120, 0.001920),
    "azure": Accounting(1500, 400, 1000, 0, 120, 0.001920),
    # input_tokens 300 (uncached) + cache read 2,000 + cache write 500 = prompt 2,800;
    # 300 x 1.00 + 2,000 x 0.50 + 500 x 1.25 + 250 x 2.00 = 2,425 micro-USD
    "anthropic": Accounting(2800, 250, 2000, 500, 0, 0.002425),
    # promptTokenCount 1,800 of which 1,200 cached; candidates 300 + thoughts 200 = 500:
    # 600 x 1.00 + 1,200 x 0.50 + 300 x 2.00 + 200 x 3.00 = 2,400 micro-USD
    "gemini": Accounting(1800, 500, 1200, 0, 200, 0.002400),
}
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


def key_env(kind: str) -> dict[str, str]:
    return {"api_key_env": PROVIDER_KEYS[kind][0]}


def key_values() -> dict[str, str]:
    """The environment the gateway needs for every provider's key."""
    values = {env: value for env, value, _ in PROVIDER_KEYS.values()}
    return {**values, "FLOOPY_TEST_BAD_KEY": BAD_GEMINI_KEY}


def providers(mock_url: str) -> dict[str, dict[str, Any]]:
    return {
        "openai": {"kind": "openai", "base_url": f"{mock_url}/v1", **key_env("openai")},
        "azure": {
            "kind": "azure",
            "base_url": mock_url,
            "api_version": "2024-10-21",
            "deployments": {"mapped": "my-deployment"},
            **key_env("azure"),
        },
        "gemini": {"kind": "gemini", "base_url": f"{mock_url}/v1beta", **key_env("gemini")},
        "anthropic": {"kind": "anthropic", "base_url": mock_url, **key_env("anthropic")},
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


# The contract holds whichever HTTP client calls the providers (UPSTREAM_CLIENT) and
# whichever relay reads their streams (STREAM_RELAY: the native one, with no Python step per
# chunk, needs the native client; the Python one works with both).
UPSTREAM_CLIENTS = ("native", "native+python-relay", "aiohttp")


@pytest.fixture(scope="module", params=UPSTREAM_CLIENTS)
def contract_gateway(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp(f"contract-{request.param}")
    extra = {"PROVIDERS": repr(providers(mock_upstream)), "MODELS": repr(models())}
    client, _, python_relay = request.param.partition("+")
    extra["UPSTREAM_CLIENT"] = repr(client)
    extra["STREAM_RELAY"] = repr("python" if python_relay or client == "aiohttp" else "native")
    if "RETRY_ATTEMPTS" in SETTING_NAMES:
        extra["RETRY_ATTEMPTS"] = "0"  # each error case once, at once
    settings = write_settings(root / "settings.py", mock_upstream, root / "data", **extra)
    url, proc = start_gateway(settings, root / "gateway.log", key_values())
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
