"""The log, for one worker process: rows onto the journal, nothing more.

``RequestLog.finished`` is called once per request: before a whole answer or an error is
sent, after a stream ended. It builds the request's row (the request and its spans, one
line) and appends it to this worker's journal (``journal``): one native write that reaches
the OS before it returns, so a worker killed right after answering has logged the answer.
Breaker events go the same way. The worker opens no database: the log store process
(``floopy.logstore``) carries every worker's journal into ClickHouse, and its status file
tells ``/readyz`` and ``/metrics`` how that goes.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floopy.observability.journal import (
    JournalFile,
    OwnerLock,
    journal_dir,
    new_owner,
)
from floopy.observability.metrics import Metrics, StoreGauges
from floopy.observability.record import (
    BREAKER_EVENTS,
    REQUESTS,
    SINKS,
    WRITTEN_SINKS,
    RecordBuilder,
    breaker_event_record,
    encode,
    project_of,
    settle,
    ttft_of,
)
from floopy.observability.status import read_status, store_gauges

if TYPE_CHECKING:
    from floopy.context import BreakerEvent, RequestContext
    from floopy.observability.otel import TraceExporter
    from floopy.settings import Settings

log = logging.getLogger("floopy.log")


class Journal:
    """This worker's journal files, one per sink, and its claim on them."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.directory = journal_dir(settings.data_dir)
        self.owner = OwnerLock(self.directory, new_owner())
        self.files = {
            sink: JournalFile(self.directory, sink, self.owner.owner, settings.log_spool_max_bytes)
            for sink in WRITTEN_SINKS
        }
        self._counters = metrics.sinks

    def append(self, sink: str, line: bytes) -> None:
        """Never raises: a row that cannot be written is counted as dropped and logged."""
        try:
            rotated_out = self.files[sink].append((line,))
        except (OSError, ValueError) as exc:
            log.error("%s: a log row was lost, the journal is not writable: %s", sink, exc)
            self._counters[sink].add("dropped", 1)
            return
        self._counters[sink].add("journaled", 1)
        if rotated_out:
            log.error("%s: journal full, %d oldest rows dropped", sink, rotated_out)
            self._counters[sink].add("dropped", rotated_out)

    def hand_over(self) -> None:
        """Lets the log store take what was written (called every ``LOG_FLUSH_INTERVAL``)."""
        for journal in self.files.values():
            try:
                journal.hand_over()
            except OSError as exc:
                log.error("%s: journal hand-over failed: %s", journal.sink, exc)

    def close(self) -> None:
        for journal in self.files.values():
            try:
                journal.close()
            except OSError as exc:
                log.error("%s: closing the journal failed: %s", journal.sink, exc)
        self.owner.release()


class RequestLog:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        journal: Journal | None,
        exporter: TraceExporter | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._journal = journal
        self._exporter = exporter
        metrics.exporter = exporter
        self._builder = RecordBuilder(settings)
        self._status_path = Path(settings.data_dir).resolve()

        self._hand_over: asyncio.TimerHandle | None = None

    @classmethod
    def open(cls, settings: Settings) -> RequestLog:
        """Opens this worker's journal; called on its event loop, which then hands the
        journal over to the log store every ``LOG_FLUSH_INTERVAL``."""
        metrics = Metrics(SINKS, settings.metrics_max_label_sets)
        exporter = None
        if settings.otel_endpoint is not None:
            from floopy.observability.otel import TraceExporter  # the proto modules load here

            exporter = TraceExporter(settings)
        if not settings.logging_enabled:
            return cls(settings, metrics, None, exporter)
        self = cls(settings, metrics, Journal(settings, metrics), exporter)
        self._schedule_hand_over()
        return self

    def _schedule_hand_over(self) -> None:
        loop = asyncio.get_running_loop()
        self._hand_over = loop.call_later(self.settings.log_flush_interval, self._hand_over_now)

    def _hand_over_now(self) -> None:
        if self._journal is None:
            return
        self._journal.hand_over()
        self._schedule_hand_over()

    def finished(self, ctx: RequestContext) -> None:
        """Once per request (a second call does nothing); never raises: a failure here must
        not reach the request."""
        if ctx.logged:
            return
        ctx.logged = True
        try:
            self._finished(ctx)
        except Exception:
            log.exception("could not log request %s", ctx.request_id)

    def _finished(self, ctx: RequestContext) -> None:
        journal, exporter = self._journal, self._exporter
        if not self._builder.wants(ctx):
            self.metrics.request_finished(ctx.status)
            return
        latency_ms = settle(ctx)
        self.metrics.request_finished(ctx.status)
        observe(self.metrics, ctx, latency_ms)
        if journal is None and exporter is None:
            return  # no row to build: the histograms read the context
        # The row, for the log or the trace export (without bodies when only it wants one);
        # the export takes what it reads of it as written for it, never parsing the line.
        record = self._builder.request(
            ctx, bodies=journal is not None, latency_ms=latency_ms, export=exporter is not None
        )
        if journal is not None:
            journal.append(REQUESTS, encode(record))
        if exporter is not None:
            row = ctx.trace.export_row(record)
            exporter.enqueue(row, row.spans)

    def breaker_event(self, event: BreakerEvent) -> None:
        if self._journal is None:
            return
        try:
            self._journal.append(BREAKER_EVENTS, encode(breaker_event_record(event)))
        except Exception:
            log.exception("could not log a circuit-breaker event")

    def metrics_text(self) -> bytes:
        return self.metrics.render(self._store_gauges())

    def readiness(self) -> dict[str, Any]:
        gauges = self._store_gauges()
        if gauges is None:
            return {"status": "ready", "clickhouse": {"status": "disabled"}}
        up = gauges.process_up and gauges.clickhouse_up
        kind = "embedded" if self.settings.clickhouse_url is None else "server"
        return {
            "status": "ready" if up else "degraded",
            "clickhouse": {"status": "up" if gauges.clickhouse_up else "down", "store": kind},
            "log_store": {
                "status": "up" if gauges.process_up else "down",
                "journal_bytes": gauges.journal_bytes,
                "rows_waiting": gauges.rows_waiting,
                "lag_seconds": gauges.lag_seconds,
                "dropped": gauges.dropped,
            },
        }

    def close(self) -> None:
        """Closes the journal: every row is already on disk, and the log store takes the
        files of a process that stopped."""
        if self._hand_over is not None:
            self._hand_over.cancel()
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()
        exporter, self._exporter = self._exporter, None
        if exporter is not None:
            exporter.close()

    def _store_gauges(self) -> StoreGauges | None:
        if self._journal is None:
            return None
        return store_gauges(read_status(self._status_path), self._journal.directory)


_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
_CACHE_LABELS = {None: "none", "HIT": "hit", "MISS": "miss"}


def observe(metrics: Metrics, ctx: RequestContext, latency_ms: float) -> None:
    """The request's latencies, tokens and cost into the ``/metrics`` histograms and
    counters, read from the context (the same values its row holds; no row is built for
    them). Upstream time is every provider attempt's span and, for a stream from a provider,
    the relay after its first event (the gateway waits on the provider there); the overhead
    is the rest of the request's duration."""
    relayed = ctx.stream and ctx.cache_status != "HIT"  # a hit replays, no provider
    upstream_ms = ctx.trace.total_ms("provider_attempt", "respond" if relayed else None)
    status = ctx.status
    status_class = _STATUS_CLASSES.get(status // 100, "other") if status != 499 else "client_closed"
    cache = _CACHE_LABELS.get(ctx.cache_status, "other")
    ttft_ms = ttft_of(ctx)
    usage = ctx.usage
    metrics.requests.observe(
        (ctx.model or "", ctx.provider or "", status_class, cache),
        project_of(ctx),
        (
            latency_ms / 1000,
            ttft_ms / 1000 if ttft_ms is not None else None,
            max(latency_ms - upstream_ms, 0.0) / 1000,
            upstream_ms / 1000,
        ),
        (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0),
        ctx.cost_usd,
    )
