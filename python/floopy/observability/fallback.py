"""The disk spool: where a sink's rows go when ClickHouse does not take them.

Each process writes its own files, through the native ``JsonlWriter`` (several processes
must not share one): ``<sink>.<owner>.jsonl``, rotated to ``.jsonl.1`` and ``.jsonl.2`` at
``LOG_SPOOL_MAX_BYTES``, the oldest dropped. ``<owner>`` names the process; it holds an
exclusive lock on ``<owner>.owner`` for its lifetime, so the kernel tells everyone else when
it died (the lock goes with it, even on SIGKILL) and its files are free to take over.

Replay never reads a file a writer may still append to: it first *claims* files by renaming
them to ``<sink>.<owner>.claimed.<seq>.jsonl`` (the writer notices and starts a fresh file),
then reads and deletes claimed files at leisure.
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

SPOOL_DIR = "spool"
GENERATIONS = 3
# Ends each spooled batch; never a row (rows are JSON objects, this is not one).
BATCH_END = b"[]"
_FILE = re.compile(
    r"^(?P<sink>[a-z_]+)\.(?P<owner>[0-9a-z-]+)\.(?:jsonl(?:\.\d+)?|claimed\.\d+\.jsonl)$"
)


def spool_dir(data_dir: str) -> Path:
    return Path(data_dir).resolve() / SPOOL_DIR


def new_owner() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


class OwnerLock:
    """This process's claim on its spool files, held until it exits."""

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


class Spool:
    """One sink's spool in this process. ``write`` is called from the batch thread and, when
    the queue overflows, from the event loop; ``claim`` from the replay thread."""

    def __init__(self, directory: Path, sink: str, owner: str, max_bytes: int) -> None:
        self.directory = directory
        self.sink = sink
        self.owner = owner
        self.live = directory / f"{sink}.{owner}.jsonl"
        self._writer = JsonlWriter(self.live, max_bytes=max_bytes, generations=GENERATIONS)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._seq = 0

    def write(self, lines: Sequence[bytes]) -> int:
        """Appends one batch of rows, then the line that ends it (``BATCH_END``): a replay
        inserts the batch as it was, under the same content token as the live insert that
        may have been applied without a reply. Returns how many older rows rotation dropped
        to make room. Raises OSError."""
        with self._lock:
            incoming = sum(len(line) + 1 for line in lines) + len(BATCH_END) + 1
            dropped = self._rows_rotation_would_drop(incoming)
            self._writer.write_many([*lines, BATCH_END])
            return dropped

    def sync(self) -> None:
        with self._lock:
            self._writer.sync()

    def close(self) -> None:
        with self._lock:
            self._writer.sync()
            self._writer.close()

    def claim(self) -> list[Path]:
        """Renames this process's files to claimed names (oldest first) and returns every
        claimed file of this sink and owner, in replay order."""
        with self._lock:
            for path in map(Path, self._writer.files()):
                self._rename_claimed(path)
        return self.claimed()

    def adopt(self, path: Path) -> Path:
        """Takes a file of a dead process over as this process's claimed file."""
        with self._lock:
            return self._rename_claimed(path)

    def claimed(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.sink}.{self.owner}.claimed.*.jsonl"))

    def _rename_claimed(self, path: Path) -> Path:
        self._seq += 1
        target = self.directory / (
            f"{self.sink}.{self.owner}.claimed.{time.time_ns():020d}{self._seq:06d}.jsonl"
        )
        os.rename(path, target)
        return target

    def _rows_rotation_would_drop(self, incoming: int) -> int:
        """The native writer drops the oldest generation when the live file would pass the
        cap; its rows are lost, so they are counted first."""
        try:
            size = self.live.stat().st_size
        except FileNotFoundError:
            return 0
        if size == 0 or size + incoming <= self._max_bytes:
            return 0
        oldest = self.live.with_name(f"{self.live.name}.{GENERATIONS - 1}")
        try:
            with oldest.open("rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return 0
        return data.count(b"\n") - data.count(BATCH_END + b"\n")


def spool_files(directory: Path, sink: str) -> dict[str, list[Path]]:
    """This sink's spool files in ``directory`` by owner."""
    found: dict[str, list[Path]] = {}
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        match = _FILE.match(path.name)
        if match and match["sink"] == sink:
            found.setdefault(match["owner"], []).append(path)
    return found


def replay_order(paths: list[Path]) -> list[Path]:
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
    for paths in spool_files(directory, sink).values():
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
    return total
