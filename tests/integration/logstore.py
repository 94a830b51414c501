"""Helpers for the request-log tests: a ClickHouse server process, the embedded store read
back after the gateway stopped (or through ``floopy logs query`` while it runs), rows in the
journals, and the gateway's /metrics as numbers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from floopy.observability.journal import journal_files

from .conftest import HERE, wait_until_up

CLICKHOUSE_SERVER = HERE.parent / "mock_upstream" / "clickhouse_server.py"
_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def start_clickhouse(port: int, path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, str(CLICKHOUSE_SERVER), "--port", str(port), "--path", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_until_up(f"http://127.0.0.1:{port}/ping", proc)
    return proc


def server_client(port: int) -> Any:
    import clickhouse_connect

    return clickhouse_connect.get_client(host="127.0.0.1", port=port, autogenerate_session_id=False)


@contextlib.contextmanager
def embedded_client(data_dir: Path) -> Iterator[Any]:
    """The gateway's embedded store, opened here: only once the gateway has stopped (one
    process per data path), and closed again, since this process may open another later."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(interface="chdb", path=str(data_dir / "clickhouse"))
    try:
        yield client
    finally:
        client.close()


def metrics(url: str) -> dict[str, float]:
    """``name`` or ``name{labels}`` -> value."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
            found[key] = float(match["value"])
    return found


def sink_metric(url: str, counter: str, sink: str = "requests") -> float:
    return metrics(url).get(f'floopy_log_rows_{counter}_total{{sink="{sink}"}}', 0.0)


def readiness(url: str, key: str | None = None) -> dict[str, Any]:
    """``/readyz``; with ``key``, the stores' details too."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(f"{url}/readyz", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as resp:
        return dict(json.load(resp))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Polls until ``condition`` holds; a deadline, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def journal_row(data_dir: Path, request_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The request's row in a worker's journal, once written (ClickHouse is down in the
    tests that read it here, so the log store leaves the journals alone)."""
    found: dict[str, Any] = {}

    def journaled() -> bool:
        for paths in journal_files(data_dir / "journal", "requests").values():
            for path in paths:
                for line in path.read_bytes().splitlines():
                    row = json.loads(line)
                    if row.get("request_id") == request_id:
                        found.update(row)
                        return True
        return False

    wait_for(journaled, f"the log row of {request_id}", timeout=timeout)
    return found


def logs_query(settings: Path, sql: str) -> list[dict[str, Any]]:
    """``floopy logs query --format jsonl``, through the running log store process."""
    result = subprocess.run(
        [sys.executable, "-m", "floopy", "logs", "query", "--format", "jsonl", sql],
        env={**os.environ, "FLOOPY_SETTINGS": str(settings)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]
