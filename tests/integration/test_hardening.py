"""Faults on the client's side of the gateway, through a real granian process: a client that
vanishes while uploading, one that never finishes its body, an idle connection, and a worker
killed outright."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

from .conftest import TEST_KEY, Gateway, start_gateway, stop, worker_pids, write_settings
from .logstore import embedded_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("hardening")
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        BODY_READ_TIMEOUT="1.0",
        HEADER_READ_TIMEOUT="1.0",
        LOG_FLUSH_INTERVAL="0.1",
        MAX_RESPONSE_BYTES="100_000",
    )
    url, proc = start_gateway(settings, root / "gateway.log")
    gw = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)
    try:
        yield gw
    finally:
        stop(proc)


def connect(gateway: Gateway) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def head(gateway: Gateway, length: int, marker: str) -> bytes:
    return (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: {gateway.url.removeprefix('http://')}\r\n"
        f"Authorization: Bearer {gateway.key}\r\n"
        "Content-Type: application/json\r\n"
        f"floopy-session-id: {marker}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_that_never_arrives_is_answered_408(gateway: Gateway) -> None:
    with connect(gateway) as sock:
        sock.sendall(head(gateway, 1000, "slow-body") + b'{"model": "gpt')
        answer = sock.recv(65536).decode()  # waits out BODY_READ_TIMEOUT
    status_line, _, rest = answer.partition("\r\n")
    assert " 408 " in status_line
    assert json.loads(rest.partition("\r\n\r\n")[2])["error"]["code"] == "REQUEST_TIMEOUT"


def test_an_idle_keep_alive_connection_is_closed_after_the_header_limit(
    gateway: Gateway,
) -> None:
    with connect(gateway) as sock:
        sock.settimeout(15)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert sock.recv(1) == b""  # then closed by the gateway while idle


def test_headers_that_never_end_are_cut_off(gateway: Gateway) -> None:
    with connect(gateway) as sock:
        sock.settimeout(15)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n")
        assert sock.recv(65536) in (b"", b"HTTP/1.1 408 Request Timeout\r\n")


def test_a_whole_answer_past_the_cap_is_a_502_and_falls_back(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="mock/bulky-500000", messages=[PROMPT])
    assert caught.value.status_code == 502
    assert "MAX_RESPONSE_BYTES" in caught.value.message
    raw = client.chat.completions.with_raw_response.create(
        model="mock/bulky-500000",
        messages=[PROMPT],
        extra_headers={"floopy-fallback": "mock/bulky-1000"},
    )
    assert raw.headers["floopy-fallback-used"] == "true"
    assert raw.parse().choices


PROMPT = {"role": "user", "content": "pad it"}


def test_readiness_shows_details_only_with_a_key_and_never_a_path(gateway: Gateway) -> None:
    anonymous = httpx.get(f"{gateway.url}/readyz").json()
    assert set(anonymous) == {"status"}
    detailed = httpx.get(
        f"{gateway.url}/readyz", headers={"Authorization": f"Bearer {gateway.key}"}
    ).json()
    assert detailed["clickhouse"]["store"] == "embedded"
    assert str(gateway.data_dir) not in json.dumps(detailed)


def test_an_upload_cut_short_is_a_client_disconnect_in_the_log(gateway: Gateway) -> None:
    marker = f"gone-{uuid.uuid4().hex}"
    with connect(gateway) as sock:
        sock.sendall(head(gateway, 5000, marker) + b'{"model": "gpt-4o-mini", "mess')
        time.sleep(0.2)  # the body is being read when the client goes
    # The gateway still serves others.
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    assert client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "still here"}]
    ).choices
    output = stop(gateway.proc)
    with embedded_client(gateway.data_dir) as store:
        rows = store.query(
            "SELECT status, error_code FROM floopy.requests WHERE session_id = {s:String}",
            parameters={"s": marker},
        ).result_rows
    assert rows == [(499, "CLIENT_DISCONNECTED")]
    log_text = (gateway.data_dir.parent / "gateway.log").read_text() + output
    assert "Traceback" not in log_text and "RSGIProtocolClosed" not in log_text


def test_a_killed_worker_comes_back_and_the_others_keep_serving(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("respawn")
    settings = write_settings(
        root / "settings.py", mock_upstream, root / "data", WORKERS="2", LOGGING_ENABLED="False"
    )
    log = root / "gateway.log"
    url, proc = start_gateway(settings, log)
    try:
        # Both workers running (a worker that dies while starting stops granian instead).
        _wait_for(
            lambda: [n for n in (1, 2) if f"Started worker-{n} runtime" in log.read_text()],
            lambda started: len(started) == 2,
        )
        before = _wait_for(lambda: worker_pids(proc.pid), lambda pids: len(pids) == 2)
        os.kill(before[0], signal.SIGKILL)
        answered = [
            httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {TEST_KEY}"})
            for _ in range(20)
        ]
        assert all(r.status_code == 200 for r in answered)
        after = _wait_for(
            lambda: worker_pids(proc.pid), lambda pids: len(pids) == 2 and before[0] not in pids
        )
        assert before[1] in after and proc.poll() is None
    finally:
        output = stop(proc)
    log_text = log.read_text() + output
    assert "Unexpected exit from worker" in log_text and "Respawning worker" in log_text


def _wait_for(read: object, ok: object, seconds: float = 30.0) -> list[int]:
    assert callable(read) and callable(ok)
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            assert ok(value), value
            return list(value)
        time.sleep(0.1)
