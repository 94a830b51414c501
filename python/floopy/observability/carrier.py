"""Carrying the journals into ClickHouse: what the log store process does each round.

One carrier per sink at a time across processes: a round holds ``<sink>.replaying`` (an
exclusive lock the kernel drops if its holder dies). A round:

1. claims the sink's journal files of every other process, oldest generation first, by
   renaming them: of a running writer only its rotated generations (``.jsonl.2``,
   ``.jsonl.1``: no writer appends to those; ``hand_over`` rotates early to feed them), of a
   process that died every file;
2. inserts each claimed file into its sink's table (``table_of``) in batches of
   ``LOG_BATCH_SIZE`` rows, from the position stored beside it (``<file>.pos``), storing the
   new position after ClickHouse confirms each batch, and deletes the file once it is all
   in.

While a round carries the files it claimed, the writers go on rotating: the round claims
again after each file, so a store that fell behind holds the backlog in its claimed files and
the writers' three generations never fill while it is up. The claimed files are bounded too
(``backlog_max_bytes``, ``LOG_STORE_BACKLOG_MAX_BYTES``): past that the store claims nothing
more and rows wait, and past their cap rotate out, in the writers' files, counted as dropped.
Files claimed during a round are carried by the next one, which starts at once (``behind``).

Each batch carries a deduplication token made from its content, and a file's batches are cut
the same way every time it is read, so a batch inserted but not confirmed (a crash between
the insert and the position) is not counted twice, in the tables or in their rollups; a row
inserted twice anyway stays one row in the ReplacingMergeTree tables.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from floopy._native import JsonlReader
from floopy.observability.journal import (
    BATCH_END,
    JournalFile,
    claim_order,
    journal_files,
    owner_alive,
    position_file,
    try_lock,
)
from floopy.observability.metrics import SinkCounters
from floopy.observability.record import table_of
from floopy.observability.store import LogStore, StoreUnavailable, content_token

log = logging.getLogger("floopy.log")

Progress = Callable[[str, int, Path], None]  # sink, rows carried so far, file
Inserted = Callable[[str, list[bytes]], None]  # sink, the batch ClickHouse confirmed


class Carrier:
    def __init__(
        self,
        store: LogStore,
        journals: dict[str, JournalFile],
        counters: dict[str, SinkCounters],
        batch_size: int,
        *,
        progress: Progress | None = None,
        inserted: Inserted | None = None,
        backlog_max_bytes: int = 0,
    ) -> None:
        self._store = store
        self._journals = journals
        self._counters = counters
        self._batch_size = batch_size
        self._progress = progress
        self._inserted = inserted
        self._backlog_max_bytes = backlog_max_bytes  # 0: no bound
        self.behind = False  # files claimed during the last round wait for the next

    def waiting(self) -> bool:
        """Whether any journal file of any process holds rows (a directory listing and a
        stat per file)."""
        for sink, journal in self._journals.items():
            for paths in journal_files(journal.directory, sink).values():
                if any(_size(path) for path in paths):
                    return True
        return False

    def carry(self) -> int:
        """One round over every sink it can lock; returns the rows inserted. Raises
        StoreUnavailable when ClickHouse stops answering half-way (what is not in yet stays
        claimed, with its position, for the next round)."""
        self.behind = False
        return sum(self.carry_sink(sink) for sink in self._journals)

    def carry_sink(self, sink: str) -> int:
        journal = self._journals[sink]
        with try_lock(journal.directory / f"{sink}.replaying") as held:
            if not held:
                return 0  # another process is carrying this sink
            self._claim(journal)
            rows = 0
            for path in journal.claimed():
                rows += self._carry_file(sink, path)
                self._claim(journal)  # what the writers rotated meanwhile
            if journal.claimed():
                self.behind = True
            return rows

    def _claim(self, journal: JournalFile) -> None:
        room = self._backlog_room(journal)
        for owner, paths in journal_files(journal.directory, journal.sink).items():
            if owner == journal.owner:
                continue
            alive = owner_alive(journal.directory, owner)
            for path in claim_order(paths):
                if alive and not _rotated(path):
                    continue  # the live file of a running writer, or another's claim
                if room <= 0:
                    return  # the backlog is full: rows wait in the writers' files
                size = _size(path)
                try:
                    journal.adopt(path)
                except FileNotFoundError:
                    continue  # rotated under us: found again next round
                room -= size
            if not alive:
                _forget_owner(journal.directory, owner)

    def _backlog_room(self, journal: JournalFile) -> float:
        """Bytes this store may still claim for the sink."""
        if not self._backlog_max_bytes:
            return float("inf")
        held = sum(_size(path) - _stored_position(path) for path in journal.claimed())
        return self._backlog_max_bytes - held

    def _carry_file(self, sink: str, path: Path) -> int:
        start = _stored_position(path)
        reader = JsonlReader(path, batch_size=self._batch_size, offset=start)
        rows = 0
        for batch in journal_batches(reader):
            inserted = self._insert(sink, batch)
            _store_position(path, reader.position)
            self._counters[sink].add("inserted", inserted)
            if self._inserted is not None:
                self._inserted(sink, batch)
            rows += inserted
            if self._progress is not None:
                self._progress(sink, rows, path)
        if reader.skipped:
            log.warning("%s: %d torn line(s) skipped in %s", sink, reader.skipped, path.name)
            self._counters[sink].add("dropped", reader.skipped)
        path.unlink()
        with contextlib.suppress(FileNotFoundError):
            position_file(path).unlink()
        return rows

    def _insert(self, sink: str, batch: list[bytes]) -> int:
        try:
            self._store.insert_lines(table_of(sink), batch, dedup_token=content_token(batch))
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
                self._store.insert_lines(table_of(sink), [line], dedup_token=content_token([line]))
                inserted += 1
            except StoreUnavailable as exc:
                if not self._store.ping():
                    raise
                log.error("%s: a journal row was refused and dropped: %s", sink, exc)
                self._counters[sink].add("dropped", 1)
        return inserted


def _rotated(path: Path) -> bool:
    """``.jsonl.1``, ``.jsonl.2``, ...: a generation no writer appends to any more."""
    return path.name.rpartition(".jsonl")[2].lstrip(".").isdigit()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _stored_position(path: Path) -> int:
    try:
        return int(position_file(path).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _store_position(path: Path, position: int) -> None:
    """Written aside and renamed into place, so a crash leaves the old position or the new,
    never a torn one."""
    target = position_file(path)
    scratch = target.with_name(f"{target.name}.{os.getpid()}.{time.monotonic_ns()}")
    scratch.write_text(f"{position}\n")
    os.replace(scratch, target)


def _forget_owner(directory: Path, owner: str) -> None:
    """Removes a dead process's owner file once none of its journal files is left."""
    if any(directory.glob(f"*.{owner}.*jsonl*")):
        return
    with try_lock(directory / f"{owner}.owner") as taken:
        if taken:
            with contextlib.suppress(FileNotFoundError):
                (directory / f"{owner}.owner").unlink()


def journal_batches(chunks: Iterable[list[bytes]]) -> Iterator[list[bytes]]:
    """The reader's batches as they come (cut the same way every time a file is read from
    the same position), without the ``BATCH_END`` lines an earlier version's spool ended its
    batches with. One batch per chunk and no read ahead: after a batch is inserted, the
    reader's position is just past it."""
    for chunk in chunks:
        batch = [line for line in chunk if line != BATCH_END]
        if batch:
            yield batch
