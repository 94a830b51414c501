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


class Metrics:
    def __init__(self, sinks: tuple[str, ...]) -> None:
        self.sinks = {name: SinkCounters() for name in sinks}
        self.requests_by_status: Counter[int] = Counter()  # bumped on the event loop only

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
