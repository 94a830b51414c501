"""A batch worker per sink: a bounded in-memory queue drained by a thread of its own.

The request path only calls ``put``: an append to a deque, or, when the queue is full (the
database is slower than the traffic), a write to the disk spool, so a row is never dropped
to save memory. The thread sends a batch when ``batch_size`` rows are waiting or
``flush_interval`` has passed, then waits again: rows that came in during an insert go with
the next flush, so inserts stay few and full however slow the store is. While ClickHouse is
marked down it spools without trying: one failed insert is enough to know, and the probe
task, not every batch, finds out when it is back. The threads run at a lower CPU priority
than the event loop (``run_in_background``).
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import threading

from floopy.observability.fallback import Spool
from floopy.observability.metrics import SinkCounters
from floopy.observability.store import LogStore, StoreUnavailable, content_token

log = logging.getLogger("floopy.log")

JOIN_TIMEOUT = 15.0
# How much lower than the request path the log's threads run (nice levels, Linux).
BACKGROUND_NICENESS = 10
PR_SET_NAME = 15  # prctl(2): names the calling thread (15 bytes are kept)


def run_in_background() -> None:
    """Lowers the calling thread's CPU priority. Called first by every thread that talks to
    the store: the embedded engine's own threads (inserts, merges) start from these and
    inherit it, so when the cores are busy the event loop serving requests goes first and
    the log catches up later (its queue, then the spool, absorb the delay). The thread also
    takes its Python name at the OS level, so ``top -H`` and ``/proc`` tell it apart."""
    _name_native_thread(threading.current_thread().name)
    try:
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))
    except (AttributeError, OSError):  # not Linux, or not allowed: normal priority then
        log.debug("could not lower the log thread's priority", exc_info=True)


def _name_native_thread(name: str) -> None:
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (AttributeError, OSError):  # not Linux: the name only helps there
        pass


class StoreHealth:
    """Whether ClickHouse took the last statement; shared by a process's workers."""

    def __init__(self) -> None:
        self._up: bool | None = None  # None until the first statement
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        return bool(self._up)

    def mark(self, up: bool, reason: str = "") -> None:
        with self._lock:
            before, self._up = self._up, up
        if before is False and up:
            log.warning("log store is back; spooled rows will be replayed")
        elif before is not False and not up:
            log.warning("log store unavailable, spooling to disk: %s", reason)


class BatchWorker:
    def __init__(
        self,
        sink: str,
        store: LogStore,
        spool: Spool,
        health: StoreHealth,
        counters: SinkCounters,
        *,
        batch_size: int,
        flush_interval: float,
        queue_size: int,
    ) -> None:
        self.sink = sink
        self._store = store
        self._spool = spool
        self._health = health
        self._counters = counters
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue_size = queue_size
        self._queue: collections.deque[bytes] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"floopy-log-{sink}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def put(self, line: bytes) -> None:
        """Never blocks on the database and never raises."""
        if len(self._queue) >= self._queue_size:
            self._to_spool([line])
            return
        self._queue.append(line)
        self._counters.add("queued", 1)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    def close(self) -> None:
        """Sends what is queued (to ClickHouse, or to disk) and stops the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(JOIN_TIMEOUT)
        if self._thread.is_alive():  # stuck in an insert: what is still queued goes to disk
            log.warning("%s: log store too slow at shutdown; spooling what is queued", self.sink)
            self._to_spool(self._take(len(self._queue)))

    def _run(self) -> None:
        run_in_background()
        while not self._stopping:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._flush()
        while self._queue:  # stopping: everything goes, however it trickles in
            self._deliver(self._take(self._batch_size))

    def _flush(self) -> None:
        """Sends the rows queued now, in batches, and no more. Rows that arrive during an
        insert wait for the next flush (or a full batch): were they sent at once, each
        insert's duration would set the next batch's size, and a slow store would be fed
        a stream of tiny inserts that each cost as much as a full one."""
        pending = len(self._queue)
        while pending > 0:
            batch = self._take(min(pending, self._batch_size))
            if not batch:
                return
            pending -= len(batch)
            self._deliver(batch)

    def _take(self, count: int) -> list[bytes]:
        batch: list[bytes] = []
        while len(batch) < count:
            try:
                batch.append(self._queue.popleft())
            except IndexError:
                break
        return batch

    def _deliver(self, batch: list[bytes]) -> None:
        if not batch:
            return
        if self._health.up:
            try:
                self._store.insert_lines(self.sink, batch, dedup_token=content_token(batch))
                self._counters.add("inserted", len(batch))
                return
            except StoreUnavailable as exc:
                self._health.mark(False, str(exc))
            except Exception as exc:  # a bug must not lose the batch or kill the thread
                log.exception("%s: insert failed unexpectedly", self.sink)
                self._health.mark(False, str(exc))
        self._to_spool(batch)

    def _to_spool(self, batch: list[bytes]) -> None:
        if not batch:
            return
        try:
            rotated_out = self._spool.write(batch)
        except (OSError, ValueError) as exc:
            log.error(
                "%s: %d log rows lost, the spool is not writable: %s", self.sink, len(batch), exc
            )
            self._counters.add("dropped", len(batch))
            return
        self._counters.add("spooled", len(batch))
        if rotated_out:
            log.error("%s: spool full, %d oldest rows dropped", self.sink, rotated_out)
            self._counters.add("dropped", rotated_out)
