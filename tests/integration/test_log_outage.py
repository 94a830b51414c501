"""The log survives ClickHouse being down, a restart and a SIGKILL, and lands each row once.

Server mode talks to a ClickHouse HTTP server process (tests/mock_upstream/
clickhouse_server.py, the real engine): not started, its port is closed (an outage);
started on that port, ClickHouse is back. The embedded store is made unusable by putting a
file where its directory goes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import openai
import pytest

from floopy.observability.journal import JournalFile, journal_files

from .conftest import TEST_KEY, free_port, start_gateway, stop, write_settings
from .logstore import (
    embedded_client,
    readiness,
    server_client,
    sink_metric,
    start_clickhouse,
    wait_for,
)

pytestmark = pytest.mark.integration

SPOOL_CAP = 64 * 1024
FAST = {"LOG_FLUSH_INTERVAL": "0.05", "LOG_PROBE_INTERVAL": "0.2"}


def send(url: str, count: int, *, tag: str) -> list[str]:
    """``count`` requests, streamed and whole in turn; their request ids."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    ids = []
    for i in range(count):
        messages = [{"role": "user", "content": f"{tag} {i}"}]
        if i % 2:
            with client.chat.completions.with_streaming_response.create(
                model="gpt-4o-mini", messages=messages, stream=True
            ) as resp:
                ids.append(resp.headers["x-request-id"])
                list(resp.iter_lines())
        else:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=messages
            )
            ids.append(raw.headers["x-request-id"])
    return ids


def journal_dir(data: Path) -> Path:
    return data / "journal"


def assert_within_cap(data: Path) -> None:
    for sink in ("requests", "traces"):
        for files in journal_files(journal_dir(data), sink).values():
            live = [f for f in files if ".claimed." not in f.name]
            assert len(live) <= 3
            assert all(f.stat().st_size <= SPOOL_CAP for f in live)


def server_settings(
    tmp: Path, mock: str, port: int, spool_cap: int = SPOOL_CAP, **extra: str
) -> Path:
    return write_settings(
        tmp / "settings.py",
        mock,
        tmp / "data",
        CLICKHOUSE_URL=repr(f"http://127.0.0.1:{port}/floopy"),
        LOG_SPOOL_MAX_BYTES=str(spool_cap),
        **FAST,
        **extra,
    )


@pytest.fixture
def ports() -> Iterator[int]:
    yield free_port()


def request_counts(port: int) -> dict[str, int]:
    client = server_client(port)
    try:
        rows = client.query(
            "SELECT request_id, count() FROM floopy.requests GROUP BY request_id"
        ).result_rows
    finally:
        client.close()
    return {request_id: int(n) for request_id, n in rows}


def test_an_outage_keeps_rows_on_disk_and_recovery_inserts_every_row_once(
    mock_upstream: str, tmp_path: Path, ports: int
) -> None:
    url, gateway = start_gateway(
        server_settings(tmp_path, mock_upstream, ports), tmp_path / "gw.log"
    )
    clickhouse = None
    try:
        ids = send(url, 30, tag="outage")
        assert sink_metric(url, "journaled") == 30  # written before the answers ended
        wait_for(lambda: readiness(url)["status"] == "degraded", "degraded")
        waiting = readiness(url, TEST_KEY)["log_store"]["journal_bytes"]["requests"]
        assert waiting > 0
        assert_within_cap(tmp_path / "data")

        clickhouse = start_clickhouse(ports, tmp_path / "ch", tmp_path / "ch.log")
        wait_for(lambda: sink_metric(url, "inserted") >= 30, "the journals carried", timeout=60)
        wait_for(lambda: readiness(url)["status"] == "ready", "ready again")
        after = send(url, 4, tag="after")
        wait_for(lambda: sink_metric(url, "inserted") >= 34, "new rows inserted")

        counts = request_counts(ports)
        assert set(counts) == set(ids) | set(after)
        assert all(n == 1 for n in counts.values()), "a row was inserted twice"
        assert sink_metric(url, "dropped") == 0
        client = server_client(ports)
        spans = client.query(
            "SELECT request_id, countIf(name = 'provider_attempt'), countIf(name = 'request') "
            "FROM floopy.spans GROUP BY request_id"
        ).result_rows
        raw = client.query(
            "SELECT count(), uniqExact(request_id), sum(total_tokens) FROM floopy.requests"
        ).result_rows[0]
        rolled = client.query(
            "SELECT sum(requests), sum(total_tokens) FROM floopy.requests_by_minute"
        ).result_rows[0]
        client.close()
        rows, unique, tokens = raw
        assert rows == unique == len(counts), "count() against uniqExact(request_id)"
        assert tuple(rolled) == (rows, tokens), "the rollup counts each replayed row once"
        assert {r for r, _, _ in spans} == set(counts)
        assert all(attempts >= 1 and roots == 1 for _, attempts, roots in spans)
        assert not journal_files(journal_dir(tmp_path / "data"), "requests")
    finally:
        stop(gateway)
        if clickhouse is not None:
            stop(clickhouse)


def test_rows_written_while_the_store_cannot_open_land_after_a_restart(
    mock_upstream: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    blocker = data / "clickhouse"
    blocker.write_text("not a directory: the embedded engine cannot open here")
    settings = write_settings(
        tmp_path / "settings.py",
        mock_upstream,
        data,
        LOG_FLUSH_INTERVAL="0.05",
        LOG_PROBE_INTERVAL="0.2",
    )
    url, gateway = start_gateway(settings, tmp_path / "gw.log")
    try:
        ids = send(url, 12, tag="restart")
        assert sink_metric(url, "journaled") == 12 and sink_metric(url, "inserted") == 0
    finally:
        stop(gateway)
    blocker.unlink()

    url, gateway = start_gateway(settings, tmp_path / "gw2.log")
    try:
        wait_for(lambda: sink_metric(url, "inserted") >= 12, "the journals carried at start")
    finally:
        stop(gateway)
    with embedded_client(data) as client:
        rows = client.query(
            "SELECT request_id, status, total_tokens FROM floopy.requests"
        ).result_rows
    assert sorted(r for r, _, _ in rows) == sorted(ids)
    assert all(status == 200 and tokens > 0 for _, status, tokens in rows)


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            pids.extend(process_tree(int(child)))
    return pids


def journaled_ids(data: Path) -> set[str]:
    found = set()
    for files in journal_files(journal_dir(data), "requests").values():
        for path in files:
            for line in path.read_bytes().split(b"\n")[:-1]:  # complete lines only
                found.add(msgspec.json.decode(line)["request_id"])
    return found


def test_a_sigkill_of_everything_under_load_loses_no_answered_request(
    mock_upstream: str, tmp_path: Path, ports: int
) -> None:
    settings = server_settings(
        tmp_path,
        mock_upstream,
        ports,
        spool_cap=8 * 1024 * 1024,  # room for every row: rotation is another test's subject
        LOG_BATCH_SIZE="20",
    )
    url, gateway = start_gateway(settings, tmp_path / "gw.log")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0, timeout=5)
    answered: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"load {i}"}]
            )
        except openai.APIError:
            return  # in flight when the gateway died
        with lock:
            answered.append(raw.headers["x-request-id"])

    with ThreadPoolExecutor(8) as pool:
        for i in range(400):
            pool.submit(one, i)
        wait_for(lambda: len(answered) >= 150, "150 answers")
        on_disk = journaled_ids(tmp_path / "data")
        for pid in process_tree(gateway.pid):
            os.kill(pid, signal.SIGKILL)
        gateway.wait()
    with lock:
        done = list(answered)
    assert on_disk, "nothing reached the journals before the kill"

    clickhouse = start_clickhouse(ports, tmp_path / "ch", tmp_path / "ch.log")
    url, gateway = start_gateway(settings, tmp_path / "gw2.log")
    try:
        wait_for(
            lambda: not journaled_ids(tmp_path / "data"), "the dead processes' journals carried"
        )
        counts = request_counts(ports)
    finally:
        stop(gateway)
        stop(clickhouse)
    assert on_disk <= set(counts), "rows already on disk were lost"
    assert all(n == 1 for n in counts.values())
    lost = set(done) - set(counts)
    assert not lost, f"{len(lost)} answered requests have no row"


REPLAY = [sys.executable, "-m", "floopy", "logs", "replay"]


def test_two_processes_racing_to_replay_insert_each_row_once(
    mock_upstream: str, tmp_path: Path, ports: int
) -> None:
    settings = server_settings(tmp_path, mock_upstream, ports, LOG_BATCH_SIZE="25")
    directory = journal_dir(tmp_path / "data")
    rows = 0
    for owner in ("101-deadbeef", "102-deadbeef"):  # two crashed processes, no owner lock
        journal = JournalFile(directory, "requests", owner, 8 * 1024)
        for i in range(120):
            line = {"request_id": f"{owner}-{i}", "time": time.time(), "status": 200}
            journal.append([msgspec.json.encode(line)])
            rows += 1
        journal.close()
    clickhouse = start_clickhouse(ports, tmp_path / "ch", tmp_path / "ch.log")
    try:
        env = {**os.environ, "FLOOPY_SETTINGS": str(settings)}
        racers = [
            subprocess.Popen(REPLAY, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        outputs = [racer.communicate(timeout=120)[0].decode() for racer in racers]
        assert all(racer.returncode == 0 for racer in racers), outputs
        replayed = [
            int(line.split()[1])
            for out in outputs
            for line in out.splitlines()
            if line.startswith("replayed ")
        ]
        assert sum(replayed) == rows, outputs  # each row replayed by exactly one process
        counts = request_counts(ports)
    finally:
        stop(clickhouse)
    assert len(counts) == rows and all(n == 1 for n in counts.values())
    assert not journal_files(directory, "requests")
