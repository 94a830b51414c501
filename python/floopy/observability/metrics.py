"""Counters for ``GET /metrics``, in the Prometheus text format.

Each worker counts its own (with several workers, a scrape sees the worker that answered it);
what the log store process counts comes from its status file (``floopy.observability.status``),
the same for every worker. Sink counters may be bumped from threads, hence the lock.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

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


class Renders(Protocol):
    def render(self, lines: list[str]) -> None: ...


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


# Upper bounds (seconds) of the request latency histograms: from a quarter of a millisecond
# (the gateway's own overhead on a cache hit) to ten minutes (a long reasoning stream).
DURATION_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
_BUCKET_LABELS = (*(f"{le:g}" for le in DURATION_BUCKETS), "+Inf")
OTHER = "other"  # the model of every label set past the cap

# (model, provider, status class, cache status)
LatencyKey = tuple[str, str, str, str]
# (model, provider, project)
UsageKey = tuple[str, str, str]

_HISTOGRAMS = (
    ("floopy_request_duration_seconds", "time from a request's arrival to its last byte"),
    (
        "floopy_time_to_first_token_seconds",
        "time from a request's arrival to its first answer byte (a stream's first token)",
    ),
    (
        "floopy_gateway_overhead_seconds",
        "time of a request not spent waiting on a provider (its duration less upstream time)",
    ),
    (
        "floopy_upstream_duration_seconds",
        "time spent waiting on providers: every attempt, and a stream's relay",
    ),
)


class _Series:
    """One label set's four histograms (duration, time to first token, overhead, upstream):
    counts per bucket (not cumulative) and sums, found with one lookup per request."""

    __slots__ = ("counts", "sums")

    def __init__(self) -> None:
        self.counts = [[0] * len(_BUCKET_LABELS) for _ in _HISTOGRAMS]
        self.sums = [0.0] * len(_HISTOGRAMS)


class RequestMetrics:
    """Latency histograms by model, provider, status class and cache status, and token and
    cost counters by model, provider and project. No user or session label: at most
    ``max_label_sets`` distinct label sets per family, then ``model="other"``, and each
    request counted there also bumps the overflow counter. Bumped on the event loop only."""

    def __init__(self, max_label_sets: int) -> None:
        self.max_label_sets = max_label_sets
        self.series: dict[LatencyKey, _Series] = {}
        self.usage: dict[UsageKey, list[float]] = {}  # [input tokens, output tokens, cost]
        self.overflowed = 0

    def observe(
        self,
        key: LatencyKey,
        project: str,
        seconds: tuple[float, float | None, float, float],
        tokens: tuple[int, int],
        cost_usd: float | None,
    ) -> None:
        """``seconds``: duration, time to first token (None: nothing answered), overhead,
        upstream."""
        series = self.series.get(key)
        if series is None:
            if len(self.series) >= self.max_label_sets:
                self.overflowed += 1
                key = (OTHER, OTHER, key[2], key[3])
            series = self.series.setdefault(key, _Series())
        # The four histograms written out, not looped over: this runs for every request.
        counts, sums = series.counts, series.sums
        duration, ttft, overhead, upstream = seconds
        counts[0][bisect_left(DURATION_BUCKETS, duration)] += 1
        sums[0] += duration
        if ttft is not None:
            counts[1][bisect_left(DURATION_BUCKETS, ttft)] += 1
            sums[1] += ttft
        counts[2][bisect_left(DURATION_BUCKETS, overhead)] += 1
        sums[2] += overhead
        counts[3][bisect_left(DURATION_BUCKETS, upstream)] += 1
        sums[3] += upstream
        usage_key = (key[0], key[1], project)
        counted = self.usage.get(usage_key)
        if counted is None:
            if len(self.usage) >= self.max_label_sets:
                self.overflowed += 1
                usage_key = (OTHER, OTHER, OTHER)
            counted = self.usage.setdefault(usage_key, [0, 0, 0.0])
        counted[0] += tokens[0]
        counted[1] += tokens[1]
        if cost_usd:
            counted[2] += cost_usd

    def render(self, lines: list[str]) -> None:
        ordered = sorted(self.series.items())
        for index, (name, help_text) in enumerate(_HISTOGRAMS):
            _family(lines, name, "histogram", help_text)
            for key, series in ordered:
                _render_histogram(lines, name, key, series.counts[index], series.sums[index])
        name = "floopy_tokens_total"
        _family(lines, name, "counter", "tokens billed, by model, provider, project and direction")
        usage = sorted(self.usage.items())
        for usage_key, (input_tokens, output_tokens, _) in usage:
            labels = _usage_labels(usage_key)
            lines.append(f'{name}{{{labels},direction="input"}} {int(input_tokens)}')
            lines.append(f'{name}{{{labels},direction="output"}} {int(output_tokens)}')
        name = "floopy_cost_usd_total"
        _family(lines, name, "counter", "provider cost in US dollars, by model, provider, project")
        for usage_key, (_, _, usd) in usage:
            if usd:
                lines.append(f"{name}{{{_usage_labels(usage_key)}}} {usd:.10f}")
        name = "floopy_metrics_label_sets_overflow_total"
        _family(lines, name, "counter", 'requests counted under model="other": too many label sets')
        lines.append(f"{name} {self.overflowed}")


def _render_histogram(
    lines: list[str], name: str, key: LatencyKey, counts: list[int], total: float
) -> None:
    if not any(counts):
        return  # no observation for this label set (time to first token: nothing answered)
    labels = _latency_labels(key)
    cumulative = 0
    for le, count in zip(_BUCKET_LABELS, counts, strict=True):
        cumulative += count
        lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
    lines.append(f"{name}_sum{{{labels}}} {total:.6f}")
    lines.append(f"{name}_count{{{labels}}} {cumulative}")


def _latency_labels(key: LatencyKey) -> str:
    model, provider, status, cache = key
    return (
        f'model="{_escape(model)}",provider="{_escape(provider)}",'
        f'status_class="{status}",cache="{cache}"'
    )


def _usage_labels(key: UsageKey) -> str:
    model, provider, project = key
    return f'model="{_escape(model)}",provider="{_escape(provider)}",project="{_escape(project)}"'


def _escape(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


class Metrics:
    def __init__(self, sinks: tuple[str, ...], max_label_sets: int = 500) -> None:
        self.sinks = {name: SinkCounters() for name in sinks}
        self.requests_by_status: Counter[int] = Counter()  # bumped on the event loop only
        self.firewall = FirewallCounters()
        self.requests = RequestMetrics(max_label_sets)
        self.exporter: Renders | None = None  # the trace exporter's counters, when it runs

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
        self.requests.render(lines)
        if self.exporter is not None:
            self.exporter.render(lines)
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
