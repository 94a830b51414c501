"""Cost from usage and the catalog's prices: each token priced once, in its own class."""

from __future__ import annotations

import pytest

from floopy.pricing import FREE, Price, PriceBook
from floopy.providers.base import Usage
from floopy.settings import ModelConfig, ProviderConfig, Settings, load_settings

PRICED = {
    "input_price": 1.0,
    "output_price": 2.0,
    "cached_input_price": 0.5,
    "cache_write_price": 1.25,
    "reasoning_price": 3.0,
}


def book(**models: ModelConfig) -> PriceBook:
    providers = {
        "openai": ProviderConfig(kind="openai", base_url="https://o", api_key_env="K"),
        "azure": ProviderConfig(
            kind="azure", base_url="https://a", api_key_env="K", api_version="2024-10-21"
        ),
        "echo": ProviderConfig(kind="echo"),
    }
    return PriceBook(Settings(providers=providers, models=models))


def test_each_token_class_at_its_own_price() -> None:
    price = Price.of(ModelConfig(provider="x", **PRICED))
    usage = Usage(
        prompt_tokens=1000,  # 600 uncached + 300 cached + 100 written
        completion_tokens=500,  # 200 output + 300 reasoning
        cached_tokens=300,
        cache_write_tokens=100,
        reasoning_tokens=300,
    )
    expected = 600 * 1.0 + 300 * 0.5 + 100 * 1.25 + 200 * 2.0 + 300 * 3.0
    assert price.cost(usage) == pytest.approx(expected / 1_000_000)


def test_unset_prices_fall_back() -> None:
    price = Price.of(ModelConfig(provider="x", input_price=2.0, output_price=8.0))
    assert (price.cached_input, price.cache_write, price.reasoning) == (2.0, 2.0, 8.0)
    usage = Usage(prompt_tokens=10, completion_tokens=10, cached_tokens=4, reasoning_tokens=5)
    assert price.cost(usage) == pytest.approx((10 * 2.0 + 10 * 8.0) / 1_000_000)


def test_inconsistent_counts_never_cost_less_than_nothing() -> None:
    price = Price.of(ModelConfig(provider="x", **PRICED))
    assert price.cost(Usage(prompt_tokens=5, cached_tokens=50, reasoning_tokens=9)) >= 0


def test_lookups() -> None:
    prices = book(
        **{
            "gpt-4o": ModelConfig(provider="openai", input_price=2.5, output_price=10),
            "gpt-4o-mini": ModelConfig(provider="openai", input_price=0.15, output_price=0.6),
            "cheap": ModelConfig(provider="openai", upstream_model="gpt-x", input_price=9),
            "claude-sonnet-4-5": ModelConfig(provider="openai", input_price=3),
            "gemini-2.0-flash": ModelConfig(provider="openai", input_price=0.1),
            "gpt-5": ModelConfig(provider="openai", input_price=1.25),
        }
    )
    price = prices.price
    assert price("openai", "gpt-x").input == 9  # by the upstream name the provider used
    assert price("azure", "gpt-4o").input == 2.5  # by name, whoever served it
    assert price("openai", "gpt-4o-2024-08-06").input == 2.5  # a dated snapshot
    assert price("openai", "gpt-4o-mini-2024-07-18").input == 0.15
    assert price("openai", "claude-sonnet-4-5-20250929").input == 3
    assert price("openai", "gemini-2.0-flash-001").input == 0.1
    assert price("openai", "gpt-5-pro") is None  # another model, not a snapshot
    assert price("openai", "gpt-4o-audio-preview") is None
    assert price("echo", "gpt-4o") is FREE  # echo answered: nothing was spent
    assert prices.cost("openai", "unknown", Usage(prompt_tokens=1)) is None
    assert prices.cost("openai", "gpt-4o", None) is None
    assert prices.cost(None, None, Usage()) is None
    cost = prices.cost("openai", "gpt-4o", Usage(prompt_tokens=1_000_000))
    assert cost == pytest.approx(2.5)


def test_default_catalog_prices_every_vendor_model() -> None:
    settings = load_settings({})
    for name, model in settings.models.items():
        if model.provider == "echo":
            continue
        assert model.input_price > 0, name
        if not name.startswith(("text-embedding-", "gemini-embedding-")):
            assert model.output_price > model.input_price, name
            assert model.cached_input_price is not None, name
            assert model.cached_input_price < model.input_price, name
        if model.provider == "anthropic":
            assert model.cache_write_price == pytest.approx(model.input_price * 1.25), name
    assert {m.provider for m in settings.models.values()} == {
        "openai",
        "anthropic",
        "gemini",
        "echo",
    }
