"""Two gateway processes sharing one Redis (a real redis-server the test run starts): one
rate-limit budget for both, and a broken target skipped by both once either saw it fail."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from .conftest import TEST_KEY, start_gateway, stop, write_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateways(
    mock_upstream: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    root = tmp_path_factory.mktemp("two_instances")

    def settings(name: str) -> Path:
        # Same settings, own data directory: like two hosts, they share only Redis.
        return write_settings(
            root / f"{name}.py",
            mock_upstream,
            root / name,
            REDIS_URL=repr(redis_url),
            RETRY_ATTEMPTS="0",
            CIRCUIT_BREAKER="{'failures': 2, 'cooldown': 60}",
            RATE_LIMITS="[{'scope': 'user', 'requests': 3, 'window': 60}]",
        )

    first = start_gateway(settings("first"), root / "first.log")
    try:
        second = start_gateway(settings("second"), root / "second.log")
    except Exception:
        stop(first[1])
        raise
    try:
        yield first[0], second[0]
    finally:
        stop(first[1])
        stop(second[1])


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)


def test_two_instances_enforce_one_rate_limit(gateways: tuple[str, str]) -> None:
    a, b = (client(url) for url in gateways)
    user = {"floopy-user-id": f"shared-{uuid.uuid4().hex}"}
    messages = [{"role": "user", "content": "hi"}]

    def ask(via: openai.OpenAI) -> str:
        raw = via.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=messages, extra_headers=user
        )
        return raw.headers["ratelimit-remaining"]

    assert [ask(a), ask(b), ask(a)] == ["2", "1", "0"]
    for via in (b, a):
        with pytest.raises(openai.RateLimitError):
            ask(via)


def test_a_target_broken_behind_one_instance_is_skipped_by_the_other(
    gateways: tuple[str, str], mock_upstream: str
) -> None:
    a, b = (client(url) for url in gateways)
    token = uuid.uuid4().hex
    messages = [{"role": "user", "content": f"token {token}"}]

    def ask(via: openai.OpenAI) -> str:
        raw = via.chat.completions.with_raw_response.create(
            model="mock/fail-996-500",
            messages=messages,
            extra_headers={"floopy-fallback": "gpt-4o-mini"},
        )
        return raw.headers["floopy-fallback-used"]

    def attempts() -> int:
        with urllib.request.urlopen(f"{mock_upstream}/_requests") as resp:
            received = json.load(resp)
        return sum(
            1
            for r in received
            if r["body"].get("model") == "fail-996-500" and token in json.dumps(r["body"])
        )

    assert [ask(a), ask(a)] == ["true", "true"]
    assert attempts() == 2  # the breaker is now open, in Redis
    assert ask(b) == "true"
    assert attempts() == 2, "the second instance skipped the target without an attempt"
