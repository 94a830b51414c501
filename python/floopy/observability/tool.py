"""``floopy logs replay``: the journals into ClickHouse by hand, with progress.

For when no log store process runs (the gateway stopped, or ``LOGGING_ENABLED`` turned off
with journals left): it takes the store's lock, so it never runs beside a store process,
and the same carrier as the store, so rows are inserted once whoever carries them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from floopy.observability.carrier import Carrier, Progress
from floopy.observability.journal import (
    JournalFile,
    OwnerLock,
    journal_dir,
    journal_files,
    new_owner,
    try_lock,
)
from floopy.observability.metrics import SinkCounters
from floopy.observability.migrations import migrate
from floopy.observability.record import SINKS
from floopy.observability.status import read_status, store_dir
from floopy.observability.store import LogStore, StoreUnavailable
from floopy.settings import Settings


def replay_command(settings: Settings, out: TextIO, err: TextIO) -> int:
    with try_lock(store_dir(settings.data_dir) / "store.lock") as held:
        if not held:
            status = read_status(settings.data_dir)
            pid = f" (PID {status.pid})" if status else ""
            print(f"the log store process{pid} is carrying the journals; nothing to do", file=out)
            return 0
        return _replay(settings, out, err)


def _replay(settings: Settings, out: TextIO, err: TextIO) -> int:
    store = LogStore(settings.clickhouse_url, settings.data_dir, settings.log_store_max_memory)
    directory = journal_dir(settings.data_dir)
    print(f"log store: {store.describe()}\njournals: {directory}", file=out)
    owner = OwnerLock(directory, new_owner())
    try:
        migrate(store, settings, lambda line: print(line, file=out))
        journals = {
            sink: JournalFile(directory, sink, owner.owner, settings.log_spool_max_bytes)
            for sink in SINKS
        }
        counters = {sink: SinkCounters() for sink in SINKS}
        carrier = Carrier(
            store, journals, counters, settings.log_batch_size, progress=_printer(out)
        )
        rows = carrier.carry()
    except StoreUnavailable as exc:
        print(f"floopy: cannot replay: {exc}", file=err)
        return 1
    finally:
        store.close()
        owner.release()
    print(f"replayed {rows} rows", file=out)
    left = sum(len(files) for sink in SINKS for files in journal_files(directory, sink).values())
    if left:
        print(f"{left} journal file(s) left: they belong to running processes", file=out)
    return 0


def _printer(out: TextIO) -> Progress:
    def progress(sink: str, rows: int, path: Path) -> None:
        print(f"  {sink}: {rows} rows from {path.name}", file=out, flush=True)

    return progress
