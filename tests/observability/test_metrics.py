"""The /metrics histograms and usage counters, read back with Prometheus' own text parser:
bucket placement, the label-set cap and its overflow counter, label escaping."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from floopy.observability.metrics import DURATION_BUCKETS, Metrics
from floopy.observability.record import SINKS


def families(metrics: Metrics) -> dict[str, object]:
    text = metrics.render(None).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(metrics: Metrics, family: str) -> list[object]:
    return list(families(metrics)[family].samples)  # type: ignore[attr-defined]


def observe(metrics: Metrics, model: str, seconds: float, project: str = "p") -> None:
    metrics.requests.observe(
        (model, "mock", "2xx", "miss"),
        project,
        (seconds, seconds / 2, 0.0002, seconds),
        (3, 5),
        0.5,
    )


def test_observations_land_in_their_buckets_cumulatively() -> None:
    metrics = Metrics(SINKS)
    for seconds in (0.0001, 0.0003, 0.9, 45.0, 900.0):
        observe(metrics, "m", seconds)
    buckets = {
        s.labels["le"]: s.value
        for s in samples(metrics, "floopy_request_duration_seconds")
        if s.name.endswith("_bucket")
    }
    assert len(buckets) == len(DURATION_BUCKETS) + 1
    assert buckets["0.00025"] == 1 and buckets["0.0005"] == 2
    assert buckets["1"] == 3 and buckets["60"] == 4 and buckets["600"] == 4
    assert buckets["+Inf"] == 5
    overhead = samples(metrics, "floopy_gateway_overhead_seconds")
    first = next(s for s in overhead if s.name.endswith("_bucket") and s.labels["le"] == "0.00025")
    assert first.value == 5  # 0.2 ms each
    tokens = {s.labels["direction"]: s.value for s in samples(metrics, "floopy_tokens")}
    assert tokens == {"input": 15, "output": 25}
    (cost,) = samples(metrics, "floopy_cost_usd")
    assert cost.value == 2.5 and cost.labels == {"model": "m", "provider": "mock", "project": "p"}


def test_label_sets_are_capped_and_the_overflow_counted() -> None:
    metrics = Metrics(SINKS, max_label_sets=3)
    for i in range(10):
        observe(metrics, f"model-{i}", 0.01, project=f"project-{i}")
    models = {
        s.labels["model"]
        for s in samples(metrics, "floopy_request_duration_seconds")
        if s.name.endswith("_count")
    }
    assert models == {"model-0", "model-1", "model-2", "other"}
    counts = {
        s.labels["model"]: s.value
        for s in samples(metrics, "floopy_request_duration_seconds")
        if s.name.endswith("_count")
    }
    assert counts["other"] == 7
    overflow = samples(metrics, "floopy_metrics_label_sets_overflow")
    assert overflow[0].value == 14  # 7 latency and 7 usage label sets refused
    projects = {s.labels["project"] for s in samples(metrics, "floopy_tokens")}
    assert projects == {"project-0", "project-1", "project-2", "other"}


def test_label_values_are_escaped() -> None:
    metrics = Metrics(SINKS)
    observe(metrics, 'we"ird\\model\nname', 0.01)
    models = {
        s.labels["model"]
        for s in samples(metrics, "floopy_request_duration_seconds")
        if s.name.endswith("_count")
    }
    assert models == {'we"ird\\model\nname'}
