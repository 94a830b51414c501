"""The log store process: several workers on the embedded store, kills under load, live
queries, and a read channel that only reads.

Everything here is real: ``floopy serve`` with its granian workers and its supervised log
store process, the embedded ClickHouse, ``floopy logs query`` and ``floopy logs tail`` as
subprocesses. Only the provider is the mock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import TEST_KEY, start_gateway, stop, write_settings
from .logstore import logs_query, readiness, wait_for

pytestmark = pytest.mark.integration


def status(data: Path) -> dict[str, Any]:
    """The store's status file; empty until its first round is done."""
    try:
        return dict(json.loads((data / "store" / "status.json").read_text()))
    except FileNotFoundError:
        return {}


def store_pid(data: Path) -> int:
    wait_for(lambda: bool(status(data)), "the store's status")
    return int(status(data)["pid"])


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def worker_pids(gateway: subprocess.Popen[bytes], data: Path) -> list[int]:
    store = store_pid(data)
    return [pid for pid in children(gateway.pid) if pid != store]


class Load:
    """Requests from a few threads until stopped; the ids of those answered."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.client = openai.OpenAI(
            base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0, timeout=10
        )
        self.answered: list[str] = []
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(threads)
        for i in range(threads):
            self._pool.submit(self._run, i)

    def _run(self, thread: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                raw = self.client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"load {thread} {i}"}],
                )
            except openai.APIError:
                with self._lock:
                    self.failed += 1
                continue
            with self._lock:
                self.answered.append(raw.headers["x-request-id"])

    def count(self) -> int:
        with self._lock:
            return len(self.answered)

    def stop(self) -> list[str]:
        self._stop.set()
        self._pool.shutdown(wait=True)
        return list(self.answered)


def rows_per_request(settings: Path) -> dict[str, int]:
    rows = logs_query(
        settings, "SELECT request_id, count() AS n FROM floopy.requests GROUP BY request_id"
    )
    return {row["request_id"]: int(row["n"]) for row in rows}


def serve(tmp_path: Path, mock: str, *args: str, **extra: str) -> tuple[str, Any, Path, Path]:
    data = tmp_path / "data"
    settings = write_settings(
        tmp_path / "settings.py", mock, data, LOG_FLUSH_INTERVAL="0.1", **extra
    )
    url, gateway = start_gateway(settings, tmp_path / "gw.log", None, *args)
    return url, gateway, data, settings


@pytest.fixture
def two_workers(mock_upstream: str, tmp_path: Path) -> Iterator[tuple[str, Any, Path, Path]]:
    url, gateway, data, settings = serve(tmp_path, mock_upstream, "--workers", "2")
    try:
        yield url, gateway, data, settings
    finally:
        stop(gateway)


def test_two_workers_on_the_embedded_store_log_every_request_once(
    two_workers: tuple[str, Any, Path, Path], tmp_path: Path
) -> None:
    url, gateway, data, settings = two_workers
    assert len(worker_pids(gateway, data)) == 2
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    with ThreadPoolExecutor(8) as pool:  # concurrent, so both workers answer
        ids = list(
            pool.map(
                lambda i: client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"n {i}"}]
                ).headers["x-request-id"],
                range(60),
            )
        )
    wait_for(lambda: len(rows_per_request(settings)) >= 60, "60 rows", timeout=30)
    counts = rows_per_request(settings)
    assert set(counts) == set(ids) and all(n == 1 for n in counts.values())
    owners = {p.stem for p in (data / "journal").glob("*.owner")}
    assert len(owners) >= 3, "each worker and the store hold a journal owner lock"
    output = (tmp_path / "gw.log").read_text()
    assert f"log store: process {store_pid(data)} (floopy store)" in output


def test_a_killed_store_process_is_restarted_and_loses_no_row(
    mock_upstream: str, tmp_path: Path
) -> None:
    url, gateway, data, settings = serve(tmp_path, mock_upstream)
    try:
        first = store_pid(data)
        load = Load(url)
        wait_for(lambda: load.count() >= 50, "50 answers")
        os.kill(first, signal.SIGKILL)
        before = load.count()
        wait_for(lambda: load.count() >= before + 100, "answers while the store is down")
        wait_for(lambda: status(data).get("pid", first) != first, "a new store", timeout=30)
        answered = load.stop()
        assert load.failed == 0, "a request failed because the store died"
        wait_for(lambda: set(answered) <= set(rows_per_request(settings)), "every row", timeout=30)
        counts = rows_per_request(settings)
        assert all(n == 1 for n in counts.values()), "a row was inserted twice"
        assert status(data)["restarts"] == 1
        assert readiness(url, TEST_KEY)["log_store"]["status"] == "up"
    finally:
        stop(gateway)


def test_a_killed_worker_keeps_the_rows_of_every_request_it_answered(
    two_workers: tuple[str, Any, Path, Path],
) -> None:
    url, gateway, data, settings = two_workers
    load = Load(url, threads=6)
    wait_for(lambda: load.count() >= 100, "100 answers")
    victim = worker_pids(gateway, data)[0]
    os.kill(victim, signal.SIGKILL)
    before = load.count()
    wait_for(lambda: load.count() >= before + 50, "answers after the kill")
    answered = load.stop()
    wait_for(lambda: set(answered) <= set(rows_per_request(settings)), "every row", timeout=30)
    assert all(n == 1 for n in rows_per_request(settings).values())


def test_a_query_and_the_tail_see_a_request_soon_after_its_answer(
    mock_upstream: str, tmp_path: Path
) -> None:
    url, gateway, data, settings = serve(tmp_path, mock_upstream)
    wait_for(lambda: status(data).get("clickhouse_up", False), "the store migrated")
    env = {**os.environ, "FLOOPY_SETTINGS": str(settings)}
    tail = subprocess.Popen(
        [sys.executable, "-m", "floopy", "logs", "tail", "--user", "tailed", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(1.5)  # the tail starts following before the request is made
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            user="someone-else",
        )
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="tailed"
        )
        request_id = raw.headers["x-request-id"]
        wait_for(lambda: request_id in rows_per_request(settings), "the row queryable", timeout=2.0)
        assert tail.stdout is not None
        line = tail.stdout.readline()
        while line.startswith("#"):  # the store was still migrating: the tail says so, goes on
            line = tail.stdout.readline()
        assert request_id in line and " 200 " in line and "user=tailed" in line
        assert "gpt-4o-mini" in line and "mock" in line and "tok" in line
    finally:
        tail.terminate()
        tail.communicate(timeout=10)
        stop(gateway)


def channel_post(data: Path, sql: str, credential: str | None = "") -> tuple[int, dict[str, Any]]:
    found = json.loads((data / "store" / "channel.json").read_text())
    token = found["credential"] if credential == "" else credential
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{found['port']}/v1/query",
        data=json.dumps({"sql": sql}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(json.loads(answer.read()))
    except urllib.error.HTTPError as exc:
        with exc:  # closes the answer's connection
            return exc.code, dict(json.loads(exc.read()))


REFUSED = [
    "INSERT INTO floopy.requests (request_id) VALUES ('forged')",
    "DROP TABLE floopy.requests",
    "ALTER TABLE floopy.requests DELETE WHERE 1",
    "SELECT 1; DROP TABLE floopy.requests",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT file('/etc/passwd')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
    "SELECT * FROM floopy.requests SETTINGS readonly = 0",
    "SELECT * FROM floopy.requests INTO OUTFILE 'copy.tsv'",
    "SELECT number FROM system.numbers",  # unbounded: stopped by the row limit
]


def test_the_read_channel_only_reads_and_only_for_its_credential(
    mock_upstream: str, tmp_path: Path
) -> None:
    cap = 512 * 1024 * 1024
    _, gateway, data, _ = serve(
        tmp_path, mock_upstream, LOG_QUERY_MAX_ROWS="1000", LOG_STORE_MAX_MEMORY=str(cap)
    )
    try:
        wait_for(lambda: (data / "store" / "channel.json").exists(), "the read channel")
        wait_for(lambda: status(data).get("clickhouse_up", False), "the store migrated")
        mode = (data / "store" / "channel.json").stat().st_mode & 0o777
        assert mode == 0o600
        assert channel_post(data, "SELECT 1 AS one") == (
            200,
            {"columns": ["one"], "types": ["UInt8"], "rows": [[1]]},
        )
        assert channel_post(data, "SELECT 1", credential=None)[0] == 401
        assert channel_post(data, "SELECT 1", credential="wrong")[0] == 401
        for sql in REFUSED:
            code, body = channel_post(data, sql)
            assert code == 400, (sql, body)
            assert body["error"]["message"], sql
        assert channel_post(data, "SELECT count() FROM floopy.requests")[1]["rows"] == [[0]]
        # LOG_STORE_MAX_MEMORY reached the engine, and its metadata caches are bounded by it.
        _, engine = channel_post(
            data,
            "SELECT name, value FROM system.server_settings WHERE name IN "
            "('max_server_memory_usage', 'mark_cache_size', 'primary_index_cache_size')",
        )
        assert dict(engine["rows"]) == {
            "max_server_memory_usage": str(cap),
            "mark_cache_size": str(cap // 16),
            "primary_index_cache_size": str(cap // 16),
        }
    finally:
        stop(gateway)
