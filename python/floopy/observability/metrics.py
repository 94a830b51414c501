"""Counters for ``GET /metrics``, in the Prometheus text format.

Each worker counts its own (with several workers, a scrape sees the worker that answered it);
what the log store process counts comes from its status file (``floopy.observability.status``),
the same for every worker. Sink counters may be bumped from threads, hence the lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

SINK_COUNTERS = (
    ("journaled", "rows this worker wrote to its journal"),
    ("dropped", "rows this worker lost: a journal write failed, or rotation dropped the oldest"),
)


@dataclass
class SinkCounters:
    journaled: int = 0
    inserted: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, rows: int) -> None:
        if rows:
            with self._lock:
                setattr(self, name, getattr(self, name) + rows)


@dataclass
class StoreGauges:
    """The log store process as a worker sees it when scraped."""

    process_up: bool  # its status file is fresh
    clickhouse_up: bool  # ClickHouse took its last statement
    journal_bytes: dict[str, int]  # per sink, in every journal file not yet inserted
    rows_waiting: int  # in claimed files, read but not yet inserted
    inserted: dict[str, int]  # per sink, since the store process started
    dropped: dict[str, int]
    lag_seconds: dict[str, float]  # "0.5", "0.99": answer to queryable row, recent rows
    restarts: int


# Upper bounds (seconds) of the firewall classifier's latency histogram.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class FirewallCounters:
    """Firewall verdicts by backend, mode and verdict, and the classifier's latency by
    backend. Bumped on the event loop only."""

    verdicts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    latency_buckets: dict[str, list[int]] = field(default_factory=dict)
    latency_sum: dict[str, float] = field(default_factory=dict)

    def verdict(self, backend: str, mode: str, verdict: str) -> None:
        self.verdicts[backend, mode, verdict] += 1

    def classifier_latency(self, backend: str, seconds: float) -> None:
        buckets = self.latency_buckets.setdefault(backend, [0] * (len(LATENCY_BUCKETS) + 1))
        index = next((i for i, le in enumerate(LATENCY_BUCKETS) if seconds <= le), -1)
        buckets[index] += 1
        self.latency_sum[backend] = self.latency_sum.get(backend, 0.0) + seconds

    def render(self, lines: list[str]) -> None:
        name = "floopy_firewall_verdicts_total"
        _family(lines, name, "counter", "requests screened, by backend, mode and verdict")
        for (backend, mode, verdict), count in sorted(self.verdicts.items()):
            labels = f'backend="{backend}",mode="{mode}",verdict="{verdict}"'
            lines.append(f"{name}{{{labels}}} {count}")
        name = "floopy_firewall_classifier_seconds"
        _family(lines, name, "histogram", "time the firewall classifier took per request")
        for backend, buckets in sorted(self.latency_buckets.items()):
            cumulative = 0
            for le, count in zip((*LATENCY_BUCKETS, "+Inf"), buckets, strict=True):
                cumulative += count
                lines.append(f'{name}_bucket{{backend="{backend}",le="{le}"}} {cumulative}')
            lines.append(f'{name}_sum{{backend="{backend}"}} {self.latency_sum[backend]:.6f}')
            lines.append(f'{name}_count{{backend="{backend}"}} {cumulative}')


class Metrics:
    def __init__(self, sinks: tuple[str, ...]) -> None:
        self.sinks = {name: SinkCounters() for name in sinks}
        self.requests_by_status: Counter[int] = Counter()  # bumped on the event loop only
        self.firewall = FirewallCounters()

    def request_finished(self, status: int) -> None:
        self.requests_by_status[status] += 1

    def render(self, store: StoreGauges | None) -> bytes:
        lines: list[str] = []
        _family(lines, "floopy_requests_total", "counter", "requests answered, by HTTP status")
        for status, count in sorted(self.requests_by_status.items()):
            lines.append(f'floopy_requests_total{{status="{status}"}} {count}')
        for counter, help_text in SINK_COUNTERS:
            name = f"floopy_log_rows_{counter}_total"
            _family(lines, name, "counter", help_text)
            for sink, counters in self.sinks.items():
                lines.append(f'{name}{{sink="{sink}"}} {getattr(counters, counter)}')
        self.firewall.render(lines)
        if store is not None:
            _store(lines, store)
        return ("\n".join(lines) + "\n").encode()


def _store(lines: list[str], store: StoreGauges) -> None:
    _gauge(
        lines, "floopy_log_store_process_up", "1 while the log store process runs", store.process_up
    )
    _gauge(
        lines,
        "floopy_log_store_up",
        "1 when ClickHouse took the store's last statement",
        store.clickhouse_up,
    )
    _family(lines, "floopy_log_journal_bytes", "gauge", "bytes in journal files not yet inserted")
    for sink, size in store.journal_bytes.items():
        lines.append(f'floopy_log_journal_bytes{{sink="{sink}"}} {size}')
    _gauge(
        lines,
        "floopy_log_rows_waiting",
        "rows the store read and has not inserted yet",
        store.rows_waiting,
    )
    for name, values, help_text in (
        (
            "floopy_log_rows_inserted_total",
            store.inserted,
            "rows the log store process inserted into ClickHouse",
        ),
        (
            "floopy_log_store_rows_dropped_total",
            store.dropped,
            "rows the log store process dropped (torn or refused)",
        ),
    ):
        _family(lines, name, "counter", help_text)
        for sink, rows in values.items():
            lines.append(f'{name}{{sink="{sink}"}} {rows}')
    _family(
        lines,
        "floopy_log_lag_seconds",
        "gauge",
        "from a request's answer to its row being queryable",
    )
    for quantile, seconds in store.lag_seconds.items():
        lines.append(f'floopy_log_lag_seconds{{quantile="{quantile}"}} {seconds:.6f}')
    _gauge(
        lines,
        "floopy_log_store_restarts",
        "times the supervisor restarted the log store process",
        store.restarts,
    )


def _gauge(lines: list[str], name: str, help_text: str, value: float) -> None:
    _family(lines, name, "gauge", help_text)
    lines.append(f"{name} {int(value) if isinstance(value, bool) else value}")


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
