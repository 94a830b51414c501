"""``floopy logs replay``: the spool into ClickHouse by hand, with progress.

The same replayer the gateway runs: it takes each sink's ``.replaying`` lock, so it is safe
beside running gateways (it leaves their files to them and takes those of processes that
died). The embedded store admits one process, so with ``CLICKHOUSE_URL`` unset it runs only
while the gateway is stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from floopy.observability.fallback import OwnerLock, Spool, new_owner, spool_dir, spool_files
from floopy.observability.metrics import Metrics
from floopy.observability.migrations import migrate
from floopy.observability.record import SINKS
from floopy.observability.replay import Progress, Replayer
from floopy.observability.store import LogStore, StoreUnavailable
from floopy.settings import Settings


def replay_command(settings: Settings, out: TextIO, err: TextIO) -> int:
    store = LogStore(settings.clickhouse_url, settings.data_dir)
    directory = spool_dir(settings.data_dir)
    print(f"log store: {store.describe()}\nspool: {directory}", file=out)
    owner = OwnerLock(directory, new_owner())
    try:
        migrate(store, settings, lambda line: print(line, file=out))
        spools = {
            sink: Spool(directory, sink, owner.owner, settings.log_spool_max_bytes)
            for sink in SINKS
        }
        replayer = Replayer(store, spools, Metrics(SINKS), settings.log_batch_size, _printer(out))
        rows = replayer.replay()
    except StoreUnavailable as exc:
        print(f"floopy: cannot replay: {exc}", file=err)
        return 1
    finally:
        store.close()
        owner.release()
    print(f"replayed {rows} rows", file=out)
    left = sum(len(files) for sink in SINKS for files in spool_files(directory, sink).values())
    if left:
        print(f"{left} spool file(s) left: they belong to running processes", file=out)
    return 0


def _printer(out: TextIO) -> Progress:
    def progress(sink: str, rows: int, path: Path) -> None:
        print(f"  {sink}: {rows} rows from {path.name}", file=out, flush=True)

    return progress
