"""Routing rules (``ROUTING_RULES``): the order in which a rule's targets are tried.

fallback     the order listed
round_robin  each request starts at the next target, in listed order after it
weighted     targets drawn at random in proportion to their weight, without replacement
             (weight 0: only ever a fallback)
latency      lowest recent p50 first (``LatencyTracker``); unmeasured targets first, so
             they get measured
cost         cheapest first among the targets whose context window holds the request (list
             price: input plus output price per 1M tokens); those it does not fit, and those
             without a price, after the others

With every strategy, the targets after the first are its fallbacks. Round-robin counters and
latencies are per worker process.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from floopy.pricing import PriceBook

if TYPE_CHECKING:
    from floopy.pipeline.routing.latency import LatencyTracker
    from floopy.pipeline.routing.target import Target
    from floopy.settings import RoutingRule, Settings

BYTES_PER_TOKEN = 4  # a rough prompt-size estimate, enough to rule out small context windows


@dataclass(frozen=True, slots=True)
class RuleTarget:
    """A rule's target as configured (provider and model as the provider knows it), and
    the target actually called (the echo stand-in when the provider has no key)."""

    provider: str
    model: str
    weight: float
    target: Target


class CompiledRule:
    def __init__(
        self,
        name: str,
        rule: RoutingRule,
        resolve: Callable[[str, str], Target],
        prices: PriceBook,
        settings: Settings,
        latency: LatencyTracker,
        random_: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.strategy = rule.strategy
        self.targets = tuple(
            RuleTarget(t.provider, t.model, t.weight, resolve(t.provider, t.model))
            for t in rule.targets
        )
        self._prices = {t: _list_price(prices, t.provider, t.model) for t in self.targets}
        self._windows = {t: _context_window(settings, t.provider, t.model) for t in self.targets}
        self._latency = latency
        if rule.strategy == "latency":
            for rule_target in self.targets:
                latency.track(rule_target.target.provider, rule_target.target.model)
        self._random = random_
        self._turn = itertools.count()
        self._order: Callable[[int], list[RuleTarget]] = {
            "fallback": self._listed,
            "round_robin": self._round_robin,
            "weighted": self._weighted,
            "latency": self._fastest,
            "cost": self._cheapest,
        }[rule.strategy]

    def order(self, prompt_bytes: int) -> list[Target]:
        return [rule_target.target for rule_target in self._order(prompt_bytes)]

    def _listed(self, prompt_bytes: int) -> list[RuleTarget]:
        return list(self.targets)

    def _round_robin(self, prompt_bytes: int) -> list[RuleTarget]:
        start = next(self._turn) % len(self.targets)
        return list(self.targets[start:] + self.targets[:start])

    def _weighted(self, prompt_bytes: int) -> list[RuleTarget]:
        # Efraimidis-Spirakis: sorting by u ** (1 / w) draws without replacement in
        # proportion to the weights.
        def draw(target: RuleTarget) -> float:
            return self._random() ** (1 / target.weight) if target.weight > 0 else -1.0

        return sorted(self.targets, key=draw, reverse=True)

    def _fastest(self, prompt_bytes: int) -> list[RuleTarget]:
        def p50(rule_target: RuleTarget) -> float:
            target = rule_target.target
            measured = self._latency.p50(target.provider, target.model)
            return -1.0 if measured is None else measured

        return sorted(self.targets, key=p50)

    def _cheapest(self, prompt_bytes: int) -> list[RuleTarget]:
        tokens = prompt_bytes // BYTES_PER_TOKEN

        def rank(target: RuleTarget) -> tuple[bool, float]:
            window = self._windows[target]
            fits = window is None or tokens <= window
            price = self._prices[target]
            return (not fits, math.inf if price is None else price)

        return sorted(self.targets, key=rank)


def _list_price(prices: PriceBook, provider: str, model: str) -> float | None:
    price = prices.price(provider, model)
    return None if price is None else price.input + price.output


def _context_window(settings: Settings, provider: str, model: str) -> int | None:
    for name, entry in settings.models.items():
        if entry.provider == provider and (entry.upstream_model or name) == model:
            return entry.context_window
    return None


def compile_rules(
    settings: Settings, resolve: Callable[[str, str], Target], latency: LatencyTracker
) -> dict[str, CompiledRule]:
    prices = PriceBook(settings)
    return {
        name: CompiledRule(name, rule, resolve, prices, settings, latency)
        for name, rule in settings.routing_rules.items()
    }
