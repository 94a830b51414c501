"""Interoperability through a real gateway: the OpenTelemetry export to an OTLP/HTTP receiver
on loopback (decoded with the official proto messages), the caller's ``traceparent``, the
``/metrics`` exposition read with Prometheus' own parser, and Helicone's headers logged as
their Floopy twins (read back from the embedded store)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from .conftest import TEST_KEY, free_port, start_gateway, stop, write_settings
from .logstore import embedded_client, wait_for

pytestmark = pytest.mark.integration

CALLER_TRACE, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TWIN_FLOOPY = {
    "floopy-session-id": "sess-twin",
    "floopy-session-name": "checkout",
    "floopy-session-path": "/cart/pay",
    "floopy-user-id": "user-twin",
    "floopy-property-env": "staging",
    "floopy-property-team": "search",
}
TWIN_HELICONE = {
    "Helicone-Auth": "Bearer sk-helicone-not-ours",  # ignored: the gateway key authenticates
    "Helicone-Session-Id": "sess-twin",
    "Helicone-Session-Name": "checkout",
    "Helicone-Session-Path": "/cart/pay",
    "Helicone-User-Id": "user-twin",
    "Helicone-Property-Env": "staging",
    "Helicone-Property-Team": "search",
}


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: decodes each POST with the official messages."""

    url: str
    server: ThreadingHTTPServer
    spans: list[Span] = field(default_factory=list)
    posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_trace(self) -> dict[str, list[Span]]:
        with self.lock:
            traces: dict[str, list[Span]] = {}
            for span in self.spans:
                traces.setdefault(span.trace_id.hex(), []).append(span)
            return traces

    def trace_of(self, request_id: str) -> list[Span]:
        for spans in self.by_trace().values():
            for span in spans:
                if _attributes(span).get("floopy.request_id") == request_id:
                    return spans
        return []


def start_receiver() -> Receiver:
    received: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            ok = self.path == "/v1/traces" and (
                self.headers["content-type"] == "application/x-protobuf"
            )
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with received.lock:
                received.posts += 1
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        received.spans.extend(scope_spans.spans)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200 if ok else 400)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received = Receiver(f"http://127.0.0.1:{server.server_address[1]}", server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return received


def _attributes(span: Span) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        found[kv.key] = getattr(kv.value, kind)
    return found


def scrape(url: str) -> dict[str, Any]:
    """``/metrics`` through Prometheus' parser: family name -> family (it raises on a
    malformed exposition)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], family: str, name: str, **labels: str) -> float:
    found = families.get(family)
    if found is None:
        return 0.0
    for s in found.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return 0.0


@dataclass
class Run:
    ids: dict[str, str]
    headers: dict[str, httpx.Headers]
    receiver: Receiver
    before: dict[str, Any]
    after: dict[str, Any]
    rows: dict[str, dict[str, Any]]
    logged_spans: dict[str, list[dict[str, Any]]]


def drive(url: str, ids: dict[str, str], headers: dict[str, httpx.Headers]) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
    say = [{"role": "user", "content": "hello"}]

    def keep(name: str, raw: Any) -> None:
        ids[name], headers[name] = raw.headers["x-request-id"], raw.headers

    keep(
        "plain", client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=say)
    )
    caller = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    keep(
        "caller",
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=say, extra_headers=caller
        ),
    )
    keep(
        "fallback",
        client.chat.completions.with_raw_response.create(
            model="mock/error-503", messages=say, extra_headers={"floopy-fallback": "gpt-4o-mini"}
        ),
    )
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=say,
        stream=True,
        stream_options={"include_usage": True},
    ) as resp:
        keep("stream", resp)
        "".join(resp.iter_lines())
    keep(
        "floopy_twin",
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=say, extra_headers=TWIN_FLOOPY
        ),
    )
    keep(
        "helicone_twin",
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=say, extra_headers=TWIN_HELICONE
        ),
    )
    client.close()


LOAD = 12


@pytest.fixture(scope="module")
def run(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("interop")
    data = root / "data"
    receiver = start_receiver()
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        data,
        LOG_FLUSH_INTERVAL="0.05",
        OTEL_ENDPOINT=repr(receiver.url),
        OTEL_BATCH_INTERVAL="0.05",
    )
    url, proc = start_gateway(settings, root / "gateway.log")
    ids: dict[str, str] = {}
    headers: dict[str, httpx.Headers] = {}
    try:
        drive(url, ids, headers)
        before = scrape(url)
        with openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0) as client:
            for _ in range(LOAD):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "load"}]
                )
        after = scrape(url)
        wait_for(
            lambda: all(receiver.trace_of(rid) for rid in ids.values()),
            "every request's trace at the receiver",
        )
        wait_for(
            lambda: (
                sample(
                    scrape(url),
                    "floopy_log_rows_inserted",
                    "floopy_log_rows_inserted_total",
                    sink="requests",
                )
                >= len(ids) + LOAD
            ),
            "the rows to be inserted",
        )
    finally:
        stop(proc)
        receiver.server.shutdown()
        receiver.server.server_close()
    rows, spans = read_back(data)
    yield Run(ids, headers, receiver, before, after, rows, spans)


def read_back(data: Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    with embedded_client(data) as client:
        rows = {
            row["request_id"]: row
            for row in client.query("SELECT * FROM floopy.requests").named_results()
        }
        spans: dict[str, list[dict[str, Any]]] = {}
        for row in client.query("SELECT * FROM floopy.spans FINAL").named_results():
            spans.setdefault(row["request_id"], []).append(row)
    return rows, spans


def test_each_request_is_one_trace_with_the_logs_tree(run: Run) -> None:
    for name, request_id in run.ids.items():
        spans = run.receiver.trace_of(request_id)
        assert len({span.trace_id for span in spans}) == 1, name
        exported = {span.span_id.hex(): span for span in spans}
        logged = {span["span_id"]: span for span in run.logged_spans[request_id]}
        assert set(exported) == set(logged), f"{name}: the export and the log differ"
        for span_id, span in exported.items():
            parent = span.parent_span_id.hex()
            assert parent == logged[span_id]["parent_id"], f"{name}: {span.name}"
        roots = [span for span in spans if span.kind == Span.SPAN_KIND_SERVER]
        assert len(roots) == 1
        root = roots[0]
        for span in spans:
            if span is not root:
                assert span.parent_span_id in exported_ids(spans), f"{name}: orphan {span.name}"
        stages = {span.name for span in spans if span.parent_span_id == root.span_id}
        assert {"auth", "parse", "routing", "dispatch", "respond"} <= stages, name


def exported_ids(spans: list[Span]) -> set[bytes]:
    return {span.span_id for span in spans}


def test_genai_attributes_on_the_root_and_each_attempt(run: Run) -> None:
    spans = run.receiver.trace_of(run.ids["fallback"])
    root = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    attributes = _attributes(root)
    assert root.name == "chat mock/error-503"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.system"] == "mock"
    assert attributes["gen_ai.request.model"] == "mock/error-503"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["http.response.status_code"] == 200
    assert attributes["floopy.fallback_used"] is True
    attempts = [span for span in spans if span.name == "provider_attempt"]
    assert [span.kind for span in attempts] == [Span.SPAN_KIND_CLIENT] * len(attempts)
    models = [_attributes(span)["gen_ai.request.model"] for span in attempts]
    assert models[0] == "error-503" and models[-1] == "gpt-4o-mini"
    assert attempts[0].status.code == attempts[0].status.STATUS_CODE_ERROR
    dispatch = next(span for span in spans if span.name == "dispatch")
    assert {span.parent_span_id for span in attempts} == {dispatch.span_id}


def test_the_callers_traceparent_is_honoured_and_returned(run: Run) -> None:
    spans = run.receiver.trace_of(run.ids["caller"])
    assert {span.trace_id.hex() for span in spans} == {CALLER_TRACE}
    root = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    assert root.parent_span_id.hex() == CALLER_SPAN
    returned = run.headers["caller"]["traceparent"]
    assert returned == f"00-{CALLER_TRACE}-{root.span_id.hex()}-01"
    plain = run.headers["plain"]["traceparent"].split("-")
    plain_root = next(
        span for span in run.receiver.trace_of(run.ids["plain"]) if not span.parent_span_id
    )
    assert plain[1] == plain_root.trace_id.hex() and plain[2] == plain_root.span_id.hex()
    assert run.rows[run.ids["caller"]]["request_id"] == run.ids["caller"]


def test_histograms_parse_and_move_with_load(run: Run) -> None:
    labels = {"model": "gpt-4o-mini", "provider": "mock", "status_class": "2xx", "cache": "none"}
    for family in (
        "floopy_request_duration_seconds",
        "floopy_time_to_first_token_seconds",
        "floopy_gateway_overhead_seconds",
        "floopy_upstream_duration_seconds",
    ):
        assert run.after[family].type == "histogram"
        grown = sample(run.after, family, f"{family}_count", **labels) - sample(
            run.before, family, f"{family}_count", **labels
        )
        assert grown == LOAD, family
        inf = sample(run.after, family, f"{family}_bucket", le="+Inf", **labels)
        assert inf == sample(run.after, family, f"{family}_count", **labels)
        smallest = sample(run.after, family, f"{family}_bucket", le="0.00025", **labels)
        assert smallest <= inf
    tokens = "floopy_tokens"
    for direction in ("input", "output"):
        grown = sample(
            run.after, tokens, "floopy_tokens_total", direction=direction, project="default"
        ) - sample(
            run.before, tokens, "floopy_tokens_total", direction=direction, project="default"
        )
        assert grown > 0, direction
    cost = sample(run.after, "floopy_cost_usd", "floopy_cost_usd_total", model="gpt-4o-mini")
    assert cost > sample(
        run.before, "floopy_cost_usd", "floopy_cost_usd_total", model="gpt-4o-mini"
    )
    for family in run.after.values():
        for s in family.samples:
            assert "user" not in s.labels and "session" not in s.labels
    assert sample(run.after, "floopy_otel_spans_exported", "floopy_otel_spans_exported_total") > 0


def test_helicone_headers_log_the_same_as_their_floopy_twin(run: Run) -> None:
    floopy, helicone = run.rows[run.ids["floopy_twin"]], run.rows[run.ids["helicone_twin"]]
    for column in ("session_id", "session_name", "session_path", "user_id", "properties"):
        assert helicone[column] == floopy[column], column
    assert helicone["session_id"] == "sess-twin" and helicone["user_id"] == "user-twin"
    assert helicone["properties"] == {"env": "staging", "team": "search"}
    assert helicone["api_key_id"] == "test"


def test_export_to_a_dead_receiver_drops_and_counts_and_requests_go_on(
    mock_upstream: str, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = write_settings(
        tmp_path / "settings.py",
        mock_upstream,
        tmp_path / "data",
        LOGGING_ENABLED="False",
        OTEL_ENDPOINT=repr(dead),
        OTEL_QUEUE_SIZE="2",
        OTEL_BATCH_SIZE="1",
        OTEL_MAX_ATTEMPTS="3",
        OTEL_RETRY_BACKOFF="1.0",
        OTEL_TIMEOUT="1.0",
    )
    url, proc = start_gateway(settings, tmp_path / "gateway.log")
    try:
        with openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0) as client:
            for _ in range(15):
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
                assert reply.choices[0].message.content
        families = scrape(url)
        dropped = sample(
            families,
            "floopy_otel_spans_dropped",
            "floopy_otel_spans_dropped_total",
            reason="queue_full",
        )
        assert dropped > 0
        assert sample(families, "floopy_otel_queue_requests", "floopy_otel_queue_requests") <= 2
        assert (
            sample(families, "floopy_otel_spans_exported", "floopy_otel_spans_exported_total") == 0
        )
        count = sample(
            families,
            "floopy_request_duration_seconds",
            "floopy_request_duration_seconds_count",
            model="gpt-4o-mini",
        )
        assert count == 15  # the histograms count with the log off too
    finally:
        stop(proc)
