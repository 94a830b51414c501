"""Migrations and the carrier (journals into ClickHouse) against the real embedded engine
(chDB).

chDB admits one data path per process, so the whole module shares one store and closes it
at the end; rows are told apart by their request ids.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from floopy.logstore.process import next_wait
from floopy.observability.carrier import Carrier
from floopy.observability.journal import JournalFile, OwnerLock, journal_files
from floopy.observability.metrics import SinkCounters
from floopy.observability.migrations import migrate, migrations
from floopy.observability.record import REQUESTS, SINKS, SpanRecord, table_of
from floopy.observability.store import LogStore, StoreUnavailable, content_token
from floopy.settings import Settings, load_settings


def settings(**overrides: object) -> Settings:
    return msgspec.structs.replace(load_settings({}), **overrides)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogStore]:
    store = LogStore(None, str(tmp_path_factory.mktemp("embedded")))
    migrate(store, settings(), lambda line: None)
    yield store
    store.close()


def closed_port_store(tmp_path: Path) -> LogStore:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return LogStore(f"http://127.0.0.1:{port}/floopy", str(tmp_path))


def request_row(marker: str, status: int = 200, latency: float = 12.5) -> bytes:
    return msgspec.json.encode(
        {
            "request_id": f"{marker}-{uuid.uuid4().hex}",
            "time": time.time(),
            "organization": marker,
            "project": "p",
            "model": "m",
            "provider": "mock",
            "status": status,
            "latency_ms": latency,
            "ttft_ms": latency / 2,
            "total_tokens": 10,
            "cost_usd": 0.5,
        }
    )


def count(store: LogStore, marker: str) -> int:
    rows = store.rows(f"SELECT count() FROM floopy.requests WHERE organization = '{marker}'")
    return int(rows[0][0])


def test_migrations_run_once_and_follow_retention_settings(store: LogStore) -> None:
    assert migrate(store, settings(), lambda line: None) == 0
    versions = store.rows("SELECT version FROM floopy.schema_migrations FINAL ORDER BY version")
    assert [v for (v,) in versions] == [m.version for m in migrations()]
    assert set(range(1, 13)) <= {v for (v,) in versions}
    for table in ("requests", "spans"):  # merged a column at a time (0006)
        create = store.command(f"SHOW CREATE TABLE floopy.{table}")
        assert "vertical_merge_algorithm_min_rows_to_activate = 1" in create
    said: list[str] = []
    migrate(store, settings(log_spans_ttl_days=7, log_bodies_ttl_days=3), said.append)
    assert any("spans now keeps rows 7 days" in line for line in said)
    assert "toIntervalDay(7)" in store.command("SHOW CREATE TABLE floopy.spans")
    assert "toIntervalDay(3)" in store.command("SHOW CREATE TABLE floopy.requests")
    migrate(store, settings(), lambda line: None)  # back to the defaults


def test_rollups_count_a_replayed_block_once(store: LogStore) -> None:
    marker = "rollup"
    block = [request_row(marker), request_row(marker, status=502), request_row(marker)]
    for _ in range(2):  # the same block replayed twice, with its content token
        store.insert_lines("requests", block, dedup_token="same-block")
    assert count(store, marker) == 3
    rows = store.rows(
        "SELECT sum(requests), sum(errors), sum(total_tokens), sum(cost_usd), "
        "quantilesTDigestMerge(0.5)(latency_ms)[1] "
        f"FROM floopy.requests_by_minute WHERE organization = '{marker}'"
    )
    assert rows == [(3, 1, 30, 1.5, 12.5)]


def test_a_trace_row_becomes_one_spans_row_per_span(store: LogStore) -> None:
    started = round(time.time(), 3)  # older than the spans TTL would be dropped on insert

    def span(span_id: str, parent_id: str, name: str, **attributes: str) -> dict[str, Any]:
        return {
            "span_id": span_id,
            "parent_id": parent_id,
            "name": name,
            "start_time": started,
            "duration_ms": 1.5,
            "status": "ok",
            "attributes": attributes,
        }

    trace = msgspec.json.encode(
        {
            "request_id": "req_trace",
            "organization": "acme",
            "project": "web",
            "spans": [
                span("a", "", "request", status="200"),
                span("b", "a", "dispatch"),
                span("c", "b", "provider_attempt", provider="openai"),
            ],
        }
    )
    for _ in range(2):  # replayed twice with its content token: inserted once
        store.insert_lines("traces", [trace], dedup_token="same-trace")
    rows = store.rows(
        "SELECT span_id, parent_id, name, attributes, organization, project, "
        "toUnixTimestamp64Milli(start_time) FROM floopy.spans "
        "WHERE request_id = 'req_trace' ORDER BY span_id"
    )
    millis = round(started * 1000)
    assert rows == [
        ("a", "", "request", {"status": "200"}, "acme", "web", millis),
        ("b", "a", "dispatch", {}, "acme", "web", millis),
        ("c", "b", "provider_attempt", {"provider": "openai"}, "acme", "web", millis),
    ]
    assert store.rows("SELECT count() FROM floopy.traces") == [(0,)]  # stores nothing itself


def test_a_request_row_with_its_spans_fills_requests_and_spans_once(store: LogStore) -> None:
    """What a worker wrote from migration 0012 on: one line per request, spans inside as
    objects; the intake of migration 0015 still takes it. Replayed with its content token,
    it lands once, in the requests table, its rollup and the spans table."""
    row = msgspec.json.decode(request_row("intake"))
    started = row["time"]
    row["spans"] = [
        {"span_id": "root", "parent_id": "", "name": "request", "start_time": started,
         "duration_ms": 12.5, "status": "ok", "attributes": {"status": "200"}},
        {"span_id": "auth", "parent_id": "root", "name": "auth", "start_time": started,
         "duration_ms": 0.1, "status": "ok", "attributes": {}},
    ]  # fmt: skip
    line = msgspec.json.encode(row)
    for _ in range(2):
        store.insert_lines(table_of(REQUESTS), [line], dedup_token=content_token([line]))
    assert count(store, "intake") == 1
    assert store.rows(
        "SELECT sum(requests) FROM floopy.requests_by_minute WHERE organization = 'intake'"
    ) == [(1,)]
    spans = store.rows(
        "SELECT span_id, parent_id, name, organization FROM floopy.spans FINAL "
        f"WHERE request_id = '{row['request_id']}' ORDER BY span_id"
    )
    assert spans == [("auth", "root", "auth", "intake"), ("root", "", "request", "intake")]
    assert store.rows("SELECT count() FROM floopy.request_intake") == [(0,)]  # keeps nothing


def test_a_request_line_as_a_worker_writes_it_lands_with_its_spans(store: LogStore) -> None:
    """Since migration 0015 each span is an array of its fields (``span_rows``)."""
    started = time.time()
    row = msgspec.json.decode(request_row("arrays"))
    row["span_rows"] = msgspec.to_builtins(
        [
            SpanRecord("r00t00000000001", "", "request", started, 12.5, "ok", {"status": "200"}),
            SpanRecord(
                "r00t00000000002", "r00t00000000001", "auth", started + 0.001, 0.1, "ok", {}
            ),
        ]
    )
    line = msgspec.json.encode(row)
    assert b'"span_rows":[["r00t00000000001","","request",' in line
    store.insert_lines(table_of(REQUESTS), [line], dedup_token=content_token([line]))
    assert count(store, "arrays") == 1
    spans = store.rows(
        "SELECT span_id, parent_id, name, duration_ms, status, attributes, "
        "toUnixTimestamp64Micro(start_time) FROM floopy.spans FINAL "
        f"WHERE request_id = '{row['request_id']}' ORDER BY span_id"
    )
    assert spans == [
        ("r00t00000000001", "", "request", 12.5, "ok", {"status": "200"}, int(started * 1e6)),
        ("r00t00000000002", "r00t00000000001", "auth", 0.1, "ok", {}, int((started + 0.001) * 1e6)),
    ]


def test_rounds_stretch_under_load_up_to_the_longest_wait() -> None:
    configured = settings(log_flush_interval=1.0, log_flush_max_interval=4.0)
    assert next_wait(configured, 0.05) == 1.0  # a light round: the configured interval
    assert next_wait(configured, 0.5) == 2.0  # four times the round
    assert next_wait(configured, 3.0) == 4.0  # never past the longest
    assert next_wait(settings(log_flush_interval=6.0, log_flush_max_interval=4.0), 3.0) == 6.0


def journals(directory: Path, owner: str) -> dict[str, JournalFile]:
    return {sink: JournalFile(directory, sink, owner, 1 << 20) for sink in SINKS}


def carrier(
    store: Any, directory: Path, batch_size: int = 10
) -> tuple[Carrier, dict[str, SinkCounters]]:
    counters = {sink: SinkCounters() for sink in SINKS}
    return Carrier(store, journals(directory, "9-carrier"), counters, batch_size), counters


def test_the_carrier_takes_what_a_running_writer_hands_over(
    store: LogStore, tmp_path: Path
) -> None:
    owner = OwnerLock(tmp_path, "1-live")  # held: the writer is alive
    writer = journals(tmp_path, "1-live")["requests"]
    writer.append([request_row("live") for _ in range(12)])
    carry, counters = carrier(store, tmp_path)

    assert carry.carry() == 0, "a running writer's live file is never taken"
    assert writer.hand_over()
    assert carry.carry() == 12
    writer.append([request_row("live") for _ in range(5)])  # into a fresh file
    assert writer.hand_over()
    assert carry.carry() == 5

    assert count(store, "live") == 17 and counters["requests"].inserted == 17
    assert not carry.waiting()
    owner.release()


class BusyWriter:
    """The real store, with a writer that goes on serving during each of the first
    ``inserts`` inserts: it writes two files' worth of rows, as a worker does while a long
    round carries. Without taking them as they rotate, the second insert of a round would
    push the writer's oldest generation out."""

    ROWS = 4  # a file's worth (small_journal)

    def __init__(self, store: LogStore, writer: JournalFile, inserts: int) -> None:
        self._store = store
        self._writer = writer
        self._left = inserts
        self.written = 0
        self.dropped = 0

    def insert_lines(self, table: str, lines: list[bytes], dedup_token: str = "") -> None:
        self._store.insert_lines(table, lines, dedup_token=dedup_token)
        if self._left > 0:
            self._left -= 1
            for _ in range(2):
                self.write()

    def write(self) -> None:
        self.dropped += self._writer.append([request_row("busy") for _ in range(self.ROWS)])
        self.written += self.ROWS
        self._writer.hand_over()

    def ping(self) -> bool:
        return self._store.ping()


def small_journal(directory: Path, owner: str) -> JournalFile:
    return JournalFile(directory, "requests", owner, BusyWriter.ROWS * len(request_row("busy")))


def test_a_store_behind_takes_what_rotates_during_its_round(
    store: LogStore, tmp_path: Path
) -> None:
    owner = OwnerLock(tmp_path, "1-busy")
    busy = BusyWriter(store, small_journal(tmp_path, "1-busy"), inserts=6)
    counters = {sink: SinkCounters() for sink in SINKS}
    carry = Carrier(busy, journals(tmp_path, "9-carrier"), counters, 4)  # type: ignore[arg-type]
    busy.write()
    busy.write()

    carry.carry()
    assert carry.behind, "files taken during the round wait for the next one"
    rounds = 1
    while carry.behind:
        carry.carry()
        rounds += 1
    busy._writer.hand_over()
    carry.carry()

    assert rounds > 2
    assert busy.dropped == 0 and counters["requests"].dropped == 0
    assert count(store, "busy") == counters["requests"].inserted == busy.written == 56
    owner.release()


def test_the_store_takes_no_more_than_its_backlog_bound(store: LogStore, tmp_path: Path) -> None:
    owner = OwnerLock(tmp_path, "1-many")
    writer = small_journal(tmp_path, "1-many")
    for _ in range(2):  # .jsonl.2 and .jsonl.1
        writer.append([request_row("bound") for _ in range(4)])
        writer.hand_over()
        writer.append([request_row("bound") for _ in range(4)])
    counters = {sink: SinkCounters() for sink in SINKS}
    file_bytes = 4 * len(request_row("bound"))
    down = closed_port_store(tmp_path)
    carry = Carrier(
        down, journals(tmp_path, "9-carrier"), counters, 10, backlog_max_bytes=file_bytes
    )
    with pytest.raises(StoreUnavailable):
        carry.carry()  # claims, then finds the store down: what it claimed stays claimed
    held = carry._journals["requests"].claimed()
    assert len(held) == 1, "one file fills the bound; the other waits in the writer's files"
    assert len(journal_files(tmp_path, "requests")["1-many"]) >= 2
    owner.release()


def test_rows_journaled_during_an_outage_wait_and_land_once(
    store: LogStore, tmp_path: Path
) -> None:
    writer = journals(tmp_path, "1-gone")["requests"]  # no owner lock: a process that died
    writer.append([request_row("outage") for _ in range(25)])
    writer.append([b'{"request_id": "bad", "status": "not a number"}'])
    down, _ = carrier(closed_port_store(tmp_path), tmp_path)
    with pytest.raises(StoreUnavailable):
        down.carry()
    assert journal_files(tmp_path, "requests"), "the rows wait on disk"

    carry, counters = carrier(store, tmp_path)
    assert carry.carry() == 25

    assert count(store, "outage") == 25
    assert counters["requests"].dropped == 1  # the bad row, and only it
    assert journal_files(tmp_path, "requests") == {}


# --- exactly once where it is hard ---------------------------------------------------------------


class FlakyStore:
    """The real store behind a fault: from insert number ``fail_from`` on, each insert is
    applied (``applied=True``: the reply is what got lost) or not, then reported failed;
    ``ping`` says the store is gone while it fails."""

    def __init__(self, store: LogStore, fail_from: int, *, applied: bool) -> None:
        self._store = store
        self._fail_from = fail_from
        self._applied = applied
        self.inserts = 0

    def insert_lines(self, table: str, lines: list[bytes], dedup_token: str = "") -> None:
        self.inserts += 1
        if self.inserts < self._fail_from:
            self._store.insert_lines(table, lines, dedup_token=dedup_token)
            return
        if self._applied:
            self._store.insert_lines(table, lines, dedup_token=dedup_token)
        raise StoreUnavailable("connection reset by peer")

    def ping(self) -> bool:
        return False


def once_each(store: LogStore, marker: str) -> tuple[int, int, int]:
    """count(), uniqExact(request_id) of the raw rows (no FINAL) and the rollup's count."""
    where = f"WHERE organization = '{marker}'"
    raw = store.rows(f"SELECT count(), uniqExact(request_id) FROM floopy.requests {where}")
    rolled = store.rows(f"SELECT sum(requests) FROM floopy.requests_by_minute {where}")
    return int(raw[0][0]), int(raw[0][1]), int(rolled[0][0])


def test_a_carry_stopped_half_way_then_resumed_counts_every_row_once(
    store: LogStore, tmp_path: Path
) -> None:
    journals(tmp_path, "1-gone")["requests"].append([request_row("resumed") for _ in range(25)])
    flaky = FlakyStore(store, fail_from=2, applied=False)  # the store goes away after batch 1
    with pytest.raises(StoreUnavailable):
        carrier(flaky, tmp_path)[0].carry()
    assert once_each(store, "resumed") == (10, 10, 10), "the first batch went in"

    carrier(store, tmp_path)[0].carry()  # resumed from the stored position

    assert once_each(store, "resumed") == (25, 25, 25)
    assert journal_files(tmp_path, "requests") == {}


def test_a_batch_applied_whose_reply_was_lost_is_not_counted_twice(
    store: LogStore, tmp_path: Path
) -> None:
    """The position moves only after ClickHouse confirms; the batch read again after a lost
    reply is cut the same way and carries the same content token, so it is skipped, in the
    table and in its rollup."""
    journals(tmp_path, "1-gone")["requests"].append([request_row("reply-lost") for _ in range(25)])
    flaky = FlakyStore(store, fail_from=2, applied=True)  # batch 2 applied, its reply lost
    with pytest.raises(StoreUnavailable):
        carrier(flaky, tmp_path)[0].carry()
    assert once_each(store, "reply-lost") == (20, 20, 20)

    carrier(store, tmp_path)[0].carry()

    assert once_each(store, "reply-lost") == (25, 25, 25)
