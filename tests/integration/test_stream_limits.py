"""A stream under way is held to its provider's time limits, end to end: a real gateway
process against the mock provider (``drip-<ms>`` models stream slowly), driven by the openai
and anthropic SDKs. A stream that outlives its provider's ``total_timeout``, or goes silent
for its ``first_byte_timeout``, ends with a proper error event; the upstream connection is
dropped, the circuit breaker counts the failure and the request is logged as a 504.

ClickHouse is left unreachable on purpose, so the request log stays in the journals, where
the test reads it while the gateway runs."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from .conftest import TEST_KEY, Gateway, free_port, start_gateway, stop, write_settings
from .logstore import journal_row, wait_for

pytestmark = pytest.mark.integration

# Limits far from every pace the mock keeps, so a loaded machine cannot tip a test either
# way: the first event comes at once (a limit of 2 s leaves it ample time), the ``hasty``
# streams need 6 s or more and are cut at 2 s, the ``quiet`` ones fall silent for 20 s and
# are cut after 2 s of silence.
LIMITED_PROVIDERS = {
    "hasty": {"first_byte_timeout": 2.0, "total_timeout": 2.0},
    "quiet": {"first_byte_timeout": 2.0, "total_timeout": 60.0},
}


@pytest.fixture(scope="module", params=["python", "native"])
def gateway(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    """Each stream relay (STREAM_RELAY) in turn: both keep the same limits."""
    root = tmp_path_factory.mktemp("stream_limits")
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        STREAM_RELAY=repr(request.param),
        CLICKHOUSE_URL=repr(
            f"http://127.0.0.1:{free_port()}/floopy"
        ),  # down: rows stay in the journals
        LOG_FLUSH_INTERVAL="0.05",
        RETRY_ATTEMPTS="0",
        CIRCUIT_BREAKER="{'failures': 1, 'cooldown': 60}",
    )
    with settings.open("a") as extra:
        for name, limits in LIMITED_PROVIDERS.items():
            extra.write(
                f"PROVIDERS[{name!r}] = {{'kind': 'openai_compatible', "
                f"'base_url': '{mock_upstream}/v1', **{limits!r}}}\n"
                f"PROVIDERS['claude-{name}'] = {{'kind': 'anthropic', "
                f"'base_url': '{mock_upstream}', 'api_key_env': 'FLOOPY_TEST_MOCK_KEY', "
                f"**{limits!r}}}\n"
            )
    url, proc = start_gateway(settings, root / "gateway.log")
    gw = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)
    try:
        yield gw
    finally:
        stop(proc)


def ask() -> list[dict[str, str]]:
    return [{"role": "user", "content": f"a long answer, please ({uuid.uuid4().hex})"}]


def logged(gateway: Gateway, request_id: str) -> dict[str, Any]:
    return journal_row(gateway.data_dir, request_id)


def breaker_opened(gateway: Gateway, target: str) -> bool:
    log = (gateway.data_dir.parent / "gateway.log").read_text()
    return f"circuit breaker {target}: closed -> open" in log


def assert_logged_as_timeout(gateway: Gateway, request_id: str) -> None:
    row = logged(gateway, request_id)
    assert (row["status"], row["error_code"]) == (504, "GATEWAY_TIMEOUT")


def chat_stream(gateway: Gateway, model: str) -> tuple[str, list[dict[str, Any]]]:
    """The request id and the data events of a chat stream, read raw."""
    body = {"model": model, "messages": ask(), "stream": True}
    headers = {"Authorization": f"Bearer {gateway.key}"}
    with httpx.stream(
        "POST", f"{gateway.base_url}/chat/completions", json=body, headers=headers, timeout=30
    ) as resp:
        assert resp.status_code == 200  # the first event had reached the client
        lines = [line for line in resp.iter_lines() if line.startswith("data: ")]
        request_id = resp.headers["x-request-id"]
    assert "data: [DONE]" not in lines
    return request_id, [json.loads(line[6:]) for line in lines]


def test_a_chat_stream_outliving_its_total_timeout_ends_with_a_timeout_event(
    gateway: Gateway,
) -> None:
    request_id, events = chat_stream(gateway, "hasty/drip-50")
    *content, last = events
    assert content and all("choices" in event for event in content)
    assert len(content) < 200, "cut long before the mock's 200 chunks"
    error = last["error"]
    assert (error["code"], error["type"]) == ("GATEWAY_TIMEOUT", "timeout_error")
    assert "total_timeout" in error["message"]
    assert_logged_as_timeout(gateway, request_id)
    wait_for(lambda: upstream_dropped(gateway, "drip-50"), "the upstream call to be dropped")
    assert breaker_opened(gateway, "hasty/drip-50")


def upstream_dropped(gateway: Gateway, model: str) -> bool:
    with urllib.request.urlopen(f"{gateway.mock_url}/_requests") as resp:
        received = json.load(resp)
    calls = [r for r in received if r["body"].get("model") == model]
    return bool(calls) and bool(calls[-1].get("client_gone"))


def test_a_chat_stream_gone_silent_ends_with_a_timeout_event(gateway: Gateway) -> None:
    request_id, events = chat_stream(gateway, "quiet/drip-20000")
    *content, last = events
    assert len(content) == 1, "one chunk, then the mock fell silent"
    assert last["error"]["code"] == "GATEWAY_TIMEOUT"
    assert "first_byte_timeout" in last["error"]["message"]
    assert_logged_as_timeout(gateway, request_id)
    assert breaker_opened(gateway, "quiet/drip-20000")


def test_the_openai_sdk_raises_the_timeout(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="hasty/drip-40", messages=ask(), stream=True
        ):
            received.append(chunk)
    assert received, "content before the limit reached the client"
    assert caught.value.code == "GATEWAY_TIMEOUT"


def messages_stream(gateway: Gateway, model: str) -> tuple[str, list[tuple[str, Any]]]:
    """The request id and the (name, data) events of a /v1/messages stream, read raw."""
    body = {"model": model, "max_tokens": 300, "messages": ask(), "stream": True}
    headers = {"x-api-key": gateway.key, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=30
    ) as resp:
        assert resp.status_code == 200
        raw = resp.read().decode()
        request_id = resp.headers["x-request-id"]
    events = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))  # whole, never torn
    return request_id, events


@pytest.mark.parametrize(
    ("model", "limit"),
    [
        ("claude-hasty/drip-250", "total_timeout"),  # relayed natively, events torn in reads
        ("claude-quiet/drip-20000", "first_byte_timeout"),
        ("hasty/drip-30", "total_timeout"),  # translated from an OpenAI-format provider
        ("quiet/drip-19000", "first_byte_timeout"),
    ],
)
def test_a_messages_stream_past_its_limit_ends_with_an_anthropic_error_event(
    gateway: Gateway, model: str, limit: str
) -> None:
    request_id, events = messages_stream(gateway, model)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "error"
    assert "message_stop" not in names
    error = events[-1][1]
    assert error["type"] == "error" and error["error"]["type"] == "timeout_error"
    assert limit in error["error"]["message"]
    assert_logged_as_timeout(gateway, request_id)
    assert breaker_opened(gateway, model), "the stream's failure reached the breaker"


def test_the_anthropic_sdk_raises_the_timeout(gateway: Gateway) -> None:
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude.messages.stream(
            model="claude-hasty/drip-300", max_tokens=300, messages=ask()
        ) as stream,
    ):
        for _ in stream:
            pass
    assert "timeout_error" in str(caught.value)
