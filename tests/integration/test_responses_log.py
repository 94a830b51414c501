"""What the request log keeps of a Responses request: the same tokens and cost as a chat
request (worked out by hand in provider_gateway.PRICED_ACCOUNTING), whole and streamed, for
every provider kind, whether it got the request natively or over chat; and its finish reason
and content.

One gateway with every provider kind; it is stopped before the embedded store is read (one
process per store).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from .conftest import TEST_KEY, start_gateway, stop, write_settings
from .logstore import embedded_client
from .provider_gateway import KINDS, PRICED_ACCOUNTING, key_values, models, providers

pytestmark = pytest.mark.integration
WAYS = ("whole", "stream")


def drive(url: str) -> dict[tuple[str, str], str]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    ids = {}
    for kind in KINDS:
        for way in WAYS:
            with client.responses.with_streaming_response.create(
                model=f"{kind}/priced", input=f"count this, {way}", stream=way == "stream"
            ) as resp:
                resp.read()
                ids[(kind, way)] = resp.headers["x-request-id"]
    return ids


@pytest.fixture(scope="module")
def logged(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[tuple[str, str], str], dict[str, dict[str, Any]]]]:
    root = tmp_path_factory.mktemp("responses-log")
    extra = {"PROVIDERS": repr(providers(mock_upstream)), "MODELS": repr(models())}
    settings = write_settings(root / "settings.py", mock_upstream, root / "data", **extra)
    url, proc = start_gateway(settings, root / "gateway.log", key_values())
    try:
        ids = drive(url)
    finally:
        stop(proc)
    with embedded_client(root / "data") as client:
        rows = client.query("SELECT * FROM floopy.requests").named_results()
        by_id = {row["request_id"]: row for row in rows}
    yield ids, by_id


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("kind", KINDS)
def test_logged_tokens_and_cost(
    kind: str,
    way: str,
    logged: tuple[dict[tuple[str, str], str], dict[str, dict[str, Any]]],
) -> None:
    ids, rows = logged
    expected = PRICED_ACCOUNTING[kind]
    row = rows[ids[(kind, way)]]
    assert (row["path"], row["provider"], row["status"]) == ("/v1/responses", kind, 200)
    assert row["stream"] == (way == "stream")
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
    assert row["finish_reason"] == "stop"
    assert row["requested_model"] == f"{kind}/priced"
