"""OpenTelemetry trace export: each request's spans, as the log stores them, to an OTLP/HTTP
collector (protobuf), off the request path.

The policy:

1. The request path only appends the finished ``RequestRecord`` (built once for the log) to
   a bounded queue: no span objects, no encoding, no lock, no I/O. A full queue drops the
   request's spans and counts them (``floopy_otel_spans_dropped_total{reason="queue_full"}``);
   a request never waits for the exporter.
2. One thread per worker wakes when a batch is full (``OTEL_BATCH_SIZE`` requests) or every
   ``OTEL_BATCH_INTERVAL`` seconds, writes the batch as one ``ExportTraceServiceRequest``
   (``OtlpEncoder``: the official ``opentelemetry-proto`` messages for the constant parts,
   the spans in protobuf's wire format) and POSTs it to ``OTEL_ENDPOINT``.
3. A 429, a 5xx or a network error is tried again with exponential backoff (and jitter), up
   to ``OTEL_MAX_ATTEMPTS`` tries in all; any other answer, or the last failure, drops the
   batch's spans, counted under ``reason="export_failed"``. While it retries, new requests
   fill the queue, and past its size they are dropped, not held.
4. On shutdown the thread sends what is queued, for at most ``OTEL_TIMEOUT`` seconds.

Attributes follow OpenTelemetry's semantic conventions: the root span (kind SERVER, named
``{gen_ai.operation.name} {gen_ai.request.model}``) and each provider attempt (kind CLIENT)
carry the GenAI ones (``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.usage.input_tokens``, ...); the root also the HTTP ones and Floopy's own under
``floopy.*``. Span ids are the log's, so a span found in a tracing tool is the same span in
``floopy logs`` and the dashboard.
"""

from __future__ import annotations

import functools
import http.client
import logging
import random
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

if TYPE_CHECKING:
    from floopy.observability.record import RequestRecord, SpanRecord
    from floopy.settings import Settings

log = logging.getLogger("floopy.otel")

TRACES_PATH = "/v1/traces"
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})

# The API path -> gen_ai.operation.name.
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "chat",
    "/v1/messages": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/messages/count_tokens": "count_tokens",
}


@functools.cache
def _floopy_version() -> str:
    try:
        return version("floopy")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0"


class PostFailed(Exception):
    """An export that may succeed if tried again (a network error, a 429 or a 5xx)."""


class HttpPoster:
    """POSTs protobuf bodies to one URL over one kept-alive connection, opened again after
    any error."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or TRACES_PATH
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"floopy/{_floopy_version()}",
            **headers,
        }
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def __call__(self, body: bytes) -> int:
        """The status of the answer; raises PostFailed for one worth retrying."""
        connection = self._connection or self._connect()
        try:
            connection.request("POST", self._path, body, self._headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise PostFailed(f"{type(exc).__name__}: {exc}") from None
        if response.will_close:
            self.close()
        if response.status in RETRYABLE:
            raise PostFailed(f"HTTP {response.status}")
        return response.status

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            context = ssl.create_default_context()
            self._connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=context
            )
        else:
            self._connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._timeout
            )
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def traces_url(endpoint: str) -> str:
    """``OTEL_ENDPOINT`` as the URL to POST to: a base URL gets ``/v1/traces`` appended, as
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` does; a URL already ending in it is used as it is."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


class TraceExporter:
    """The worker's exporter: a bounded queue of finished requests and the thread that sends
    them. ``post`` and ``sleep`` are injected for tests; ``enqueue`` is the request path."""

    def __init__(
        self,
        settings: Settings,
        *,
        post: Callable[[bytes], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        assert settings.otel_endpoint is not None
        self.url = traces_url(settings.otel_endpoint)
        self._post = post or HttpPoster(self.url, settings.otel_headers, settings.otel_timeout)
        self._sleep = sleep
        self._queue: deque[RequestRecord] = deque()
        self._queue_size = settings.otel_queue_size
        self._batch_size = settings.otel_batch_size
        self._interval = settings.otel_batch_interval
        self._timeout = settings.otel_timeout
        self._attempts = settings.otel_max_attempts
        self._backoff = settings.otel_retry_backoff
        self._encoder = OtlpEncoder(settings.otel_service_name)
        self._wake = threading.Event()
        self._stopping = False
        # Bumped by the request path (dropped_full) and the thread (the rest); each counter
        # has one writer, read by /metrics.
        self.dropped_full = 0
        self.dropped_failed = 0
        self.exported = 0
        self.batches_ok = 0
        self.batches_failed = 0
        self._thread = threading.Thread(target=self._run, name="floopy-otel", daemon=True)
        self._thread.start()

    # --- the request path -------------------------------------------------------------

    def enqueue(self, record: RequestRecord) -> None:
        queue = self._queue
        if len(queue) >= self._queue_size:
            self.dropped_full += len(record.spans)
            return
        queue.append(record)
        if len(queue) == self._batch_size:
            self._wake.set()

    # --- the thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            while self._queue and not self._stopping:
                self._send(self._take())
        deadline = time.monotonic() + self._timeout
        while self._queue and time.monotonic() < deadline:
            self._send(self._take(), deadline=deadline)

    def _take(self) -> list[RequestRecord]:
        queue = self._queue
        batch: list[RequestRecord] = []
        while queue and len(batch) < self._batch_size:
            batch.append(queue.popleft())
        return batch

    def _send(self, batch: list[RequestRecord], deadline: float | None = None) -> None:
        spans = sum(len(record.spans) for record in batch)
        try:
            body = self._encoder.encode(batch, _yield_interpreter)
        except Exception:
            log.exception("OTLP export: %d requests could not be encoded", len(batch))
            self._failed(spans)
            return
        for attempt in range(self._attempts):
            try:
                status = self._post(body)
            except PostFailed as exc:
                reason = str(exc)
            except Exception as exc:  # never let the thread die
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= status < 300:
                    self.exported += spans
                    self.batches_ok += 1
                    return
                log.warning("OTLP export refused (HTTP %d): %d spans dropped", status, spans)
                self._failed(spans)
                return
            last = attempt + 1 == self._attempts
            if last or (deadline is not None and time.monotonic() > deadline):
                break
            delay = self._backoff * (2**attempt) * (0.5 + random.random())
            self._sleep(delay)
        log.warning("OTLP export to %s failed (%s): %d spans dropped", self.url, reason, spans)
        self._failed(spans)

    def _failed(self, spans: int) -> None:
        self.dropped_failed += spans
        self.batches_failed += 1

    # --- lifecycle and /metrics ---------------------------------------------------------

    def close(self) -> None:
        """Sends what is queued (for at most ``OTEL_TIMEOUT`` seconds), then stops."""
        self._stopping = True
        self._wake.set()
        self._thread.join(self._timeout + 1)
        close = getattr(self._post, "close", None)
        if close is not None:
            close()

    def render(self, lines: list[str]) -> None:
        name = "floopy_otel_spans_exported_total"
        _family(lines, name, "counter", "spans the OTLP collector accepted")
        lines.append(f"{name} {self.exported}")
        name = "floopy_otel_spans_dropped_total"
        _family(lines, name, "counter", "spans not exported: queue full or export failed")
        lines.append(f'{name}{{reason="queue_full"}} {self.dropped_full}')
        lines.append(f'{name}{{reason="export_failed"}} {self.dropped_failed}')
        name = "floopy_otel_export_batches_total"
        _family(lines, name, "counter", "export POSTs, by outcome (after retries)")
        lines.append(f'{name}{{outcome="ok"}} {self.batches_ok}')
        lines.append(f'{name}{{outcome="failed"}} {self.batches_failed}')
        name = "floopy_otel_queue_requests"
        _family(lines, name, "gauge", "requests waiting to be exported")
        lines.append(f"{name} {len(self._queue)}")


def _yield_interpreter() -> None:
    """Releases the GIL for a moment, so a waiting event loop runs now rather than after
    the interpreter's switch interval (5 ms)."""
    time.sleep(0)


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


# --- records to protobuf -------------------------------------------------------------------
#
# The bytes of one ``ExportTraceServiceRequest``, written field by field: the constant head
# (the resource and the instrumentation scope) comes from the official messages once, and
# each span is written in protobuf's wire format directly, its repeated attributes (the same
# key and value on most requests: the operation, the provider, the model, the path) from a
# bounded cache. Building upb message objects instead costs about 60 µs a request, several
# times this (benches/micro/test_bench_otel.py); the tests decode what is written here with
# the official messages.

_MASK64 = (1 << 64) - 1
_SMALL = tuple(bytes((n,)) for n in range(128))
_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_CACHE_MAX = 8192
# Span fields and their wire tags.
_TRACE_ID, _SPAN_ID, _PARENT_ID, _NAME = b"\x0a", b"\x12", b"\x22", b"\x2a"
_KIND, _START, _END, _ATTRIBUTE, _STATUS = b"\x30", b"\x39", b"\x41", b"\x4a", b"\x7a"


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    n = len(payload)
    return tag + (_SMALL[n] if n < 0x80 else _varint(n)) + payload


def _any_value(value: object) -> bytes:
    """An ``AnyValue``'s bytes."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & _MASK64)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, tuple):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    return _field(b"\x0a", str(value).encode())


def _key_value(key: str, value: object) -> bytes:
    """A ``KeyValue``'s bytes, as a span's or a resource's attribute field."""
    return _field(_ATTRIBUTE, _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value)))


class OtlpEncoder:
    """Finished requests to the bytes of one ``ExportTraceServiceRequest``. Used by the
    exporter's thread only (its cache is not shared)."""

    def __init__(self, service_name: str) -> None:
        resource = Resource()
        resource.attributes.extend(
            KeyValue(key=key, value=AnyValue(string_value=value))
            for key, value in (
                ("service.name", service_name),
                ("telemetry.sdk.name", "floopy"),
                ("telemetry.sdk.language", "python"),
                ("telemetry.sdk.version", _floopy_version()),
            )
        )
        scope = InstrumentationScope(name="floopy", version=_floopy_version())
        self._resource = _field(b"\x0a", resource.SerializeToString())
        self._scope = _field(b"\x0a", scope.SerializeToString())
        self._attributes: dict[tuple[str, object], bytes] = {}

    def encode(
        self, batch: Iterable[RequestRecord], pause: Callable[[], None] | None = None
    ) -> bytes:
        """``pause`` runs after each request: the exporter's thread lets the event loop have
        the interpreter there, rather than hold it for a whole batch."""
        spans: list[bytes] = [self._scope]
        for record in batch:
            self._add_request(spans, record)
            if pause is not None:
                pause()
        scope_spans = _field(b"\x12", b"".join(spans))
        return _field(b"\x0a", self._resource + scope_spans)

    def _attribute(self, key: str, value: object) -> bytes:
        cached = self._attributes.get((key, value))
        if cached is None:
            if len(self._attributes) >= _CACHE_MAX:
                self._attributes.clear()
            cached = self._attributes[key, value] = _key_value(key, value)
        return cached

    def _add_request(self, out: list[bytes], record: RequestRecord) -> None:
        root = record.spans[0]
        trace_id = _field(
            _TRACE_ID, bytes.fromhex(root.attributes.get("trace_id") or record.request_id[-32:])
        )
        operation = OPERATIONS.get(record.path, "chat")
        attribute = self._attribute
        for span in record.spans:
            parts = [trace_id, _field(_SPAN_ID, bytes.fromhex(span.span_id))]
            if span.parent_id:
                parts.append(_field(_PARENT_ID, bytes.fromhex(span.parent_id)))
            start = int(span.start_time * 1e9)
            attributes: Iterable[tuple[str, object]]
            if span is root:
                name = f"{operation} {record.requested_model}".rstrip()
                kind = Span.SPAN_KIND_SERVER
                attributes = _root_attributes(record, operation).items()
            elif span.name == "provider_attempt":
                name, kind = span.name, Span.SPAN_KIND_CLIENT
                attributes = (*span.attributes.items(), *_attempt_attributes(span, operation))
            else:
                name, kind = span.name, Span.SPAN_KIND_INTERNAL
                attributes = span.attributes.items()
            parts.append(_field(_NAME, name.encode()))
            parts.append(_KIND + _SMALL[kind])
            parts.append(_START + _fixed64(start))
            parts.append(_END + _fixed64(start + int(span.duration_ms * 1e6)))
            for key, value in attributes:
                if value is not None:
                    parts.append(attribute(key, value))
            if span.status != "ok":
                parts.append(_STATUS + _status(span))
            out.append(_field(b"\x12", b"".join(parts)))


def _status(span: SpanRecord) -> bytes:
    """A failed span's ``Status`` (code ERROR, the error's message), length-prefixed."""
    message = span.attributes.get("error.message") or span.attributes.get("error", span.status)
    payload = _field(b"\x12", message.encode()) + b"\x18" + _SMALL[Status.STATUS_CODE_ERROR]
    return _varint(len(payload)) + payload


def _root_attributes(record: RequestRecord, operation: str) -> dict[str, object]:
    attributes: dict[str, object] = {
        "gen_ai.operation.name": operation,
        "gen_ai.system": record.provider or None,
        "gen_ai.provider.name": record.provider or None,
        "gen_ai.request.model": record.requested_model or None,
        "gen_ai.response.model": record.model or None,
        "http.request.method": record.method,
        "url.path": record.path,
        "http.response.status_code": record.status,
        "error.type": record.error_code or None,
        "session.id": record.session_id or None,
        "user.id": record.user_id or None,
        "floopy.request_id": record.request_id,
        "floopy.organization": record.organization or None,
        "floopy.project": record.project or None,
        "floopy.stream": record.stream,
        "floopy.fallback_used": record.fallback_used,
        "floopy.cache.status": record.cache_status or None,
        "floopy.cache.tier": record.cache_tier or None,
        "floopy.cost_usd": record.cost_usd,
        "floopy.firewall.verdict": record.firewall_verdict or None,
        "floopy.session.name": record.session_name or None,
        "floopy.session.path": record.session_path or None,
        "floopy.ttft_ms": record.ttft_ms,
    }
    if record.prompt_tokens or record.completion_tokens:
        attributes["gen_ai.usage.input_tokens"] = record.prompt_tokens
        attributes["gen_ai.usage.output_tokens"] = record.completion_tokens
    if record.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = record.cached_tokens
    if record.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = (record.finish_reason,)
    for name, value in record.properties.items():
        attributes[f"floopy.property.{name}"] = value
    return attributes


def _attempt_attributes(span: SpanRecord, operation: str) -> tuple[tuple[str, object], ...]:
    provider = span.attributes.get("provider")
    return (
        ("gen_ai.operation.name", operation),
        ("gen_ai.system", provider),
        ("gen_ai.provider.name", provider),
        ("gen_ai.request.model", span.attributes.get("model")),
    )
