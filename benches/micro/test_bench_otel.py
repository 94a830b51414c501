"""The OpenTelemetry export and the /metrics histograms: what they add to a request.

``otel-per-request``: what a worker does once a request finished (``RequestLog._finished``
without the journal write, so only the export differs): the row built with its spans, the
histograms and counters observed, and, with the export on, the row put on the exporter's
queue, whose thread encodes and POSTs batches (to a function that discards them) meanwhile,
competing for the interpreter as it does in a worker. The queue is large enough that nothing
is dropped during the bench (checked), so the cheap drop path is not what is measured.
``otel-encode``: the thread's work, off the request path (natively, the interpreter
released) but on the worker's cores: one batch of 256 rows to an
``ExportTraceServiceRequest``'s bytes, the rows as the worker hands them over (``export-row``,
written by the trace) and, beside, as JSON lines with bodies, as the journal has them
(``json-line``).
``metrics-observe``: the histograms and counters alone, per request.
Each bench checks its result first.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_bench_logging import finished_request

from floopy.context import RequestContext
from floopy.observability.metrics import Metrics
from floopy.observability.otel import OtlpEncoder, TraceExporter
from floopy.observability.record import SINKS, RecordBuilder, settle, spans_of
from floopy.observability.record import encode as encode_row
from floopy.observability.service import RequestLog, observe
from floopy.settings import Settings, load_settings

from conftest import chat_body

Bench = Any
BATCH = 256


def settings(**overrides: object) -> Settings:
    return msgspec.structs.replace(load_settings({}), logging_enabled=False, **overrides)


def finish(log: RequestLog, ctx: RequestContext) -> None:
    log._finished(ctx)


@pytest.mark.parametrize("export", ["export-off", "export-on"])
def test_otel_per_request(benchmark: Bench, export: str) -> None:
    posted: list[int] = []

    def discard(body: bytes) -> int:
        posted.append(len(body))
        return 200

    exporter = None
    if export == "export-on":
        exporter = TraceExporter(
            settings(otel_endpoint="http://127.0.0.1:9", otel_queue_size=1 << 21),
            post=discard,
        )
    log = RequestLog(settings(), Metrics(SINKS), None, exporter)
    ctx = finished_request(chat_body("small"))
    finish(log, ctx)
    assert sum(log.metrics.requests.series["gpt-4o", "openai", "2xx", "none"].counts[0]) == 1
    benchmark.group = "otel-per-request"
    benchmark(finish, log, ctx)
    if exporter is not None:
        exporter.close()
        assert exporter.dropped_full == 0 and exporter.dropped_failed == 0
        assert exporter.exported > 0 and posted


@pytest.mark.parametrize("source", ["export-row", "json-line"])
def test_otel_encode_per_request(benchmark: Bench, source: str) -> None:
    ctx = finished_request(chat_body("small"))
    record = RecordBuilder(settings()).request(ctx, export=True)
    row = ctx.trace.export_row(record) if source == "export-row" else encode_row(record)
    batch = [row] * BATCH
    encoder = OtlpEncoder("floopy")

    def encode() -> bytes:
        return encoder.encode(batch)[0]

    decoded = ExportTraceServiceRequest()
    decoded.ParseFromString(encode())
    assert len(decoded.resource_spans[0].scope_spans[0].spans) == BATCH * len(spans_of(record))
    benchmark.group = "otel-encode"
    benchmark.extra_info["rows_per_call"] = BATCH
    benchmark(encode)


def test_metrics_observe(benchmark: Bench) -> None:
    ctx = finished_request(chat_body("small"))
    latency_ms = settle(ctx)
    metrics = Metrics(SINKS)
    observe(metrics, ctx, latency_ms)
    assert metrics.requests.usage["gpt-4o", "openai", "web"][:2] == [40, 60]
    benchmark.group = "metrics-observe"
    benchmark(observe, metrics, ctx, latency_ms)
