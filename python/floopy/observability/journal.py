"""The journal: every log row a worker writes, on disk before anything else happens to it.

Each worker process appends its rows through the native ``JsonlWriter`` to files of its own
(several processes must not share one): ``<sink>.<owner>.jsonl``, rotated to ``.jsonl.1``
and ``.jsonl.2`` at ``LOG_SPOOL_MAX_BYTES``, the oldest dropped and counted. ``<owner>``
names the process; it holds an exclusive lock on ``<owner>.owner`` for its lifetime, so the
kernel tells everyone else when it died (the lock goes with it, even on SIGKILL).

The log store process (``floopy.logstore``) carries the rows into ClickHouse. It never reads
a file a writer appends to: of a running writer it *claims* only rotated generations
(``.jsonl.1``, ``.jsonl.2``), by renaming them to ``<sink>.<owner>.claimed.<seq>.jsonl``; of
a process that died, every file. The worker hands its rows over by rotating early
(``hand_over``, every ``LOG_FLUSH_INTERVAL``) whenever the store has taken ``.jsonl.1``. While
the store or ClickHouse is down nothing is taken, so the live file fills to the cap and the
generations rotate as usual, the oldest dropped and counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from floopy._native import JsonlWriter

log = logging.getLogger("floopy.log")

JOURNAL_DIR = "journal"
GENERATIONS = 3
# Ended each spooled batch in earlier versions; never a row (rows are JSON objects).
BATCH_END = b"[]"
_FILE = re.compile(
    r"^(?P<sink>[a-z_]+)\.(?P<owner>[0-9a-z-]+)\.(?:jsonl(?:\.\d+)?|claimed\.\d+\.jsonl)$"
)


def journal_dir(data_dir: str) -> Path:
    return Path(data_dir).resolve() / JOURNAL_DIR


def new_owner() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


class OwnerLock:
    """This process's claim on its journal files, held until it exits."""

    def __init__(self, directory: Path, owner: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.owner = owner
        self.path = directory / f"{owner}.owner"
        self._file: IO[str] | None = self.path.open("w")
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        """Called at a clean exit: the files stay and the next process replays them."""
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on ``path`` for the block: yields whether it was
    taken. The kernel drops it when the holder dies, so a stale lock is taken over as soon as
    its process is gone; the file itself stays (deleting a lock file races with takers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def owner_alive(directory: Path, owner: str) -> bool:
    with try_lock(directory / f"{owner}.owner") as taken:
        return not taken


class JournalFile:
    """One sink's journal in this process. ``append`` and ``hand_over`` are called on a
    worker's event loop (one write per request, which reaches the OS before it returns);
    ``adopt`` by the log store process for files it takes over."""

    def __init__(self, directory: Path, sink: str, owner: str, max_bytes: int) -> None:
        self.directory = directory
        self.sink = sink
        self.owner = owner
        self.live = directory / f"{sink}.{owner}.jsonl"
        self._writer = JsonlWriter(self.live, max_bytes=max_bytes, generations=GENERATIONS)
        self._lock = threading.Lock()  # the claimed-name sequence
        self._seq = 0

    def append(self, lines: Sequence[bytes]) -> int:
        """Appends rows; returns how many older rows rotation dropped to make room. Raises
        OSError, or ValueError for a row that is empty or holds a newline."""
        return self._writer.write_many(lines)

    def hand_over(self) -> bool:
        """Rotates early if the store took ``.jsonl.1`` and rows wait in the live file."""
        return self._writer.hand_over()

    def sync(self) -> None:
        self._writer.sync()

    def close(self) -> None:
        self._writer.sync()
        self._writer.close()

    def adopt(self, path: Path) -> Path:
        """Takes a file of another process over as this process's claimed file, its read
        position with it: a rotated generation, or any file of a process that died."""
        with self._lock:
            self._seq += 1
            target = self.directory / (
                f"{self.sink}.{self.owner}.claimed.{time.time_ns():020d}{self._seq:06d}.jsonl"
            )
            os.rename(path, target)
            position = position_file(path)
            if position.exists():
                os.rename(position, position_file(target))
            return target

    def claimed(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.sink}.{self.owner}.claimed.*.jsonl"))


def position_file(path: Path) -> Path:
    """Where the log store keeps how far it has inserted a claimed file."""
    return path.with_name(path.name + ".pos")


def journal_files(directory: Path, sink: str) -> dict[str, list[Path]]:
    """This sink's journal files in ``directory`` (live, rotated and claimed) by owner."""
    found: dict[str, list[Path]] = {}
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        match = _FILE.match(path.name)
        if match and match["sink"] == sink:
            found.setdefault(match["owner"], []).append(path)
    return found


def claim_order(paths: list[Path]) -> list[Path]:
    """Claimed files by claim order, then ``.jsonl.2``, ``.jsonl.1``, ``.jsonl``."""

    def key(path: Path) -> tuple[int, str]:
        name = path.name
        if ".claimed." in name:
            return (0, name)
        generation = name.rpartition(".jsonl")[2].lstrip(".")
        return (1, f"{99 - int(generation or 0):02d}")

    return sorted(paths, key=key)


def pending_bytes(directory: Path, sink: str) -> int:
    total = 0
    for paths in journal_files(directory, sink).values():
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
    return total
