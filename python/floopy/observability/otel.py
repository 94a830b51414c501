"""OpenTelemetry trace export: each request's spans, as the log stores them, to an OTLP/HTTP
collector (protobuf), off the request path.

The policy:

1. The request path only appends the finished request's row to a bounded queue: an
   ``ExportRow``, its strings and numbers copied by the trace as it writes the log's spans
   (``Trace.export_row``), which the exporter reads without parsing JSON; no span objects,
   no encoding, no lock, no I/O. A full queue
   drops the request's spans and counts them
   (``floopy_otel_spans_dropped_total{reason="queue_full"}``); a request never waits for the
   exporter.
2. One thread per worker sends each batch as soon as it is full (``OTEL_BATCH_SIZE``
   requests) and what is left every ``OTEL_BATCH_INTERVAL`` seconds, never a part-filled
   batch sooner: under load the per-POST work is paid once per full batch. A batch is one
   ``ExportTraceServiceRequest`` (``OtlpEncoder``: the resource and scope from the official
   ``opentelemetry-proto`` messages, the spans by the native encoder with the interpreter
   released), POSTed to ``OTEL_ENDPOINT``.
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

import ctypes
import functools
import http.client
import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from floopy._native import ExportRow, otlp_export_request

if TYPE_CHECKING:
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


def _name_os_thread(name: str) -> None:
    """Gives the calling thread ``name`` in the OS too (Linux: ``top -H``, ``ps -L``,
    ``/proc/PID/task/TID/comm``), where Python 3.11 leaves every thread named after the
    process; elsewhere nothing."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


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
        self._queue: deque[tuple[ExportRow | bytes, int]] = deque()  # (row, its spans)
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

    def enqueue(self, row: ExportRow | bytes, spans: int) -> None:
        """``row``: the request's row as its trace wrote it for the export, or its JSON line
        as the journal has it."""
        queue = self._queue
        if len(queue) >= self._queue_size:
            self.dropped_full += spans
            return
        queue.append((row, spans))
        if len(queue) == self._batch_size:
            self._wake.set()

    # --- the thread -----------------------------------------------------------------

    def _run(self) -> None:
        _name_os_thread(self._thread.name)
        # Full batches as they fill; what is left only once the interval has passed, so a
        # busy worker's rows go out 256 to a POST, not a few at a time as they trickle in
        # while the last POST was under way.
        flush_at = time.monotonic() + self._interval
        while not self._stopping:
            self._wake.wait(max(flush_at - time.monotonic(), 0.0))
            self._wake.clear()
            while len(self._queue) >= self._batch_size and not self._stopping:
                self._send(self._take())
            if time.monotonic() >= flush_at:
                while self._queue and not self._stopping:
                    self._send(self._take())
                flush_at = time.monotonic() + self._interval
        deadline = time.monotonic() + self._timeout
        while self._queue and time.monotonic() < deadline:
            self._send(self._take(), deadline=deadline)

    def _take(self) -> list[tuple[ExportRow | bytes, int]]:
        queue = self._queue
        batch: list[tuple[ExportRow | bytes, int]] = []
        while queue and len(batch) < self._batch_size:
            batch.append(queue.popleft())
        return batch

    def _send(
        self, batch: list[tuple[ExportRow | bytes, int]], deadline: float | None = None
    ) -> None:
        spans = sum(count for _, count in batch)
        try:
            body, encoded = self._encoder.encode([row for row, _ in batch])
        except Exception:
            log.exception("OTLP export: %d requests could not be encoded", len(batch))
            self._failed(spans)
            return
        if encoded < spans:
            self._failed(spans - encoded)
            spans = encoded
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


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


# --- rows to protobuf ----------------------------------------------------------------------


class OtlpEncoder:
    """Request rows (``ExportRow``s, or the log's JSON lines) to the bytes of one
    ``ExportTraceServiceRequest``:
    the resource and the instrumentation scope from the official messages, once; the spans
    by the native encoder (``floopy._native.otlp_export_request``, rust/core/src/otlp.rs),
    with the interpreter released, so the event loop runs meanwhile."""

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
        self._resource = resource.SerializeToString()
        self._scope = scope.SerializeToString()
        self.skipped = 0  # malformed rows, never expected

    def encode(self, rows: list[ExportRow | bytes]) -> tuple[bytes, int]:
        """The request's bytes and the number of spans in it."""
        body, spans, skipped = otlp_export_request(rows, self._resource, self._scope)
        if skipped:
            self.skipped += skipped
            log.error("OTLP export: %d malformed rows skipped", skipped)
        return body, spans
