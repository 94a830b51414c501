"""Counters for ``GET /metrics``, in the Prometheus text format.

Each process counts its own: with several workers, a scrape sees the worker that answered
it. Sink counters are bumped from batch threads as well as the event loop, hence the lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

SINK_COUNTERS = (
    ("queued", "rows handed to the sink's batch worker"),
    ("inserted", "rows inserted into ClickHouse by the batch worker"),
    ("spooled", "rows written to the sink's disk spool instead"),
    ("replayed", "rows replayed from the spool into ClickHouse"),
    ("dropped", "rows lost: a spool write failed, or the oldest spool file was rotated out"),
)


@dataclass
class SinkCounters:
    queued: int = 0
    inserted: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, rows: int) -> None:
        if rows:
            with self._lock:
                setattr(self, name, getattr(self, name) + rows)


@dataclass
class Gauges:
    """Values read when scraped: queue depths, spool sizes, whether the store answers."""

    queue_depth: dict[str, int]
    spool_bytes: dict[str, int]
    store_up: bool


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

    def render(self, gauges: Gauges | None) -> bytes:
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
        if gauges is not None:
            _gauges(lines, gauges)
        return ("\n".join(lines) + "\n").encode()


def _gauges(lines: list[str], gauges: Gauges) -> None:
    _family(lines, "floopy_log_queue_rows", "gauge", "rows waiting in memory for their batch")
    for sink, depth in gauges.queue_depth.items():
        lines.append(f'floopy_log_queue_rows{{sink="{sink}"}} {depth}')
    _family(lines, "floopy_log_spool_bytes", "gauge", "bytes waiting in spool files")
    for sink, size in gauges.spool_bytes.items():
        lines.append(f'floopy_log_spool_bytes{{sink="{sink}"}} {size}')
    _family(lines, "floopy_log_store_up", "gauge", "1 when ClickHouse answered last time")
    lines.append(f"floopy_log_store_up {int(gauges.store_up)}")


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
