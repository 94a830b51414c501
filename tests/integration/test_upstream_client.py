"""The upstream HTTP client inside the real gateway, under both ``UPSTREAM_CLIENT`` values: a
provider that refuses connections or answers too late becomes the right error, a client that
goes away ends the upstream call, and the native client works in every forked worker and
stops with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from .conftest import TEST_KEY, Gateway, free_port, start_gateway, stop, write_settings
from .provider_gateway import forget, received

pytestmark = pytest.mark.integration


def say(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def providers(mock_url: str) -> str:
    keyed = "'api_key_env': 'FLOOPY_TEST_MOCK_KEY'"
    return f"""{{
        'mock': {{'kind': 'openai_compatible', 'base_url': '{mock_url}/v1', {keyed}}},
        'dead': {{'kind': 'openai_compatible', 'base_url': 'http://127.0.0.1:{free_port()}/v1'}},
        'impatient': {{'kind': 'openai_compatible', 'base_url': '{mock_url}/v1', {keyed},
                       'first_byte_timeout': 0.3, 'total_timeout': 0.5}},
        'echo': {{'kind': 'echo'}},
    }}"""


@pytest.fixture(scope="module", params=["native", "aiohttp"])
def gateway(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp(f"upstream-{request.param}")
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        PROVIDERS=providers(mock_upstream),
        UPSTREAM_CLIENT=repr(request.param),
        RETRY_ATTEMPTS="0",
        LOGGING_ENABLED="False",
    )
    url, proc = start_gateway(settings, root / "gateway.log")
    gw = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)
    try:
        yield gw
    finally:
        stop(proc)


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)


def test_a_refused_connection_is_a_provider_error(client: openai.OpenAI) -> None:
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="dead/any", messages=say("x"), stream=stream)
        assert caught.value.status_code == 502
        assert "dead is unreachable" in caught.value.message


def test_a_provider_too_slow_is_a_gateway_timeout(client: openai.OpenAI) -> None:
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="impatient/slow-3000", messages=say("x"), stream=stream
            )
        assert caught.value.status_code == 504
        assert caught.value.body["code"] == "GATEWAY_TIMEOUT"  # type: ignore[index]


def test_a_client_gone_ends_the_upstream_call(gateway: Gateway) -> None:
    forget(gateway)
    body = {"model": "mock/drip-50", "messages": say("drip"), "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gateway.key}"},
    ) as resp:
        assert b"drop0" in next(resp.iter_bytes())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not received(gateway)[-1].get("client_gone"):
        time.sleep(0.05)
    record = received(gateway)[-1]
    assert record.get("client_gone") is True
    assert record["chunks_sent"] < 200


def test_the_native_client_serves_every_forked_worker_and_stops_with_it(
    tmp_path: Path, mock_upstream: str
) -> None:
    settings = write_settings(
        tmp_path / "settings.py",
        mock_upstream,
        tmp_path / "data",
        UPSTREAM_CLIENT="'native'",
        LOGGING_ENABLED="False",  # two workers cannot share the embedded log store
    )
    log = tmp_path / "gateway.log"
    url, proc = start_gateway(settings, log, None, "--workers", "2")
    try:
        headers = {"Authorization": f"Bearer {TEST_KEY}"}
        # A fresh connection per request, so that both workers answer in all likelihood.
        for n in range(12):
            body = {"model": "gpt-4o-mini", "messages": say(f"n{n}"), "stream": n % 2 == 1}
            resp = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            assert resp.status_code == 200, resp.text
            ending = b"data: [DONE]" if body["stream"] else f"Mock reply to: n{n}".encode()
            assert ending in resp.content
    finally:
        output = stop(proc)
    assert "Traceback" not in output + log.read_text()
