"""Streams are held to their client's pace, through a real gateway process: the mock provider's
``big-<MB>`` models stream far more than any answer, as fast as they are read.

A client that reads nothing costs the worker a bounded amount of memory (the stream buffer),
not the stream; the provider's writes wait meanwhile; the client closing is logged as 499; a
client that receives nothing for the stall timeout is dropped. A fast client still gets every
byte, and the log keeps a capped part of the content with the usage. ClickHouse is left
unreachable on purpose, so the request log stays in the journals, where the tests read it.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import (
    TEST_KEY,
    Gateway,
    free_port,
    start_gateway,
    stop,
    worker_pids,
    write_settings,
)
from .logstore import journal_row, wait_for

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LOG_BODY_MAX_BYTES = 4096


def boot(root: Path, mock_upstream: str, **extra: str) -> Gateway:
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        CLICKHOUSE_URL=repr(
            f"http://127.0.0.1:{free_port()}/floopy"
        ),  # down: rows stay in the journals
        LOG_FLUSH_INTERVAL="0.05",
        LOG_BODY_MAX_BYTES=str(LOG_BODY_MAX_BYTES),
        **extra,
    )
    url, proc = start_gateway(settings, root / "gateway.log")
    return Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)


@pytest.fixture(scope="module", params=["python", "native"])
def gateway(
    mock_upstream: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    """Each stream relay (STREAM_RELAY) in turn: both hold the same bound."""
    relay = repr(request.param)
    gw = boot(tmp_path_factory.mktemp("backpressure"), mock_upstream, STREAM_RELAY=relay)
    try:
        yield gw
    finally:
        stop(gw.proc)


def worker_pid(gateway: Gateway) -> int:
    """The granian worker process serving the requests: the server's one worker."""
    pids = worker_pids(gateway.proc.pid)
    assert len(pids) == 1, f"one worker expected, found {pids}"
    return pids[0]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def upstream_calls(gateway: Gateway, model: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{gateway.mock_url}/_requests") as resp:
        received: list[dict[str, Any]] = json.load(resp)
    return [r for r in received if r["body"].get("model") == model]


def logged(gateway: Gateway, request_id: str) -> dict[str, Any]:
    return journal_row(gateway.data_dir, request_id)


class StalledClient:
    """A raw HTTP/1.1 client that reads the response headers, then nothing."""

    def __init__(self, gateway: Gateway, model: str) -> None:
        body = json.dumps(
            {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        ).encode()
        host, port = gateway.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
            b"content-type: application/json\r\n"
            + f"authorization: Bearer {gateway.key}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)  # byte by byte: not one byte of the body is read
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 200 OK", lines[0]
        fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        self.request_id = fields["x-request-id"]

    def read_to_end(self) -> bytes:
        """Everything until the connection ends (or is reset)."""
        data = bytearray()
        try:
            while piece := self.sock.recv(1 << 20):
                data += piece
        except ConnectionResetError:
            pass
        return bytes(data)

    def close(self) -> None:
        self.sock.close()


def settled(gateway: Gateway, model: str, count: int, earlier: int = 0) -> list[int]:
    """The bytes each of the ``count`` upstream calls for ``model`` (after the ``earlier``
    ones the mock already saw) has written, once none of them has written more in half a
    second (their writes wait on the gateway)."""
    seen: list[int] = []

    def still() -> bool:
        calls = upstream_calls(gateway, model)[earlier:]
        now = [call.get("bytes_sent", 0) for call in calls]
        done = len(now) == count and now == seen
        seen[:] = now
        if not done:
            time.sleep(0.5)
        return done

    wait_for(still, f"the {count} calls for {model} to stop writing", timeout=60)
    return seen


def test_clients_that_read_nothing_hold_the_provider_and_a_bounded_memory(
    gateway: Gateway,
) -> None:
    fast_stream(gateway, "mock/big-2")  # warms the worker up: code, pools, buffers
    worker = worker_pid(gateway)
    before = rss_bytes(worker)
    earlier = len(upstream_calls(gateway, "big-100"))  # the mock serves every relay's run
    clients = [StalledClient(gateway, "mock/big-100") for _ in range(3)]
    try:
        written = settled(gateway, "big-100", 3, earlier)
        grown = rss_bytes(worker) - before
    finally:
        for client in clients:
            client.close()
    assert grown < 60 * MIB, f"the worker grew {grown / MIB:.0f} MiB for three stalled clients"
    for sent in written:
        assert sent < 50 * MIB, f"the provider wrote {sent / MIB:.0f} of 100 MiB unread"
    for client in clients:
        row = logged(gateway, client.request_id)
        assert (row["status"], row["error_code"]) == (499, "CLIENT_DISCONNECTED")
        assert row["response_body"].startswith("<0000000>"), "what came is logged"
    wait_for(
        lambda: all(call.get("client_gone") for call in upstream_calls(gateway, "big-100")),
        "the upstream calls to be dropped",
    )


def fast_stream(gateway: Gateway, model: str) -> tuple[str, bytes]:
    body = {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"Authorization": f"Bearer {gateway.key}"}
    with httpx.stream(
        "POST", f"{gateway.base_url}/chat/completions", json=body, headers=headers, timeout=60
    ) as resp:
        assert resp.status_code == 200
        return resp.headers["x-request-id"], resp.read()


def test_a_fast_client_gets_the_whole_stream_and_the_log_a_capped_part(
    gateway: Gateway,
) -> None:
    request_id, data = fast_stream(gateway, "mock/big-20")
    call = upstream_calls(gateway, "big-20")[-1]
    assert hashlib.sha256(data).hexdigest() == call["sha256"], "byte for byte"
    assert data.endswith(b"data: [DONE]\n\n")
    row = logged(gateway, request_id)
    assert (row["status"], row["error_code"]) == (200, "")
    assert row["finish_reason"] == "stop"
    chunks = data.count(b'"content": "<')
    assert row["completion_tokens"] == chunks and row["prompt_tokens"] == 7
    content = row["response_body"]
    assert content.startswith("<0000000>xxx")
    assert len(content.encode()) <= LOG_BODY_MAX_BYTES


@pytest.fixture(params=["python", "native"])
def impatient(
    mock_upstream: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    relay = repr(request.param)
    gw = boot(tmp_path, mock_upstream, STREAM_STALL_TIMEOUT="1.0", STREAM_RELAY=relay)
    try:
        yield gw
    finally:
        stop(gw.proc)


def test_a_client_that_receives_nothing_past_the_stall_timeout_is_dropped(
    impatient: Gateway,
) -> None:
    client = StalledClient(impatient, "mock/big-50")
    try:
        row = logged(impatient, client.request_id)  # written once the gateway gave up
        assert (row["status"], row["error_code"]) == (499, "CLIENT_DISCONNECTED")
        data = client.read_to_end()  # what was queued, then the end of the connection
    finally:
        client.close()
    assert len(data) < 50 * MIB and b"data: [DONE]" not in data
    calls = upstream_calls(impatient, "big-50")
    wait_for(lambda: bool(upstream_calls(impatient, "big-50")[-1].get("client_gone")), "drop")
    assert calls[-1]["bytes_sent"] < 50 * MIB
