"""Retries, fallbacks, timeouts, broken streams, the circuit breaker and routing rules, end to
end: a real gateway process against the fault-injecting mock provider, driven by the openai
SDK. Each test puts a unique token in its prompt, so the mock's ``fail-<n>-<fault>`` models
fail afresh for it, and uses its own model names, so breakers of other tests stay out of it.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from .conftest import TEST_KEY, Gateway, start_gateway, stop, write_settings

pytestmark = pytest.mark.integration

RULE_KEY = "fpk_test_rule_key_0123456789abcdefghijklmnopqrstuv"
# Long enough that the second request surely lands while the breaker is open, however
# loaded the machine; the test then waits it out.
COOLDOWN = 4.0


def _sha(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def gateway(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("resilience")
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        RETRY_ATTEMPTS="2",
        RETRY_BACKOFF="0.01",
        RETRY_BACKOFF_MAX="1.0",
        CIRCUIT_BREAKER=f"{{'failures': 3, 'cooldown': {COOLDOWN}}}",
        ROUTING_RULES=(
            "{'sturdy': {'targets': [{'provider': 'mock', 'model': 'fail-999-502'},"
            " {'provider': 'mock', 'model': 'gpt-4o-mini'}]}}"
        ),
        API_KEYS=(
            f"[{{'id': 'test', 'hash': '{_sha(TEST_KEY)}', 'organization': 'acme'}},"
            f" {{'id': 'ruled', 'hash': '{_sha(RULE_KEY)}', 'routing_rule': 'sturdy'}}]"
        ),
    )
    with settings.open("a") as extra:
        # The same mock behind a provider with short timeouts, for slow and hanging answers
        # (10 s and 8 s: far past the limits, and a normal answer far inside them).
        extra.write(
            "PROVIDERS['impatient'] = {'kind': 'openai_compatible', "
            f"'base_url': '{mock_upstream}/v1', 'first_byte_timeout': 2.0, 'total_timeout': 2.0}}\n"
        )
        # Quick to give up on a silent provider, patient with one that is answering.
        extra.write(
            "PROVIDERS['hesitant'] = {'kind': 'openai_compatible', "
            f"'base_url': '{mock_upstream}/v1', 'first_byte_timeout': 1.0, 'total_timeout': 60}}\n"
        )
    log = root / "gateway.log"
    url, proc = start_gateway(settings, log)
    gw = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)
    try:
        yield gw
    finally:
        stop(proc)


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)


def prompt() -> tuple[str, list[dict[str, str]]]:
    token = uuid.uuid4().hex
    return token, [{"role": "user", "content": f"token {token}"}]


def upstream_calls(gateway: Gateway, token: str) -> list[dict[str, Any]]:
    """The requests the mock received for this test's prompt, in order."""
    with urllib.request.urlopen(f"{gateway.mock_url}/_requests") as resp:
        received = json.load(resp)
    return [r for r in received if token in json.dumps(r["body"].get("messages", []))]


def models_called(gateway: Gateway, token: str) -> list[str]:
    return [r["body"]["model"] for r in upstream_calls(gateway, token)]


def gateway_log(gateway: Gateway) -> str:
    return (gateway.data_dir.parent / "gateway.log").read_text()


def test_correct_answer_with_fallback_used_while_the_first_provider_returns_500s(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    raw = client.chat.completions.with_raw_response.create(
        model="mock/fail-998-500",
        messages=messages,
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    )
    assert raw.parse().choices[0].message.content == f"Mock reply to: token {token}"
    assert raw.headers["floopy-fallback-used"] == "true"
    assert (raw.headers["floopy-provider"], raw.headers["floopy-model"]) == ("mock", "gpt-4o-mini")
    # Retried twice (5xx is retriable), then handed over.
    assert models_called(gateway, token) == ["fail-998-500"] * 3 + ["gpt-4o-mini"]


def test_a_retriable_failure_is_retried_on_the_same_target(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    raw = client.chat.completions.with_raw_response.create(
        model="mock/fail-2-503", messages=messages
    )
    assert raw.headers["floopy-fallback-used"] == "false"
    assert raw.parse().choices[0].message.content == f"Mock reply to: token {token}"
    assert models_called(gateway, token) == ["fail-2-503"] * 3


def test_a_client_error_is_never_retried_nor_handed_over(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="mock/fail-5-400",
            messages=messages,
            extra_headers={"floopy-fallback": "gpt-4o-mini"},
        )
    assert models_called(gateway, token) == ["fail-5-400"]


def test_retry_after_is_honoured(client: openai.OpenAI, gateway: Gateway) -> None:
    token, messages = prompt()
    client.chat.completions.create(model="mock/fail-1-429-after300", messages=messages)
    first, second = upstream_calls(gateway, token)
    assert second["at"] - first["at"] >= 0.3


def test_a_retry_after_longer_than_the_longest_backoff_hands_over_at_once(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    raw = client.chat.completions.with_raw_response.create(
        model="mock/fail-1-429-after5000",
        messages=messages,
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    )
    assert raw.headers["floopy-fallback-used"] == "true"
    assert models_called(gateway, token) == ["fail-1-429-after5000", "gpt-4o-mini"]


def test_a_reset_connection_is_retried(client: openai.OpenAI, gateway: Gateway) -> None:
    token, messages = prompt()
    completion = client.chat.completions.create(model="mock/fail-1-reset", messages=messages)
    assert completion.choices[0].message.content == f"Mock reply to: token {token}"
    assert models_called(gateway, token) == ["fail-1-reset"] * 2


def test_a_provider_timeout_is_retried(client: openai.OpenAI, gateway: Gateway) -> None:
    token, messages = prompt()
    completion = client.chat.completions.create(model="impatient/fail-1-hang", messages=messages)
    assert completion.choices[0].message.content == f"Mock reply to: token {token}"
    assert models_called(gateway, token) == ["fail-1-hang"] * 2


def test_a_stream_with_a_slow_first_byte_falls_back(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    raw = client.chat.completions.with_raw_response.create(
        model="impatient/slow-8000",
        messages=messages,
        stream=True,
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    )
    assert raw.headers["floopy-fallback-used"] == "true"
    assert raw.headers["floopy-model"] == "gpt-4o-mini"
    chunks = list(raw.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == f"Mock reply to: token {token}"


def test_a_stream_failing_before_its_first_event_falls_back(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    raw = client.chat.completions.with_raw_response.create(
        model="mock/fail-997-502",
        messages=messages,
        stream=True,
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    )
    assert raw.headers["floopy-fallback-used"] == "true"
    assert any(c.choices for c in raw.parse())
    assert models_called(gateway, token) == ["fail-997-502"] * 3 + ["gpt-4o-mini"]


def test_a_stream_cut_midway_ends_in_an_error_event_and_never_falls_back(
    gateway: Gateway,
) -> None:
    token, messages = prompt()
    body = {"model": "mock/cut-3", "messages": messages, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gateway.key}", "floopy-fallback": "gpt-4o-mini"},
    ) as resp:
        assert resp.status_code == 200  # the first bytes had reached the client
        events = [line for line in resp.iter_lines() if line.startswith("data: ")]
    content = [json.loads(e[6:]) for e in events[:-1]]
    assert len(content) == 4 and all("choices" in chunk for chunk in content)
    error = json.loads(events[-1][6:])["error"]
    assert error["code"] == "PROVIDER_ERROR" and "broke the stream" in error["message"]
    assert "data: [DONE]" not in events
    assert models_called(gateway, token) == ["cut-3"], "no fallback after the first byte"


def test_the_sdk_raises_on_a_cut_stream(client: openai.OpenAI) -> None:
    _, messages = prompt()
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model="mock/cut-5", messages=messages, stream=True
        ):
            received.append(chunk)
    assert received, "content before the cut reached the client"


def test_the_breaker_opens_skips_the_target_then_lets_it_back(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()  # fail-3-500 fails 3 times for this prompt, then answers

    def ask() -> Any:
        return client.chat.completions.with_raw_response.create(
            model="mock/fail-3-500",
            messages=messages,
            extra_headers={"floopy-fallback": "gpt-4o-mini"},
        )

    assert ask().headers["floopy-fallback-used"] == "true"  # 3 failed attempts: it opens
    assert models_called(gateway, token).count("fail-3-500") == 3
    assert ask().headers["floopy-fallback-used"] == "true"
    assert models_called(gateway, token).count("fail-3-500") == 3, "open: skipped, no attempt"
    time.sleep(COOLDOWN + 0.2)
    probe = ask()  # half-open: one probe goes through, and this time the target answers
    assert probe.headers["floopy-fallback-used"] == "false"
    assert probe.headers["floopy-model"] == "fail-3-500"
    assert ask().headers["floopy-fallback-used"] == "false"  # closed again
    log = gateway_log(gateway)
    for change in ("closed -> open", "open -> half_open", "half_open -> closed"):
        assert f"circuit breaker mock/fail-3-500: {change}" in log


def test_routing_rule_from_the_header(client: openai.OpenAI, gateway: Gateway) -> None:
    token, messages = prompt()
    raw = client.chat.completions.with_raw_response.create(
        model="anything", messages=messages, extra_headers={"floopy-routing-rule": "sturdy"}
    )
    assert raw.headers["floopy-fallback-used"] == "true"
    assert raw.headers["floopy-model"] == "gpt-4o-mini"
    assert models_called(gateway, token)[-1] == "gpt-4o-mini"


def test_routing_rule_of_the_key(gateway: Gateway) -> None:
    ruled = openai.OpenAI(base_url=gateway.base_url, api_key=RULE_KEY, max_retries=0)
    _, messages = prompt()
    raw = ruled.chat.completions.with_raw_response.create(model="echo", messages=messages)
    assert raw.headers["floopy-model"] == "gpt-4o-mini", "the key's rule wins over the model"


def test_unknown_routing_rule(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"floopy-routing-rule": "nope"},
        )
    assert "sturdy" in caught.value.message


def routing_headers(headers: httpx.Headers) -> tuple[str, str, str]:
    return (
        headers["floopy-provider"],
        headers["floopy-model"],
        headers["floopy-fallback-used"],
    )


def test_an_unauthenticated_error_names_no_target(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="fpk_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=prompt()[1])
    assert routing_headers(caught.value.response.headers) == ("", "", "false")


def test_a_bad_request_before_routing_names_no_target(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="no-such-model", messages=prompt()[1])
    assert routing_headers(caught.value.response.headers) == ("", "", "false")


def test_a_provider_s_bad_request_names_the_target(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="mock/fail-5-400", messages=prompt()[1])
    assert routing_headers(caught.value.response.headers) == ("mock", "fail-5-400", "false")


def test_every_target_failing_names_the_last_one_tried(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="mock/fail-999-502",
            messages=prompt()[1],
            extra_headers={"floopy-fallback": "mock/fail-999-503"},
        )
    assert caught.value.status_code == 502
    assert routing_headers(caught.value.response.headers) == ("mock", "fail-999-503", "true")


def test_a_timeout_names_the_target_that_timed_out(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="impatient/fail-9-hang", messages=prompt()[1])
    assert caught.value.status_code == 504
    assert routing_headers(caught.value.response.headers) == ("impatient", "fail-9-hang", "false")


def test_a_routing_error_on_messages_carries_the_headers(gateway: Gateway) -> None:
    response = httpx.post(
        f"{gateway.base_url}/messages",
        headers={"x-api-key": gateway.key},
        json={"model": "no-such-model", "max_tokens": 5, "messages": prompt()[1]},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "error"  # Anthropic's envelope
    assert routing_headers(response.headers) == ("", "", "false")


def test_a_whole_answer_past_the_first_byte_limit_falls_back(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    raw = client.chat.completions.with_raw_response.create(
        model="hesitant/slow-20000",
        messages=messages,
        extra_headers={"floopy-fallback": "gpt-4o-mini"},
    )
    # Each attempt gave up after 1 s: had it waited, the provider would have answered.
    assert routing_headers(raw.headers) == ("mock", "gpt-4o-mini", "true")
    assert raw.parse().choices[0].message.content == f"Mock reply to: token {token}"
    assert models_called(gateway, token) == ["slow-20000"] * 3 + ["gpt-4o-mini"]


def test_a_request_naming_too_many_models_is_refused_before_any_call(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    token, messages = prompt()
    fallbacks = ",".join(f"mock/fail-9-50{i % 4}" for i in range(8))  # 9 with the model
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="mock/fail-9-502", messages=messages, extra_headers={"floopy-fallback": fallbacks}
        )
    assert "MAX_TARGETS_PER_REQUEST" in caught.value.message
    assert upstream_calls(gateway, token) == []
