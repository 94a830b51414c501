"""Every request through a real gateway lands in the embedded ClickHouse, whatever its
outcome, with its session, user, project, properties, tokens, cost, stage latencies and
spans. The gateway is stopped before the rows are read (one process per embedded store)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .conftest import TEST_KEY, start_gateway, stop, write_settings
from .logstore import embedded_client, metrics, readiness, sink_metric, wait_for

pytestmark = pytest.mark.integration

EVERY_SCRUB = "('emails', 'card_numbers', 'phone_numbers', 'api_keys', 'bearer_tokens')"
SESSION_HEADERS = {
    "floopy-session-id": "sess-1",
    "floopy-session-name": "checkout",
    "floopy-session-path": "/cart/pay",
    "floopy-user-id": "user-42",
    "floopy-property-env": "staging",
    "floopy-property-contact": "ops@example.com",
}


@dataclass
class Logged:
    ids: dict[str, str]  # outcome -> request id
    requests: dict[str, dict[str, Any]]  # request id -> row
    spans: dict[str, list[dict[str, Any]]]  # request id -> spans
    breaker_events: list[dict[str, Any]]
    metrics_while_running: dict[str, float]
    ready_while_running: dict[str, Any]


def say(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def drive(url: str) -> dict[str, str]:
    """One request per outcome; returns their request ids."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    ids: dict[str, str] = {}
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=say("hi, I am jane@example.com, card 4111 1111 1111 1111"),
        extra_headers=SESSION_HEADERS,
    )
    ids["success"] = raw.headers["x-request-id"]
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=say("stream this"),
        stream=True,
        stream_options={"include_usage": True},
    ) as resp:
        ids["stream"] = resp.headers["x-request-id"]
        "".join(resp.iter_lines())
    raw = client.chat.completions.with_raw_response.create(
        model="mock/error-503",
        messages=say("fall back"),
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    )
    ids["fallback"] = raw.headers["x-request-id"]
    with pytest.raises(openai.APIStatusError) as upstream:
        client.chat.completions.create(model="mock/error-500", messages=say("fail"))
    ids["upstream_error"] = upstream.value.response.headers["x-request-id"]
    # Closed here: a client caught up in an exception's traceback is freed by the cycle
    # collector, which may finalize its pooled socket first (a ResourceWarning).
    with (
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError) as unauthorized,
    ):
        stranger.models.list()
    ids["unauthorized"] = unauthorized.value.response.headers["x-request-id"]
    bad = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "gpt-4o-mini"},
        headers={"authorization": f"Bearer {TEST_KEY}"},
    )
    ids["bad_request"] = bad.headers["x-request-id"]
    with client.chat.completions.with_streaming_response.create(
        model="mock/cut-2", messages=say("cut short"), stream=True
    ) as resp:
        ids["broken_stream"] = resp.headers["x-request-id"]
        assert any('"error"' in line for line in resp.iter_lines())  # ended with an error event
    with client.chat.completions.with_streaming_response.create(
        model="mock/drip-50", messages=say("leave early"), stream=True
    ) as resp:
        ids["disconnect"] = resp.headers["x-request-id"]
        next(resp.iter_lines())
    limited = {"floopy-user-id": "limited"}
    client.chat.completions.create(model="gpt-4o-mini", messages=say("one"), extra_headers=limited)
    with pytest.raises(openai.RateLimitError) as too_many:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=say("two"), extra_headers=limited
        )
    ids["rate_limited"] = too_many.value.response.headers["x-request-id"]
    for _ in range(6):  # enough failures in a row to open the target's circuit breaker
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="mock/error-500", messages=say("again"))
    return ids


@pytest.fixture(scope="module")
def logged(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    root = tmp_path_factory.mktemp("logged")
    data = root / "data"
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        data,
        LOG_FLUSH_INTERVAL="0.05",
        LOG_SCRUB=EVERY_SCRUB,
        RATE_LIMITS="[{'scope': 'user', 'match': 'limited', 'requests': 1, 'window': 60}]",
    )
    url, proc = start_gateway(settings, root / "gateway.log")
    try:
        ids = drive(url)
        wait_for(lambda: sink_metric(url, "inserted") >= len(ids), "the rows to be inserted")
        wait_for(
            lambda: sink_metric(url, "inserted", "circuit_breaker_events") >= 1,
            "the breaker event to be inserted",
        )
        seen, ready = metrics(url), readiness(url, TEST_KEY)
    finally:
        stop(proc)
    yield Logged(ids, *read_back(data), seen, ready)


def read_back(
    data: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    with embedded_client(data) as client:
        # Without FINAL: a row written twice must show as two, not be merged away here.
        requests: dict[str, dict[str, Any]] = {}
        for row in client.query("SELECT * FROM floopy.requests").named_results():
            assert row["request_id"] not in requests, f"{row['request_id']} logged twice"
            requests[row["request_id"]] = row
        spans: dict[str, list[dict[str, Any]]] = {}
        for row in client.query(
            "SELECT * FROM floopy.spans FINAL ORDER BY start_time"
        ).named_results():
            spans.setdefault(row["request_id"], []).append(row)
        events = list(client.query("SELECT * FROM floopy.circuit_breaker_events").named_results())
    return requests, spans, events


def row(logged: Logged, outcome: str) -> dict[str, Any]:
    request_id = logged.ids[outcome]
    assert request_id in logged.requests, f"{outcome} ({request_id}) was not logged"
    return logged.requests[request_id]


def test_every_outcome_is_logged_once(logged: Logged) -> None:
    assert set(logged.requests) >= set(logged.ids.values())
    statuses = {outcome: row(logged, outcome)["status"] for outcome in logged.ids}
    assert statuses["success"] == statuses["stream"] == statuses["fallback"] == 200
    assert statuses["upstream_error"] == 502
    assert statuses["unauthorized"] == 401
    assert statuses["bad_request"] == 400
    assert statuses["disconnect"] == 499
    assert statuses["broken_stream"] == 502
    assert statuses["rate_limited"] == 429
    assert row(logged, "rate_limited")["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert row(logged, "rate_limited")["user_id"] == "limited"
    assert row(logged, "broken_stream")["error_code"] == "PROVIDER_ERROR"


def test_a_success_has_every_field(logged: Logged) -> None:
    success = row(logged, "success")
    assert success["organization"] == "acme" and success["project"] == "default"
    assert success["api_key_id"] == "test"
    assert (success["session_id"], success["session_name"], success["session_path"]) == (
        "sess-1",
        "checkout",
        "/cart/pay",
    )
    assert success["user_id"] == "user-42"
    assert success["properties"] == {"env": "staging", "contact": "[EMAIL]"}
    assert success["requested_model"] == "gpt-4o-mini" and success["provider"] == "mock"
    assert success["prompt_tokens"] > 0 and success["completion_tokens"] > 0
    assert success["cost_usd"] is not None and success["cost_usd"] > 0
    assert success["latency_ms"] > 0 and 0 < success["ttft_ms"] <= success["latency_ms"]
    assert {"auth", "parse", "routing", "dispatch", "respond"} <= set(success["stage_latency_ms"])
    assert success["finish_reason"] == "stop" and success["stream"] is False
    assert success["client_ip"] == "127.0.0.1" and success["user_agent"].startswith("OpenAI/")
    assert "Mock reply to" in success["response_body"]


def test_bodies_are_scrubbed_before_writing(logged: Logged) -> None:
    body = row(logged, "success")["request_body"]
    assert "jane@example.com" not in body and "4111 1111" not in body
    assert "[EMAIL]" in body and "[CARD]" in body


def test_streams_log_their_content_usage_and_cost(logged: Logged) -> None:
    stream = row(logged, "stream")
    assert stream["stream"] is True
    assert stream["response_body"] == "Mock reply to: stream this"
    assert stream["total_tokens"] > 0 and stream["cost_usd"] > 0
    assert stream["ttft_ms"] is not None


def test_spans_have_one_per_stage_and_provider_attempt(logged: Logged) -> None:
    spans = logged.spans[logged.ids["fallback"]]
    root = next(s for s in spans if s["name"] == "request")
    by_id = {s["span_id"]: s for s in spans}
    stages = [s["name"] for s in spans if s["parent_id"] == root["span_id"]]
    assert {"auth", "parse", "routing", "dispatch", "respond"} <= set(stages)
    attempts = [s for s in spans if s["name"] == "provider_attempt"]
    assert len(attempts) >= 2
    assert all(by_id[a["parent_id"]]["name"] == "dispatch" for a in attempts)
    assert attempts[0]["status"] == "error" and attempts[-1]["status"] == "ok"
    assert attempts[-1]["attributes"]["provider"] == "mock"
    assert row(logged, "fallback")["fallback_used"] is True


def test_metrics_and_readiness_while_running(logged: Logged) -> None:
    seen = logged.metrics_while_running
    assert seen['floopy_requests_total{status="200"}'] >= 3
    assert seen['floopy_log_rows_inserted_total{sink="requests"}'] >= 3
    assert seen['floopy_log_rows_inserted_total{sink="traces"}'] == 0  # spans ride in the row
    assert seen['floopy_log_rows_dropped_total{sink="requests"}'] == 0
    assert seen["floopy_log_store_up"] == 1
    assert seen["floopy_log_store_process_up"] == 1
    assert seen['floopy_log_lag_seconds{quantile="0.99"}'] >= 0
    ready = logged.ready_while_running
    assert ready["status"] == "ready"
    assert ready["log_store"]["status"] == "up"


def test_health_checks_are_counted_not_logged(logged: Logged) -> None:
    assert all(r["path"].startswith("/v1/") for r in logged.requests.values())


def test_circuit_breaker_events_have_their_own_table(logged: Logged) -> None:
    opened = [e for e in logged.breaker_events if e["to_state"] == "open"]
    assert opened, logged.breaker_events
    event = opened[0]
    assert event["provider"] == "mock" and event["model"] == "error-500"
    assert event["from_state"] and event["reason"] and event["time"].year >= 2024
