"""What a request cost, in USD, from the model catalog's list prices and the request's usage.

Prices are per million tokens and live in ``MODELS`` (settings), so operators override them
there. Usage follows OpenAI's convention whatever the provider (``providers.base.Usage``):
prompt tokens include the cached and cache-write ones, completion tokens include reasoning.
Each token is priced once, at its own rate: cached input at the cached price, cache writes
at the cache-write price, the rest of the prompt at the input price, reasoning at the
reasoning price and the rest of the completion at the output price.

A model is found by the (provider, model) pair that answered, then by its name alone (an
Azure deployment of ``gpt-4o`` costs what ``gpt-4o`` costs), then as a dated snapshot of a
catalog model (``gpt-4o-2024-08-06`` as ``gpt-4o``, ``claude-sonnet-4-5-20250929`` as
``claude-sonnet-4-5``, ``gemini-2.0-flash-001`` as ``gemini-2.0-flash``). Only snapshot
suffixes count: ``gpt-5-pro`` is not ``gpt-5`` and must not be priced as one. Unknown models
have no cost (``None``), which the log keeps apart from free ones (0.0, the echo provider).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floopy.providers.base import Usage
    from floopy.settings import ModelConfig, Settings

PER_TOKEN = 1 / 1_000_000
# What may follow a catalog name in a snapshot of the same model: a date (2024-08-06,
# 20250929, 0613), a version number (001), -latest, or a preview date (-preview-05-20).
_SNAPSHOT_SUFFIX = re.compile(
    r"(-\d{4}-\d{2}-\d{2}|[-@]\d{8}|-\d{4}|-\d{3}|-latest|-preview-\d{2}-\d{2})"
)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, each fallback already applied."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    reasoning: float

    @classmethod
    def of(cls, model: ModelConfig) -> Price:
        return cls(
            input=model.input_price,
            output=model.output_price,
            cached_input=_or(model.cached_input_price, model.input_price),
            cache_write=_or(model.cache_write_price, model.input_price),
            reasoning=_or(model.reasoning_price, model.output_price),
        )

    def cost(self, usage: Usage) -> float:
        cached = max(0, usage.cached_tokens)
        written = max(0, usage.cache_write_tokens)
        uncached = max(0, usage.prompt_tokens - cached - written)
        reasoning = max(0, usage.reasoning_tokens)
        output = max(0, usage.completion_tokens - reasoning)
        micro_usd = (
            uncached * self.input
            + cached * self.cached_input
            + written * self.cache_write
            + output * self.output
            + reasoning * self.reasoning
        )
        return micro_usd * PER_TOKEN


FREE = Price(input=0.0, output=0.0, cached_input=0.0, cache_write=0.0, reasoning=0.0)


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


class PriceBook:
    """The catalog's prices, indexed for the lookups above. Built once per worker."""

    def __init__(self, settings: Settings) -> None:
        self._free_providers = {
            name for name, config in settings.providers.items() if config.kind == "echo"
        }
        self._by_target: dict[tuple[str, str], Price] = {}
        self._by_name: dict[str, Price] = {}
        for name, model in settings.models.items():
            price = Price.of(model)
            upstream = model.upstream_model or name
            self._by_target[(model.provider, upstream)] = price
            self._by_target.setdefault((model.provider, name), price)
            self._by_name.setdefault(name, price)
            self._by_name.setdefault(upstream, price)
        # Longest first, so the most specific catalog name wins.
        self._names_longest_first = sorted(self._by_name, key=len, reverse=True)

    def price(self, provider: str, model: str) -> Price | None:
        if provider in self._free_providers:
            return FREE
        found = self._by_target.get((provider, model)) or self._by_name.get(model)
        return found if found is not None else self._by_snapshot(model)

    def cost(self, provider: str | None, model: str | None, usage: Usage | None) -> float | None:
        """The request's cost in USD; None when the usage or the model's price is unknown."""
        if provider is None or model is None or usage is None:
            return None
        price = self.price(provider, model)
        if price is FREE:
            return 0.0  # what FREE.cost(usage) comes to, whatever the usage
        return None if price is None else price.cost(usage)

    def _by_snapshot(self, model: str) -> Price | None:
        for name in self._names_longest_first:
            if model.startswith(name) and _SNAPSHOT_SUFFIX.fullmatch(model, len(name)):
                return self._by_name[name]
        return None
