"""What the log keeps of the cache: status, tier, similarity and the cost a hit saved on the
request row, and a ``cache`` span with one child per tier looked up, with its timing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import TEST_KEY, start_gateway, stop, write_settings
from .logstore import embedded_client, metrics, readiness, sink_metric, wait_for

pytestmark = pytest.mark.integration


def stored(url: str) -> float:
    return metrics(url).get('floopy_cache_stored_total{tier="semantic"}', 0.0)


@pytest.fixture(scope="module")
def logged(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]]:
    root = tmp_path_factory.mktemp("cache_log")
    data = root / "data"
    settings = write_settings(
        root / "settings.py", mock_upstream, data, CACHE_ENABLED="True", LOG_FLUSH_INTERVAL="0.05"
    )
    url, proc = start_gateway(settings, root / "gateway.log")
    ids: dict[str, str] = {}
    try:
        ready = lambda: readiness(url, TEST_KEY)["cache"]["embedder_ready"]  # noqa: E731
        wait_for(ready, "the embedder")
        for outcome, headers, text in (
            ("miss", {}, "log my cache"),
            ("hit", {}, "log my cache"),
            ("stream_hit", {}, "log my cache"),
            ("off", {"floopy-cache-enabled": "false"}, "log my cache"),
            ("semantic_miss", {}, "How do I undo the last git commit?"),
            ("semantic_hit", {}, "How can I undo my last git commit?"),
        ):
            body: dict[str, Any] = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": text}],
                "stream": outcome == "stream_hit",
            }
            before = stored(url)
            response = httpx.post(
                f"{url}/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {TEST_KEY}", **headers},
            )
            assert response.status_code == 200
            ids[outcome] = response.headers["x-request-id"]
            if outcome == "semantic_miss":  # stored after its response: wait before asking
                wait_for(lambda b=before: stored(url) > b, "the semantic tier to store it")
        wait_for(lambda: sink_metric(url, "inserted") >= len(ids), "the rows to be inserted")
    finally:
        stop(proc)
    with embedded_client(data) as client:
        rows = {
            row["request_id"]: row
            for row in client.query("SELECT * FROM floopy.requests FINAL").named_results()
        }
        spans: dict[str, list[dict[str, Any]]] = {}
        for span in client.query("SELECT * FROM floopy.spans FINAL").named_results():
            spans.setdefault(span["request_id"], []).append(span)
    yield ids, rows, spans


def test_the_request_row_says_what_the_cache_did(logged: Any) -> None:
    ids, rows, _ = logged
    miss, hit, stream_hit, off = (rows[ids[k]] for k in ("miss", "hit", "stream_hit", "off"))
    assert (miss["cache_status"], miss["cache_tier"]) == ("MISS", "")
    assert miss["cache_saved_usd"] is None and miss["cost_usd"] > 0
    for row in (hit, stream_hit):
        assert (row["cache_status"], row["cache_tier"]) == ("HIT", "exact")
        assert row["cache_similarity"] is None  # an exact hit has none
        assert row["cache_saved_usd"] == pytest.approx(miss["cost_usd"])
        assert row["cost_usd"] == 0 and row["prompt_tokens"] == 0
        assert (row["provider"], row["model"]) == ("mock", "gpt-4o-mini")
    assert stream_hit["stream"] and stream_hit["finish_reason"] == "stop"
    assert "log my cache" in stream_hit["response_body"]  # the replayed text
    assert (off["cache_status"], off["cache_tier"]) == ("", "")
    assert "cache" in hit["stage_latency_ms"]
    assert "dispatch" not in hit["stage_latency_ms"]  # answered before the provider


def test_a_semantic_hit_records_its_tier_similarity_and_saving(logged: Any) -> None:
    ids, rows, spans = logged
    miss, hit = rows[ids["semantic_miss"]], rows[ids["semantic_hit"]]
    assert (hit["cache_status"], hit["cache_tier"]) == ("HIT", "semantic")
    assert 0.9 <= hit["cache_similarity"] < 1
    assert hit["cache_saved_usd"] == pytest.approx(miss["cost_usd"]) and hit["cost_usd"] == 0
    assert miss["cache_similarity"] is None
    named = {span["name"]: span for span in spans[ids["semantic_hit"]]}
    cache = named["cache"]
    for tier, outcome in (("exact", "miss"), ("semantic", "hit")):
        assert named[tier]["parent_id"] == cache["span_id"]
        assert named[tier]["attributes"]["outcome"] == outcome
        assert 0 <= named[tier]["duration_ms"] <= cache["duration_ms"]
    assert float(named["semantic"]["attributes"]["similarity"]) >= 0.9
    assert "advanced" not in named  # a single-turn request without floopy-cache-advanced


def test_the_cache_span_has_a_timed_child_per_tier(logged: Any) -> None:
    ids, _, spans = logged
    for outcome, result in (("miss", "miss"), ("hit", "hit")):
        named = {span["name"]: span for span in spans[ids[outcome]]}
        cache, exact = named["cache"], named["exact"]
        assert exact["parent_id"] == cache["span_id"]
        assert 0 <= exact["duration_ms"] <= cache["duration_ms"]
        assert exact["attributes"]["outcome"] == result
    assert "exact" not in {span["name"] for span in spans[ids["off"]]}  # not looked up
