"""The log store process's status file, ``DATA_DIR/store/status.json``.

The process rewrites it after every round (written aside and renamed into place, so a reader
never sees half of it); workers read it when ``/readyz`` or ``/metrics`` is asked. A status
whose heartbeat is older than a few rounds, or whose process is gone, means the store
process is down: rows then wait in the journals.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from floopy.observability.journal import pending_bytes
from floopy.observability.metrics import StoreGauges
from floopy.observability.record import SINKS

STORE_DIR = "store"
STATUS_FILE = "status.json"
# A heartbeat older than this many rounds (and at least STALE_MIN seconds) is a dead process.
STALE_ROUNDS = 5
STALE_MIN = 5.0


class StoreStatus(msgspec.Struct, kw_only=True):
    pid: int
    started_at: float
    heartbeat: float  # wall clock of the last round
    interval: float  # seconds between rounds
    store: str  # "embedded" or "server"
    clickhouse_up: bool
    error: str = ""
    inserted: dict[str, int] = msgspec.field(default_factory=dict)
    dropped: dict[str, int] = msgspec.field(default_factory=dict)
    rows_waiting: int = 0
    lag_seconds: dict[str, float] = msgspec.field(default_factory=dict)
    restarts: int = 0
    memory_cap_bytes: int = 0
    stopping: bool = False


def store_dir(data_dir: str | Path) -> Path:
    return Path(data_dir).resolve() / STORE_DIR


def write_status(data_dir: str | Path, status: StoreStatus) -> None:
    directory = store_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory / f".{STATUS_FILE}.{os.getpid()}"
    scratch.write_bytes(msgspec.json.encode(status))
    os.replace(scratch, directory / STATUS_FILE)


def read_status(data_dir: str | Path) -> StoreStatus | None:
    try:
        data = (store_dir(data_dir) / STATUS_FILE).read_bytes()
        return msgspec.json.decode(data, type=StoreStatus)
    except (OSError, msgspec.ValidationError, msgspec.DecodeError):
        return None


def is_fresh(status: StoreStatus | None, now: float | None = None) -> bool:
    """Whether the process that wrote ``status`` is running and going round."""
    if status is None or status.stopping:
        return False
    now = time.time() if now is None else now
    if now - status.heartbeat > max(STALE_ROUNDS * status.interval, STALE_MIN):
        return False
    return _alive(status.pid)


def store_gauges(status: StoreStatus | None, journal: Path) -> StoreGauges:
    up = is_fresh(status)
    return StoreGauges(
        process_up=up,
        clickhouse_up=up and status is not None and status.clickhouse_up,
        journal_bytes={sink: pending_bytes(journal, sink) for sink in SINKS},
        rows_waiting=status.rows_waiting if status else 0,
        inserted=dict(status.inserted) if status else {},
        dropped=dict(status.dropped) if status else {},
        lag_seconds=dict(status.lag_seconds) if status else {},
        restarts=status.restarts if status else 0,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
