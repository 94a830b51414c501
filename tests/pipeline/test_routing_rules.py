"""Routing rules: each strategy's order, the catalog prices and context windows the cost
strategy reads, the measured latencies the latency strategy reads, and the precedence of the
floopy-routing-rule header over the key's rule over the model name."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from clocks import Clock

from floopy import _native, errors
from floopy.context import RequestContext
from floopy.pipeline import routing
from floopy.pipeline.routing import Router
from floopy.pipeline.routing.latency import LatencyTracker
from floopy.settings import ApiKeyEntry, load_settings

TARGETS = [
    {"provider": "big", "model": "large", "weight": 3},
    {"provider": "small", "model": "tiny", "weight": 1},
    {"provider": "mid", "model": "medium", "weight": 0},
]
PROVIDERS = {
    name: {"kind": "openai_compatible", "base_url": f"http://{name}.test/v1"}
    for name in ("big", "small", "mid")
}
MODELS = {
    "large": {"provider": "big", "input_price": 5.0, "output_price": 15.0},
    "tiny": {"provider": "small", "input_price": 0.1, "output_price": 0.4, "context_window": 100},
    "medium": {"provider": "mid", "input_price": 1.0, "output_price": 2.0},
    "plain": {"provider": "mid", "upstream_model": "medium-2"},
}


def router(strategy: str, latency: LatencyTracker | None = None) -> Router:
    env = {
        "FLOOPY_PROVIDERS": json.dumps(PROVIDERS),
        "FLOOPY_MODELS": json.dumps(MODELS),
        "FLOOPY_ROUTING_RULES": json.dumps(
            {"rule": {"strategy": strategy, "targets": TARGETS}, "other": {"targets": TARGETS[2:]}}
        ),
    }
    settings = load_settings(env)
    return Router(settings, set(), latency)


def names(targets: list[Any]) -> list[str]:
    return [f"{t.provider}/{t.model}" for t in targets]


def test_fallback_keeps_the_listed_order_and_adds_per_request_fallbacks() -> None:
    route = router("fallback").route("ignored", ["plain", "tiny"], rule="rule")
    assert names(route) == ["big/large", "small/tiny", "mid/medium", "mid/medium-2"]


def test_round_robin_starts_at_the_next_target_each_time() -> None:
    r = router("round_robin")
    firsts = [names(r.route("x", rule="rule"))[0] for _ in range(6)]
    assert firsts == ["big/large", "small/tiny", "mid/medium"] * 2
    assert names(r.route("x", rule="rule")) == ["big/large", "small/tiny", "mid/medium"]


def test_weighted_draws_in_proportion_and_zero_weight_only_falls_back() -> None:
    r = router("weighted")
    firsts = Counter(names(r.route("x", rule="rule"))[0] for _ in range(4000))
    assert set(firsts) == {"big/large", "small/tiny"}
    assert 0.70 < firsts["big/large"] / 4000 < 0.80  # weight 3 of 4
    assert all(names(r.route("x", rule="rule"))[-1] == "mid/medium" for _ in range(50))


def test_latency_prefers_the_lowest_recent_p50_and_measures_the_unmeasured_first() -> None:
    clock = Clock()
    latency = LatencyTracker(clock=clock, horizon=60)
    r = router("latency", latency)
    for seconds in (0.9, 1.0, 5.0):
        latency.observe("big", "large", seconds)
    for seconds in (0.5, 0.6, 0.7):
        latency.observe("small", "tiny", seconds)
    assert names(r.route("x", rule="rule"))[0] == "mid/medium", "never measured: tried first"
    for seconds in (2.0, 2.0, 2.0):
        latency.observe("mid", "medium", seconds)
    assert names(r.route("x", rule="rule")) == ["small/tiny", "big/large", "mid/medium"]
    for _ in range(4):  # tiny now fails more often than not: infinitely slow at the median
        latency.observe("small", "tiny", None)
    assert names(r.route("x", rule="rule"))[-1] == "small/tiny"
    clock.advance(61)  # old samples age out, so a shunned target gets measured again
    assert latency.p50("small", "tiny") is None


def test_untracked_targets_are_not_measured() -> None:
    latency = LatencyTracker()
    latency.observe("any", "thing", 1.0)
    assert latency.p50("any", "thing") is None


def test_cost_prefers_the_cheapest_target_that_fits_the_prompt() -> None:
    r = router("cost")
    assert names(r.route("x", rule="rule", prompt_bytes=200)) == [
        "small/tiny",
        "mid/medium",
        "big/large",
    ]
    # About 250 tokens: over tiny's 100-token context window, so it goes last.
    assert names(r.route("x", rule="rule", prompt_bytes=1000)) == [
        "mid/medium",
        "big/large",
        "small/tiny",
    ]


def test_unknown_rule_in_the_header_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest) as caught:
        router("fallback").route("x", rule="nope")
    assert caught.value.param == "floopy-routing-rule"
    assert "other, rule" in caught.value.message


HASH = "sha256:" + "1" * 64


def routed(headers: dict[str, str], key_rule: str | None, body_model: str = "tiny") -> list[str]:
    ctx = RequestContext(request_id="req_1", method="POST", path="/", client_ip="127.0.0.1")
    ctx.headers = _native.HeaderExtractor().extract(headers.items())
    ctx.key = ApiKeyEntry(id="k", hash=HASH, routing_rule=key_rule)
    exchange = SimpleNamespace(
        worker=SimpleNamespace(
            router=router("fallback"), settings=SimpleNamespace(max_targets_per_request=8)
        ),
        ctx=ctx,
        parsed=lambda: SimpleNamespace(model=body_model),
        targets=[],
    )
    asyncio.run(routing.run(exchange))  # type: ignore[arg-type]
    targets = names(exchange.targets)
    assert ctx.routing_rule == (headers.get("floopy-routing-rule") or key_rule)
    return targets


def test_precedence_header_rule_then_key_rule_then_model() -> None:
    assert routed({"floopy-routing-rule": "other"}, "rule") == ["mid/medium"]
    assert routed({}, "other") == ["mid/medium"]
    assert routed({"floopy-model-override": "large"}, "other") == ["mid/medium"]
    assert routed({}, None) == ["small/tiny"]
    assert routed({"floopy-model-override": "large"}, None) == ["big/large"]
    assert routed({"floopy-fallback": "plain"}, None, "tiny,large") == [
        "small/tiny",
        "big/large",
        "mid/medium-2",
    ]
