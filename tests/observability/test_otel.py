"""The trace export without a network: W3C ids, records to OTLP protobuf (decoded back with
the official messages), the bounded queue and the retry policy. The export over a real
loopback receiver, from a real gateway, is in tests/integration/test_interop.py."""

from __future__ import annotations

import threading

import msgspec
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from floopy._native import HeaderExtractor, RequestParser
from floopy.context import RequestContext
from floopy.observability.otel import OtlpEncoder, PostFailed, TraceExporter, traces_url
from floopy.observability.record import RecordBuilder, RequestRecord, encode, spans_of
from floopy.providers.base import Usage
from floopy.settings import Settings, load_settings
from floopy.trace import parse_traceparent, traceparent

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def settings(**overrides: object) -> Settings:
    base = load_settings({})
    return msgspec.structs.replace(base, otel_endpoint="http://127.0.0.1:9", **overrides)


def record(*, caller: bool = False, fail_first: bool = True) -> RequestRecord:
    return RecordBuilder(settings()).request(request(caller=caller, fail_first=fail_first))


def request(*, caller: bool = False, fail_first: bool = True) -> RequestContext:
    """A finished request: two stages and a dispatch with one or two provider attempts."""
    ctx = RequestContext(
        request_id="req_" + "ab" * 16,
        method="POST",
        path="/v1/chat/completions",
        client_ip="127.0.0.1:1",
    )
    if caller:
        ctx.trace_id, ctx.parent_span_id = CALLER_TRACE, CALLER_SPAN
    ctx.headers = HeaderExtractor().extract(
        [("floopy-session-id", "s1"), ("floopy-user-id", "u1"), ("floopy-property-env", "dev")]
    )
    ctx.chat = RequestParser().parse(BODY)
    ctx.body = BODY
    with ctx.span("auth"):
        pass
    with ctx.span("dispatch"):
        if fail_first:
            with (
                pytest.raises(RuntimeError),
                ctx.span("provider_attempt", provider="bad", model="gpt-4o-mini", attempt=0),
            ):
                raise RuntimeError("boom")
        with ctx.span("provider_attempt", provider="mock", model="gpt-4o-mini", attempt=1):
            pass
    with ctx.span("respond"):
        pass
    ctx.requested_model, ctx.model, ctx.provider = "gpt-4o-mini", "gpt-4o-mini-2024", "mock"
    ctx.usage = Usage(prompt_tokens=11, completion_tokens=7, total_tokens=18)
    ctx.finish_reason, ctx.cost_usd = "stop", 0.0001
    return ctx


def decode(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


def attributes(span: Span) -> dict[str, object]:
    found: dict[str, object] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        if kind == "array_value":
            value = [getattr(v, v.WhichOneof("value")) for v in value.values]
        found[kv.key] = value
    return found


# --- W3C trace context -------------------------------------------------------------------


def test_traceparent_is_parsed_and_written_back() -> None:
    header = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    assert parse_traceparent(header) == (CALLER_TRACE, CALLER_SPAN)
    assert parse_traceparent(header.upper()) == (CALLER_TRACE, CALLER_SPAN)
    assert parse_traceparent(f"cc-{CALLER_TRACE}-{CALLER_SPAN}-01-future") is not None
    assert traceparent(CALLER_TRACE, CALLER_SPAN) == header


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{'0' * 32}-{CALLER_SPAN}-01",  # all-zero trace id
        f"00-{CALLER_TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{CALLER_TRACE}-{CALLER_SPAN}-01",  # the forbidden version
        f"00-{CALLER_TRACE}-{CALLER_SPAN}-01-extra",  # version 00 has no more fields
        f"00-{CALLER_TRACE[:-1]}x-{CALLER_SPAN}-01",
        f"00_{CALLER_TRACE}_{CALLER_SPAN}_01",
    ],
)
def test_a_malformed_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_ids_are_w3c_sized_and_the_request_id_gives_the_trace_id() -> None:
    ctx = RequestContext(request_id="req_" + "cd" * 16, method="GET", path="/", client_ip="")
    assert ctx.trace_id == "cd" * 16
    assert len(bytes.fromhex(ctx.trace.root_id)) == 8
    other = RequestContext(request_id="r1", method="GET", path="/", client_ip="")
    assert len(bytes.fromhex(other.trace_id)) == 16


# --- records to protobuf -----------------------------------------------------------------


def test_a_request_becomes_one_trace_with_the_logs_tree_and_genai_attributes() -> None:
    rec = record()
    spans = decode(OtlpEncoder("floopy").encode([encode(rec)])[0])
    assert len(spans) == len(spans_of(rec))
    assert {span.trace_id.hex() for span in spans} == {"ab" * 16}
    by_id = {span.span_id.hex(): span for span in spans}
    assert set(by_id) == {s.span_id for s in spans_of(rec)}  # the log's ids, exported as they are
    root = by_id[spans_of(rec)[0].span_id]
    assert root.parent_span_id == b"" and root.kind == Span.SPAN_KIND_SERVER
    assert root.name == "chat gpt-4o-mini"
    root_attributes = attributes(root)
    assert root_attributes["gen_ai.operation.name"] == "chat"
    assert root_attributes["gen_ai.system"] == "mock"
    assert root_attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert root_attributes["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert root_attributes["gen_ai.usage.input_tokens"] == 11
    assert root_attributes["gen_ai.usage.output_tokens"] == 7
    assert root_attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert root_attributes["http.response.status_code"] == 200
    assert root_attributes["session.id"] == "s1" and root_attributes["user.id"] == "u1"
    assert root_attributes["floopy.property.env"] == "dev"
    assert root_attributes["floopy.request_id"] == rec.request_id
    names = {span.name: span for span in spans}
    assert names["dispatch"].parent_span_id == root.span_id
    attempts = [span for span in spans if span.name == "provider_attempt"]
    assert len(attempts) == 2
    for attempt in attempts:
        assert attempt.parent_span_id == names["dispatch"].span_id
        assert attempt.kind == Span.SPAN_KIND_CLIENT
        assert attributes(attempt)["gen_ai.request.model"] == "gpt-4o-mini"
    failed, ok = attempts
    assert attributes(failed)["gen_ai.system"] == "bad"
    assert failed.status.code == Status.STATUS_CODE_ERROR
    assert ok.status.code == Status.STATUS_CODE_UNSET
    for span in spans:
        assert root.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano
        assert span.end_time_unix_nano <= root.end_time_unix_nano + 1000


@pytest.mark.parametrize("caller", [False, True])
def test_the_row_the_trace_writes_for_the_export_exports_as_the_logs_line_does(
    caller: bool,
) -> None:
    ctx = request(caller=caller)
    ctx.headers = HeaderExtractor().extract(
        [("floopy-property-z", "ü"), ("floopy-property-a", 'q"\\'), ("floopy-user-id", "u1")]
    )
    rec = RecordBuilder(settings()).request(ctx, export=True)
    row = ctx.trace.export_row(rec)
    assert row.spans == len(spans_of(rec)) == 6
    encoder = OtlpEncoder("floopy")
    body, spans = encoder.encode([row])
    assert (body, spans) == encoder.encode([encode(rec)])
    assert attributes(decode(body)[0])["floopy.property.z"] == "ü"
    with pytest.raises(ValueError, match="span_rows"):
        ctx.trace.export_row(rec)  # taken once
    with pytest.raises(TypeError):
        encoder.encode(["a str is neither"])  # type: ignore[list-item]


def test_every_field_the_export_reads_lands_where_the_json_line_puts_it() -> None:
    ctx = request()
    base = RecordBuilder(settings()).request(ctx, export=True)
    values: dict[str, object] = {}
    for number, name in enumerate(RequestRecord.__struct_fields__):
        kind = type(getattr(base, name))
        if name in ("request_id", "path", "method"):
            continue  # the trace id and the operation come from these
        if kind is str:
            values[name] = f"{name}-{number}"
        elif kind is bool:
            values[name] = not getattr(base, name)
        elif kind is int:
            values[name] = 1000 + number
        elif name in ("ttft_ms", "cost_usd"):
            values[name] = number + 0.25
    rec = msgspec.structs.replace(base, **values)
    encoder = OtlpEncoder("floopy")
    body, _ = encoder.encode([ctx.trace.export_row(rec)])
    assert body == encoder.encode([encode(rec)])[0]
    root = attributes(decode(body)[0])
    assert root["floopy.session.path"] == values["session_path"]
    assert root["floopy.cost_usd"] == values["cost_usd"]


def test_the_callers_span_is_the_roots_parent() -> None:
    rec = record(caller=True, fail_first=False)
    assert spans_of(rec)[0].parent_id == CALLER_SPAN
    spans = decode(OtlpEncoder("floopy").encode([encode(rec)])[0])
    assert {span.trace_id.hex() for span in spans} == {CALLER_TRACE}
    root = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    assert root.parent_span_id.hex() == CALLER_SPAN


def test_an_endpoint_without_the_traces_path_gets_it() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://x/otlp/v1/traces") == "https://x/otlp/v1/traces"


# --- the queue and the retries -----------------------------------------------------------


class Receiver:
    """A post function: answers from a script, records bodies, can be held shut."""

    def __init__(self, answers: list[int | Exception] | None = None) -> None:
        self.answers = list(answers or [])
        self.bodies: list[bytes] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, body: bytes) -> int:
        self.gate.wait(10)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        self.bodies.append(body)
        return answer


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    receiver = Receiver()
    receiver.gate.clear()  # the collector hangs: the thread holds one batch, the rest queue
    exporter = TraceExporter(
        settings(otel_queue_size=3, otel_batch_size=1, otel_batch_interval=0.01, otel_timeout=2),
        post=receiver,
    )
    rec = record(fail_first=False)
    try:
        for _ in range(20):
            exporter.enqueue(encode(rec), len(spans_of(rec)))
        assert exporter.dropped_full >= (20 - 3 - 1) * len(spans_of(rec))
        assert exporter.dropped_full % len(spans_of(rec)) == 0
    finally:
        receiver.gate.set()
        exporter.close()
    lines: list[str] = []
    exporter.render(lines)
    assert (
        f'floopy_otel_spans_dropped_total{{reason="queue_full"}} {exporter.dropped_full}' in lines
    )
    assert exporter.exported + exporter.dropped_full == 20 * len(spans_of(rec))


def test_retryable_failures_are_tried_again_with_backoff() -> None:
    receiver = Receiver([PostFailed("HTTP 503"), PostFailed("refused"), 200])
    sleeps: list[float] = []
    exporter = TraceExporter(
        settings(otel_max_attempts=3, otel_retry_backoff=0.1, otel_batch_interval=0.01),
        post=receiver,
        sleep=sleeps.append,
    )
    rec = record(fail_first=False)
    exporter.enqueue(encode(rec), len(spans_of(rec)))
    exporter.close()
    assert exporter.exported == len(spans_of(rec)) and exporter.dropped_failed == 0
    assert len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.15 and 0.1 <= sleeps[1] <= 0.3
    assert len(decode(receiver.bodies[0])) == len(spans_of(rec))


def test_a_batch_is_dropped_after_the_last_try_or_a_refusal() -> None:
    receiver = Receiver([PostFailed("HTTP 503"), PostFailed("HTTP 503"), 400])
    exporter = TraceExporter(
        settings(otel_max_attempts=2, otel_batch_size=1, otel_batch_interval=0.01),
        post=receiver,
        sleep=lambda _: None,
    )
    rec = record(fail_first=False)
    exporter.enqueue(encode(rec), len(spans_of(rec)))
    exporter.enqueue(encode(rec), len(spans_of(rec)))
    exporter.close()
    assert exporter.dropped_failed == 2 * len(spans_of(rec))
    assert exporter.batches_failed == 2 and exporter.exported == 0


def test_a_batch_holds_every_request_and_the_resource() -> None:
    records = [record(), record(caller=True, fail_first=False)]
    request = ExportTraceServiceRequest()
    request.ParseFromString(OtlpEncoder("gw-eu").encode([encode(r) for r in records] * 3)[0])
    (resource_spans,) = request.resource_spans
    resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert resource["service.name"] == "gw-eu"
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "floopy"
    assert len(scope_spans.spans) == 3 * sum(len(spans_of(r)) for r in records)


def test_a_malformed_row_is_skipped_and_counted_as_failed() -> None:
    receiver = Receiver()
    exporter = TraceExporter(settings(otel_batch_interval=0.01), post=receiver)
    rec = record(fail_first=False)
    exporter.enqueue(b"not a row", 4)
    exporter.enqueue(encode(rec), len(spans_of(rec)))
    exporter.close()
    assert exporter.exported == len(spans_of(rec)) and exporter.dropped_failed == 4
    assert len(decode(receiver.bodies[0])) == len(spans_of(rec))
