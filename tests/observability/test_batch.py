"""The batch worker's pacing and priority, against a store that records what it is sent.

Under load rows keep arriving while an insert runs. They must wait for the next flush: sent
straight after, each insert's duration would set the next batch's size, and a store that
takes a while per insert would get a stream of tiny inserts (measured on the embedded
engine: 7-row batches at 100 requests/s, most of a core spent on insert overhead).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from floopy.observability.batch import BACKGROUND_NICENESS, BatchWorker, StoreHealth
from floopy.observability.fallback import Spool
from floopy.observability.metrics import SinkCounters
from floopy.observability.store import LogStore


class RecordingStore(LogStore):
    """Keeps each insert's rows; runs ``during_insert`` inside the first one."""

    def __init__(self, during_insert: object = None) -> None:
        super().__init__("http://127.0.0.1:9/floopy", ".")
        self.batches: list[list[bytes]] = []
        self.during_insert = during_insert
        self.inserted = threading.Event()  # set by every insert

    def insert_lines(self, table: str, lines: Sequence[bytes], dedup_token: str = "") -> None:
        if not self.batches and callable(self.during_insert):
            self.during_insert()
        self.batches.append(list(lines))
        self.inserted.set()


def batch_worker(store: LogStore, tmp_path: Path, batch_size: int) -> BatchWorker:
    health = StoreHealth()
    health.mark(True)
    return BatchWorker(
        "requests",
        store,
        Spool(tmp_path, "requests", "1-a", 1 << 20),
        health,
        SinkCounters(),
        batch_size=batch_size,
        flush_interval=3600.0,  # only a full batch, or closing, sends anything here
        queue_size=1000,
    )


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def rows(prefix: str, count: int) -> list[bytes]:
    return [f'{{"request_id": "{prefix}-{i}"}}'.encode() for i in range(count)]


def test_rows_that_arrive_during_an_insert_wait_for_the_next_flush(tmp_path: Path) -> None:
    worker: BatchWorker | None = None

    def arrive_meanwhile() -> None:
        assert worker is not None
        for row in rows("late", 3):
            worker.put(row)

    store = RecordingStore(during_insert=arrive_meanwhile)
    worker = batch_worker(store, tmp_path, batch_size=5)
    for row in rows("first", 5):
        worker.put(row)  # a full batch: the thread wakes and sends it

    assert store.inserted.wait(10)
    store.inserted.clear()
    # The late rows are neither a batch nor due: nothing more goes out until the next flush.
    assert not store.inserted.wait(0.5)
    assert worker.depth == 3

    worker.close()
    assert [len(batch) for batch in store.batches] == [5, 3]
    assert store.batches[1] == rows("late", 3)


def test_a_full_batch_arriving_during_an_insert_goes_out_at_once(tmp_path: Path) -> None:
    worker: BatchWorker | None = None

    def arrive_meanwhile() -> None:
        assert worker is not None
        for row in rows("late", 4):
            worker.put(row)

    store = RecordingStore(during_insert=arrive_meanwhile)
    worker = batch_worker(store, tmp_path, batch_size=4)
    for row in rows("first", 4):
        worker.put(row)

    assert until(lambda: len(store.batches) == 2)  # four more rows make a batch of their own
    assert [len(batch) for batch in store.batches] == [4, 4]
    worker.close()


def test_closing_sends_everything_queued(tmp_path: Path) -> None:
    store = RecordingStore()
    worker = batch_worker(store, tmp_path, batch_size=4)
    for row in rows("r", 10):
        worker.put(row)
    worker.close()
    assert [row for batch in store.batches for row in batch] == rows("r", 10)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="platform: per-thread nice is Linux"
)
def test_the_batch_thread_yields_the_cpu_to_the_request_path(tmp_path: Path) -> None:
    seen: list[int] = []

    def note_priority() -> None:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    store = RecordingStore(during_insert=note_priority)
    worker = batch_worker(store, tmp_path, batch_size=1)
    worker.put(rows("r", 1)[0])
    assert until(lambda: bool(seen))
    worker.close()
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen[0] == min(ours + BACKGROUND_NICENESS, 19)
