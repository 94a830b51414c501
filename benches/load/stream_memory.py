"""What large streams cost the gateway worker in memory: three clients that read nothing of a
big stream, then one client that reads a big stream as fast as it can.

Boots the test mock provider (its ``big-<MB>`` models stream <MB> MiB as fast as they are read)
and a one-worker gateway on loopback, and prints, as JSON, the worker's resident memory (VmRSS)
at rest, with the stalled clients (once the provider has stopped writing), after they closed,
and its peak while the fast client reads (sampled every 10 ms), with the time that read took.

Run: ``.venv/bin/python benches/load/stream_memory.py [--megabytes 100] [--stalled 3]``. Any
gateway checkout can be measured with its own interpreter: the mock and the client are this
file's, the gateway is whatever ``python -m floopy`` is for that interpreter.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import (  # noqa: E402  (the repository root first)
    MOCK_SERVER,
    TEST_KEY,
    free_port,
    start_gateway,
    stop,
    wait_until_up,
    write_settings,
)

MIB = 1024 * 1024


def worker_pid(server: int) -> int:
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    return int(children[0])


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def request(model: str) -> bytes:
    body = json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
        f"content-type: application/json\r\nauthorization: Bearer {TEST_KEY}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def stalled(port: int, model: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(request(model))
    return sock


def upstream_bytes(mock: str, model: str) -> list[int]:
    with urllib.request.urlopen(f"{mock}/_requests") as resp:
        calls: list[dict[str, Any]] = json.load(resp)
    return [c.get("bytes_sent", 0) for c in calls if c["body"].get("model") == model]


def settle(mock: str, model: str, count: int, limit: float = 120.0) -> list[int]:
    """Waits until the ``count`` calls for ``model`` stopped writing for a second."""
    seen: list[int] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        now = upstream_bytes(mock, model)
        if len(now) == count and now == seen:
            return now
        seen = now
        time.sleep(1.0)
    raise RuntimeError(f"the calls for {model} never settled: {seen}")


def fast_read(port: int, model: str) -> int:
    """Reads the whole stream as fast as possible; the bytes received."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request(model))
        total = 0
        while True:
            data = sock.recv(1 << 20)
            total += len(data)
            if not data or data.endswith(b"0\r\n\r\n"):
                return total


def peak_while(pid: int, work: Any) -> tuple[int, Any]:
    peak, done = [rss(pid)], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return peak[0], result


def measure(megabytes: int, count: int) -> dict[str, Any]:
    port = free_port()
    mock_proc = subprocess.Popen(
        [sys.executable, str(MOCK_SERVER), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    mock = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            wait_until_up(f"{mock}/_requests", mock_proc)
            settings = write_settings(root / "settings.py", mock, root / "data")
            url, gateway = start_gateway(settings, root / "gateway.log")
            try:
                return run(int(url.rsplit(":", 1)[1]), mock, gateway.pid, megabytes, count)
            finally:
                stop(gateway)
        finally:
            stop(mock_proc)


def run(port: int, mock: str, server: int, megabytes: int, count: int) -> dict[str, Any]:
    worker = worker_pid(server)
    fast_read(port, "mock/big-2")  # warm-up
    time.sleep(1.0)
    rest = rss(worker)
    model = f"mock/big-{megabytes}"
    clients = [stalled(port, model) for _ in range(count)]
    written = settle(mock, f"big-{megabytes}", count)
    with_stalled = rss(worker)
    for client in clients:
        client.close()
    time.sleep(3.0)
    after_close = rss(worker)
    fast_model = f"mock/big-{megabytes}.5"  # another model name: its own upstream record
    started = time.monotonic()
    peak, received = peak_while(worker, lambda: fast_read(port, fast_model))
    seconds = time.monotonic() - started
    return {
        "stream_mib": megabytes,
        "stalled_clients": count,
        "rss_at_rest_mib": round(rest / MIB, 1),
        "rss_with_stalled_mib": round(with_stalled / MIB, 1),
        "provider_wrote_per_stalled_mib": [round(b / MIB, 1) for b in written],
        "rss_after_close_mib": round(after_close / MIB, 1),
        "rss_peak_fast_client_mib": round(peak / MIB, 1),
        "fast_client_received_mib": round(received / MIB, 1),
        "fast_client_seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--stalled", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.megabytes, args.stalled), indent=2))


if __name__ == "__main__":
    main()
