"""Replaying the spool into ClickHouse once it answers again.

One replayer per sink across processes: it holds ``<sink>.replaying`` (an exclusive lock
the kernel drops if its holder dies, so a stale lock is taken over). It claims this
process's files and those of processes that died, then inserts each claimed file in batches
and deletes it only after every batch is in. Each batch carries a deduplication token made
from its content, so a file replayed again after a crash half-way is not counted twice, in
the tables or in their rollups; a row that is replayed twice anyway (a crash between insert
and delete, with a new batch layout) stays one row in the ReplacingMergeTree tables.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from floopy._native import JsonlReader
from floopy.observability.fallback import (
    BATCH_END,
    Spool,
    owner_alive,
    replay_order,
    spool_files,
    try_lock,
)
from floopy.observability.metrics import Metrics
from floopy.observability.store import LogStore, StoreUnavailable, content_token

# A batch is cut past this many times the batch size even without its end line (a live
# batch is never larger than the batch size, so this only cuts files without ends).
BATCH_CUT = 4

log = logging.getLogger("floopy.log")

Progress = Callable[[str, int, Path], None]  # sink, rows replayed so far, file


class Replayer:
    def __init__(
        self,
        store: LogStore,
        spools: dict[str, Spool],
        metrics: Metrics,
        batch_size: int,
        progress: Progress | None = None,
    ) -> None:
        self._store = store
        self._spools = spools
        self._metrics = metrics
        self._batch_size = batch_size
        self._progress = progress

    def pending(self) -> bool:
        """Whether any spool file of any process waits (a cheap directory listing)."""
        return any(spool_files(spool.directory, sink) for sink, spool in self._spools.items())

    def replay(self) -> int:
        """Replays every sink it can lock; returns the rows replayed. Raises
        StoreUnavailable when ClickHouse stops answering half-way (files not finished stay
        claimed and are replayed next time)."""
        return sum(self.replay_sink(sink) for sink in self._spools)

    def replay_sink(self, sink: str) -> int:
        spool = self._spools[sink]
        with try_lock(spool.directory / f"{sink}.replaying") as held:
            if not held:
                return 0  # another process is replaying this sink
            spool.claim()
            self._adopt_orphans(spool)
            return sum(self._replay_file(sink, path) for path in spool.claimed())

    def _adopt_orphans(self, spool: Spool) -> None:
        for owner, paths in spool_files(spool.directory, spool.sink).items():
            if owner == spool.owner or owner_alive(spool.directory, owner):
                continue
            for path in replay_order(paths):
                spool.adopt(path)
            _forget_owner(spool.directory, owner)

    def _replay_file(self, sink: str, path: Path) -> int:
        reader = JsonlReader(path, batch_size=self._batch_size)
        rows = 0
        for batch in spooled_batches(reader, self._batch_size):
            inserted = self._insert(sink, batch)
            self._metrics.sinks[sink].add("replayed", inserted)
            rows += inserted
            if self._progress is not None:
                self._progress(sink, rows, path)
        if reader.skipped:
            log.warning("%s: %d torn line(s) skipped in %s", sink, reader.skipped, path.name)
            self._metrics.sinks[sink].add("dropped", reader.skipped)
        path.unlink()
        return rows

    def _insert(self, sink: str, batch: list[bytes]) -> int:
        try:
            self._store.insert_lines(sink, batch, dedup_token=content_token(batch))
            return len(batch)
        except StoreUnavailable:
            if not self._store.ping():
                raise
        # ClickHouse answers but refused the batch: some line in it is bad. Keep the rest.
        return self._insert_one_by_one(sink, batch)

    def _insert_one_by_one(self, sink: str, batch: list[bytes]) -> int:
        inserted = 0
        for line in batch:
            try:
                self._store.insert_lines(sink, [line], dedup_token=content_token([line]))
                inserted += 1
            except StoreUnavailable as exc:
                if not self._store.ping():
                    raise
                log.error("%s: a spooled row was refused and dropped: %s", sink, exc)
                self._metrics.sinks[sink].add("dropped", 1)
        return inserted


def _forget_owner(directory: Path, owner: str) -> None:
    """Removes a dead process's owner file once none of its spool files is left."""
    if any(directory.glob(f"*.{owner}.*jsonl*")):
        return
    with try_lock(directory / f"{owner}.owner") as taken:
        if taken:
            with contextlib.suppress(FileNotFoundError):
                (directory / f"{owner}.owner").unlink()


def spooled_batches(chunks: Iterable[list[bytes]], batch_size: int) -> Iterator[list[bytes]]:
    """The rows of a spool file in the batches they were spooled in (each ended by
    ``BATCH_END``), so each is inserted under the token its live insert carried. Rows after
    the last end (a torn file), or in a file without ends, go in batches of ``batch_size``;
    a batch that runs far past it without an end is cut too, to bound memory."""
    batch: list[bytes] = []
    for chunk in chunks:
        for line in chunk:
            if line == BATCH_END:
                if batch:
                    yield batch
                batch = []
                continue
            batch.append(line)
            if len(batch) >= BATCH_CUT * batch_size:
                yield batch
                batch = []
    if batch:
        yield batch
