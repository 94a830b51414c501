"""What the request log keeps of every provider's answers: the tokens and the cost worked out by
hand (provider_gateway.PRICED_ACCOUNTING), streamed or not, with or without a usage chunk for
the client; and no secret anywhere: no provider key or gateway key in any log row, span or
line the gateway printed, failures included.

One gateway with every provider kind, each with its own key; it is stopped before the
embedded store is read (one process per store).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import TEST_KEY, start_gateway, stop, write_settings
from .logstore import embedded_client
from .provider_gateway import (
    KINDS,
    PRICED_ACCOUNTING,
    PROVIDER_KEYS,
    key_values,
    models,
    providers,
)

pytestmark = pytest.mark.integration

# How each priced request is asked for: stream or not, and whether the client wants usage.
WAYS = {
    "whole": {},
    "stream": {"stream": True, "stream_options": {"include_usage": True}},
    "stream-without-usage": {"stream": True},
}


@dataclass
class Logged:
    ids: dict[tuple[str, str], str]  # (kind, way) -> request id
    failed: dict[str, str]  # kind -> request id of an upstream 401
    requests: dict[str, dict[str, Any]]  # request id -> row
    spans: list[dict[str, Any]]
    output: str  # what the gateway process printed
    counts: tuple[int, int]  # count() and uniqExact(request_id) of the requests, no FINAL
    rollup: tuple[int, int, float]  # requests, total tokens and cost in the minute rollup


def drive(url: str) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    ids = {}
    for kind in KINDS:
        for way, options in WAYS.items():
            with client.chat.completions.with_streaming_response.create(
                model=f"{kind}/priced",
                messages=[{"role": "user", "content": f"count this, {way}"}],
                **options,  # type: ignore[arg-type]
            ) as resp:
                resp.read()
                ids[(kind, way)] = resp.headers["x-request-id"]
    failed = {}
    for kind in KINDS:
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model=f"{kind}/error-401", messages=[{"role": "user", "content": "refused"}]
            )
        failed[kind] = caught.value.response.headers["x-request-id"]
    return ids, failed


def read_rows(data_dir: Path) -> tuple[Any, ...]:
    """The rows, spans, counts and rollup totals, read without FINAL: a duplicate shows."""
    with embedded_client(data_dir) as client:
        requests = client.query("SELECT * FROM floopy.requests").named_results()
        spans = list(client.query("SELECT * FROM floopy.spans").named_results())
        counts = client.query(
            "SELECT count(), uniqExact(request_id) FROM floopy.requests"
        ).result_rows[0]
        rollup = client.query(
            "SELECT sum(requests), sum(total_tokens), sum(cost_usd) FROM floopy.requests_by_minute"
        ).result_rows[0]
    by_id: dict[str, dict[str, Any]] = {}
    for row in requests:
        by_id[row["request_id"]] = row
    return by_id, spans, tuple(counts), tuple(rollup)


@pytest.fixture(scope="module")
def logged(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    root = tmp_path_factory.mktemp("accounting")
    extra = {"PROVIDERS": repr(providers(mock_upstream)), "MODELS": repr(models())}
    settings = write_settings(root / "settings.py", mock_upstream, root / "data", **extra)
    log = root / "gateway.log"
    url, proc = start_gateway(settings, log, key_values())
    try:
        ids, failed = drive(url)
    finally:
        output = stop(proc) + log.read_text(errors="replace")
    requests, spans, counts, rollup = read_rows(root / "data")
    yield Logged(ids, failed, requests, spans, output, counts, rollup)


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("kind", KINDS)
def test_logged_tokens_and_cost(kind: str, way: str, logged: Logged) -> None:
    expected = PRICED_ACCOUNTING[kind]
    row = logged.requests[logged.ids[(kind, way)]]
    assert (row["provider"], row["status"], row["stream"]) == (kind, 200, way != "whole")
    tokens = (
        row["prompt_tokens"],
        row["completion_tokens"],
        row["total_tokens"],
        row["cached_tokens"],
        row["cache_write_tokens"],
        row["reasoning_tokens"],
    )
    assert tokens == (
        expected.prompt,
        expected.completion,
        expected.total,
        expected.cached,
        expected.cache_write,
        expected.reasoning,
    )
    assert row["cost_usd"] == pytest.approx(expected.cost_usd, abs=1e-12)


def test_every_request_is_one_row_and_the_rollup_agrees(logged: Logged) -> None:
    expected_rows = len(KINDS) * (len(WAYS) + 1)  # the priced requests and one 401 each
    assert logged.counts == (expected_rows, expected_rows), "count() against uniqExact(id)"
    priced = sum(PRICED_ACCOUNTING[kind].total for kind in KINDS) * len(WAYS)
    cost = sum(PRICED_ACCOUNTING[kind].cost_usd for kind in KINDS) * len(WAYS)
    requests, total_tokens, rollup_cost = logged.rollup
    assert (requests, total_tokens) == (expected_rows, priced)
    assert rollup_cost == pytest.approx(cost, abs=1e-12)


def secrets() -> dict[str, str]:
    found = {kind: value for kind, (_, value, _) in PROVIDER_KEYS.items()}
    return {**found, "gateway": TEST_KEY}


def leaks(text: str) -> list[str]:
    return [name for name, secret in secrets().items() if secret in text]


def test_no_key_in_any_log_row(logged: Logged) -> None:
    assert set(logged.failed.values()) <= set(logged.requests), "the failures are logged too"
    for request_id, row in logged.requests.items():
        assert not leaks(repr(row)), f"a key in the log row of {request_id}"


def test_no_key_in_any_span(logged: Logged) -> None:
    assert {span["request_id"] for span in logged.spans} >= set(logged.failed.values())
    for span in logged.spans:
        assert not leaks(repr(span)), f"a key in span {span['name']} of {span['request_id']}"


def test_no_key_in_what_the_gateway_printed(logged: Logged) -> None:
    assert logged.output, "the gateway's output was captured"
    assert not leaks(logged.output)
