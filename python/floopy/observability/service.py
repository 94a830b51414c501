"""The log (after the pipeline), for one worker process: records in, rows out, never in the
way.

``RequestLog.finished`` is called once per request after its response. It builds the
request's rows and hands them to the batch workers (requests, traces); breaker events go the
same way. A probe task checks ClickHouse while it is down, applies the migrations once it
answers, and replays the spool: at start (files left by a crash), after an outage, and
whenever spool files of a process that died show up. All database work runs on threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from floopy.observability.batch import BatchWorker, StoreHealth, run_in_background
from floopy.observability.fallback import (
    OwnerLock,
    Spool,
    new_owner,
    pending_bytes,
    spool_dir,
)
from floopy.observability.metrics import Gauges, Metrics
from floopy.observability.migrations import migrate
from floopy.observability.record import (
    BREAKER_EVENTS,
    REQUESTS,
    SINKS,
    TRACES,
    RecordBuilder,
    breaker_event_record,
    encode,
)
from floopy.observability.replay import Replayer
from floopy.observability.store import LogStore, StoreUnavailable

if TYPE_CHECKING:
    from floopy.context import BreakerEvent, RequestContext
    from floopy.settings import Settings

log = logging.getLogger("floopy.log")

Progress = Callable[[str], None]


class LogPlumbing:
    """The store, spools, batch workers and replayer of an enabled request log."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.store = LogStore(settings.clickhouse_url, settings.data_dir)
        self.health = StoreHealth()
        self.migrated = False
        self.directory = spool_dir(settings.data_dir)
        self.owner = OwnerLock(self.directory, new_owner())
        self.spools = {
            sink: Spool(self.directory, sink, self.owner.owner, settings.log_spool_max_bytes)
            for sink in SINKS
        }
        self.workers = {
            sink: BatchWorker(
                sink,
                self.store,
                self.spools[sink],
                self.health,
                metrics.sinks[sink],
                batch_size=settings.log_batch_size,
                flush_interval=settings.log_flush_interval,
                queue_size=settings.log_queue_size,
            )
            for sink in SINKS
        }
        self.replayer = Replayer(self.store, self.spools, metrics, settings.log_batch_size)

    def prepare(self, settings: Settings, progress: Progress) -> None:
        """Migrates once ClickHouse answers, then marks it up. Raises StoreUnavailable."""
        if not self.migrated:
            migrate(self.store, settings, progress)
            self.migrated = True
        self.health.mark(True)

    def probe(self, settings: Settings) -> int:
        """One probe round; returns the rows replayed."""
        if not self.health.up or not self.migrated:
            if not self.store.ping():
                return 0
            self.prepare(settings, log.info)
        if not self.replayer.pending():
            return 0
        return self.replayer.replay()

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        for spool in self.spools.values():
            spool.close()
        self.store.close()
        self.owner.release()


class RequestLog:
    def __init__(self, settings: Settings, metrics: Metrics, plumbing: LogPlumbing | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._plumbing = plumbing
        self._builder = RecordBuilder(settings)
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="floopy-log-probe", initializer=run_in_background
        )
        self._probe_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, progress: Progress = log.info) -> RequestLog:
        """Opens the log of this process; with ClickHouse down it starts anyway, spooling."""
        metrics = Metrics(SINKS)
        if not settings.logging_enabled:
            return cls(settings, metrics, None)
        plumbing = LogPlumbing(settings, metrics)
        self = cls(settings, metrics, plumbing)
        progress(f"log store: {plumbing.store.describe()}; spool: {plumbing.directory}")
        try:
            await self._run(plumbing.prepare, settings, progress)
        except StoreUnavailable as exc:
            plumbing.health.mark(False, str(exc))
        self._probe_task = asyncio.get_running_loop().create_task(self._probe_loop(plumbing))
        return self

    def finished(self, ctx: RequestContext) -> None:
        """Never raises: a failure here must not reach the request."""
        try:
            self._finished(ctx)
        except Exception:
            log.exception("could not log request %s", ctx.request_id)

    def _finished(self, ctx: RequestContext) -> None:
        plumbing = self._plumbing
        if plumbing is None or not self._builder.wants(ctx):
            self.metrics.request_finished(ctx.status)
            return
        record = self._builder.request(ctx)
        self.metrics.request_finished(record.status)
        plumbing.workers[REQUESTS].put(encode(record))
        plumbing.workers[TRACES].put(encode(self._builder.trace(ctx, record)))

    def breaker_event(self, event: BreakerEvent) -> None:
        if self._plumbing is None:
            return
        try:
            self._plumbing.workers[BREAKER_EVENTS].put(encode(breaker_event_record(event)))
        except Exception:
            log.exception("could not log a circuit-breaker event")

    def metrics_text(self) -> bytes:
        return self.metrics.render(self._gauges())

    def readiness(self) -> dict[str, Any]:
        plumbing = self._plumbing
        if plumbing is None:
            return {"status": "ready", "clickhouse": {"status": "disabled"}}
        up = plumbing.health.up and plumbing.migrated
        return {
            "status": "ready" if up else "degraded",
            "clickhouse": {"status": "up" if up else "down", "store": plumbing.store.kind()},
            "spool_bytes": {
                sink: pending_bytes(plumbing.directory, sink) for sink in plumbing.spools
            },
        }

    async def close(self) -> None:
        """Stops probing, then drains every queue to ClickHouse or to disk."""
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        if self._plumbing is not None:
            await self._run(self._plumbing.close)
        self._executor.shutdown(wait=True)

    def _gauges(self) -> Gauges | None:
        plumbing = self._plumbing
        if plumbing is None:
            return None
        return Gauges(
            queue_depth={sink: worker.depth for sink, worker in plumbing.workers.items()},
            spool_bytes={sink: pending_bytes(plumbing.directory, sink) for sink in SINKS},
            store_up=plumbing.health.up and plumbing.migrated,
        )

    async def _probe_loop(self, plumbing: LogPlumbing) -> None:
        while True:
            try:
                replayed = await self._run(plumbing.probe, self.settings)
                if replayed:
                    log.info("log spool: %d rows replayed into ClickHouse", replayed)
            except StoreUnavailable as exc:
                plumbing.health.mark(False, str(exc))
            except Exception:
                log.exception("log probe failed")
            await asyncio.sleep(self.settings.log_probe_interval)

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)
