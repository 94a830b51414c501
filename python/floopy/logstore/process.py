"""The log store process: owns the log database, carries the journals in, serves reads.

Run by ``floopy store`` (alone, for deployments that run it as a service of its own) or by
``floopy serve`` (supervised, beside the granian workers). One per ``DATA_DIR``: it holds
``DATA_DIR/store/store.lock`` for its lifetime, and a second one refuses to start.

The round, every ``LOG_FLUSH_INTERVAL`` seconds:

1. while ClickHouse is down, probe it every ``LOG_PROBE_INTERVAL`` (nothing is claimed: rows
   wait in the rotating journal files); once it answers, apply the migrations;
2. carry every journal into ClickHouse (``observability.carrier``);
3. write the status file (``status``);
4. wait: ``LOG_FLUSH_INTERVAL``, or four times as long as the round took when that is
   longer, up to ``LOG_FLUSH_MAX_INTERVAL`` (``next_wait``). Each insert costs a fixed
   amount of CPU whatever its size, so under load the rounds stretch and the inserts grow,
   and the store takes less of the cores the workers need. No wait when the round claimed
   files it did not carry (the store is behind): the next round starts at once.

Beside the rounds, on threads of their own: the read channel (``reads``) and the dashboard
(``floopy.dashboard``, on ``DASHBOARD_PORT``), both reading through one ``Reader``.

SIGTERM or SIGINT (or, when supervised, the supervisor gone) ends the loop after one last
round, so rows the stopped workers wrote last go in too. The process runs at a lower CPU
priority than the workers: when the cores are busy, requests go first and the log catches
up after.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import msgspec

from floopy.dashboard import build as build_dashboard
from floopy.dashboard.server import DashboardServer
from floopy.logstore.reads import ChannelServer, Limits, Reader
from floopy.observability.carrier import Carrier
from floopy.observability.journal import (
    JournalFile,
    OwnerLock,
    journal_dir,
    new_owner,
    try_lock,
)
from floopy.observability.metrics import SinkCounters
from floopy.observability.migrations import migrate
from floopy.observability.record import REQUESTS, SINKS
from floopy.observability.status import StoreStatus, store_dir, write_status
from floopy.observability.store import LogStore, StoreUnavailable
from floopy.settings import Settings

log = logging.getLogger("floopy.log")

NICENESS = 10
LAG_WINDOW = 10_000  # recent rows the lag quantiles are taken over
EXIT_LOCKED = 3  # another store process owns the data directory


class _Answered(msgspec.Struct):
    time: float  # when the request started (epoch seconds)
    latency_ms: float = 0.0


class StoreProcess:
    def __init__(
        self,
        settings: Settings,
        out: TextIO,
        *,
        supervisor: int | None = None,
        restarts: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.out = out
        self.supervisor = supervisor
        self.restarts = restarts
        self.clock = clock
        self.store = LogStore(
            settings.clickhouse_url, settings.data_dir, settings.log_store_max_memory
        )
        self.stop = threading.Event()
        self.up = False
        self.migrated = False
        self.error = ""
        self.started_at = clock()
        self.counters = {sink: SinkCounters() for sink in SINKS}
        self.lags: collections.deque[float] = collections.deque(maxlen=LAG_WINDOW)
        self._decode_answered = msgspec.json.Decoder(_Answered).decode

    def say(self, line: str) -> None:
        print(f"log store: {line}", file=self.out, flush=True)

    def run(self) -> int:
        _lower_priority()
        with try_lock(store_dir(self.settings.data_dir) / "store.lock") as held:
            if not held:
                self.say(
                    f"another log store process owns {self.settings.data_dir}; "
                    "it carries the journals"
                )
                return EXIT_LOCKED
            return self._run_owning()

    def _run_owning(self) -> int:
        directory = journal_dir(self.settings.data_dir)
        owner = OwnerLock(directory, new_owner())
        journals = {
            sink: JournalFile(directory, sink, owner.owner, self.settings.log_spool_max_bytes)
            for sink in SINKS
        }
        carrier = Carrier(
            self.store,
            journals,
            self.counters,
            self.settings.log_batch_size,
            inserted=self._inserted,
            backlog_max_bytes=self.settings.log_store_backlog_max_bytes,
        )
        reader = Reader(
            self.store,
            Limits(self.settings.log_query_timeout, self.settings.log_query_max_rows),
        )
        channel = ChannelServer(reader, self.settings.data_dir)
        channel.start()
        dashboard = self._start_dashboard(reader)
        self.say(
            f"process {os.getpid()}; {self.store.describe()}"
            + (
                f", memory cap {_mib(self.settings.log_store_max_memory)}"
                if self.store.embedded
                else ""
            )
        )
        self.say(f"journals at {directory}; read channel on 127.0.0.1:{channel.port}")
        try:
            self._loop(carrier)
            self._round(carrier)  # the last one: what stopped workers wrote goes in too
        finally:
            self._write_status(stopping=True)
            if dashboard is not None:
                dashboard.stop()
            channel.stop()
            reader.close()
            self.store.close()
            owner.release()
        self.say("stopped")
        return 0

    def _start_dashboard(self, reader: Reader) -> DashboardServer | None:
        """The dashboard, served from here: this process owns the embedded store. A port
        that cannot be had costs the dashboard, never the log."""
        if not self.settings.dashboard_enabled:
            return None
        try:
            dashboard = build_dashboard(reader, self.settings)
        except (OSError, ValueError) as exc:
            self.say(f"dashboard not served: {exc}")
            return None
        dashboard.start()
        self.say(f"dashboard on {dashboard.url}")
        return dashboard

    def _loop(self, carrier: Carrier) -> None:
        next_probe = 0.0
        while not self.stop.is_set():
            if self.supervisor is not None and os.getppid() != self.supervisor:
                self.say("the gateway is gone; stopping")
                return
            if not (self.up and self.migrated) and self.clock() >= next_probe:
                self._probe()
                next_probe = self.clock() + self.settings.log_probe_interval
            began = time.monotonic()
            self._round(carrier)
            if not carrier.behind:  # behind: the next round starts at once
                self.stop.wait(next_wait(self.settings, time.monotonic() - began))

    def _probe(self) -> None:
        try:
            if not self.migrated:
                migrate(self.store, self.settings, self.say)
                self.migrated = True
            elif not self.store.ping():
                return
            self._mark(True)
        except StoreUnavailable as exc:
            self._mark(False, str(exc))

    def _round(self, carrier: Carrier) -> None:
        if self.up and self.migrated and carrier.waiting():
            try:
                carrier.carry()
            except StoreUnavailable as exc:
                self._mark(False, str(exc))
            except Exception as exc:  # a bug must not end the process: rows stay claimed
                log.exception("log store round failed")
                self._mark(False, str(exc))
        self._write_status()

    def _mark(self, up: bool, reason: str = "") -> None:
        if up and not self.up:
            self.say("ClickHouse answers; carrying the journals")
        elif not up and (self.up or reason != self.error):
            self.say(f"ClickHouse unavailable, rows wait in the journals: {reason}")
        self.up, self.error = up, reason

    def _inserted(self, sink: str, batch: list[bytes]) -> None:
        if sink != REQUESTS:
            return
        now = self.clock()
        for line in batch:
            try:
                row = self._decode_answered(line)
            except (msgspec.ValidationError, msgspec.DecodeError):
                continue
            self.lags.append(max(0.0, now - row.time - row.latency_ms / 1000))

    def _write_status(self, stopping: bool = False) -> None:
        try:
            write_status(
                self.settings.data_dir,
                StoreStatus(
                    pid=os.getpid(),
                    started_at=self.started_at,
                    heartbeat=self.clock(),
                    interval=next_wait(self.settings, float("inf")),  # the longest wait
                    store="embedded" if self.store.embedded else "server",
                    clickhouse_up=self.up and self.migrated,
                    error=self.error,
                    inserted={sink: c.inserted for sink, c in self.counters.items()},
                    dropped={sink: c.dropped for sink, c in self.counters.items()},
                    lag_seconds=_quantiles(self.lags),
                    restarts=self.restarts,
                    memory_cap_bytes=self.settings.log_store_max_memory,
                    stopping=stopping,
                ),
            )
        except OSError as exc:
            log.error("could not write the log store status: %s", exc)


ROUND_STRETCH = 4  # under load, the wait after a round is this many times the round's length


def next_wait(settings: Settings, round_seconds: float) -> float:
    """Seconds until the next round, after one that took ``round_seconds``."""
    longest = max(settings.log_flush_interval, settings.log_flush_max_interval)
    return min(longest, max(settings.log_flush_interval, ROUND_STRETCH * round_seconds))


def _quantiles(values: collections.deque[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    last = len(ordered) - 1
    return {
        "0.5": ordered[round(0.5 * last)],
        "0.99": ordered[round(0.99 * last)],
    }


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB"


def _lower_priority() -> None:
    try:
        os.nice(NICENESS)
    except OSError:  # not allowed: normal priority then
        log.debug("could not lower the log store's priority", exc_info=True)


def run_store(settings: Settings, *, supervisor: int | None = None, restarts: int = 0) -> int:
    """``floopy store``: runs until SIGTERM or SIGINT."""
    process = StoreProcess(settings, sys.stdout, supervisor=supervisor, restarts=restarts)

    def stop(signum: int, _frame: object) -> None:
        process.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return process.run()
