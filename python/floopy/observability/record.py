"""The rows the log writes, built from a finished request (DESIGN section 5).

``RecordBuilder.request`` runs once per request, after its response, for every outcome: the
fields a stage never reached stay empty. Rows are encoded to JSON once, here: the same bytes
go to the worker's journal and from there, unchanged, to ClickHouse (``JSONEachRow``). Times
are Unix seconds (floats); ClickHouse stores them as ``DateTime64``.

Only the API surface (``/v1/...``) is logged; health checks and scrapes are counted in
``/metrics`` and not written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from floopy.observability.redact import Redactor, log_needles
from floopy.scrub import SecretScrubber

if TYPE_CHECKING:
    from floopy.context import BreakerEvent, RequestContext
    from floopy.settings import Settings

# A sink is a kind of journal file, and the table the log store inserts its lines into. A
# request is one line, its spans inside (each a JSON array, ``span_rows``), inserted into
# ``request_intake``, whose views fill ``requests`` and ``spans`` (migration 0015; lines
# written before it hold their spans as objects, ``spans``, and go in the same way).
# ``traces`` (one line of spans per request, expanded into ``spans``) is what older versions
# wrote beside each request line: the store still takes such files, and workers no longer
# write them.
REQUESTS, TRACES, BREAKER_EVENTS = "requests", "traces", "circuit_breaker_events"
SINKS = (REQUESTS, TRACES, BREAKER_EVENTS)
WRITTEN_SINKS = (REQUESTS, BREAKER_EVENTS)
_TABLES = {REQUESTS: "request_intake"}


def table_of(sink: str) -> str:
    """The table a sink's lines are inserted into."""
    return _TABLES.get(sink, sink)


LOGGED_PATH_PREFIX = "/v1/"
CLIENT_DISCONNECTED = 499


class SpanRecord(msgspec.Struct, array_like=True):
    """One span of a trace; a row of the ``spans`` table, with the trace's request id,
    organization and project. Encoded as a JSON array of its fields in this order (the
    ``span_rows`` tuples of ``request_intake``): built positionally, it is the cheapest
    struct to make and to encode."""

    span_id: str
    parent_id: str
    name: str
    start_time: float
    duration_ms: float
    status: str
    attributes: dict[str, str]


class RequestRecord(msgspec.Struct, kw_only=True):
    request_id: str
    time: float
    organization: str
    project: str
    api_key_id: str
    user_id: str
    session_id: str
    session_name: str
    session_path: str
    properties: dict[str, str]
    method: str
    path: str
    requested_model: str
    model: str
    provider: str
    fallback_used: bool
    status: int
    error_code: str
    latency_ms: float
    ttft_ms: float | None
    stage_latency_ms: dict[str, float]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cache_write_tokens: int
    cost_usd: float | None
    cache_status: str
    cache_tier: str
    cache_similarity: float | None
    cache_saved_usd: float | None
    firewall_verdict: str
    firewall_score: float | None
    firewall_categories: list[str]
    firewall_backend: str
    firewall_model: str
    firewall_from_cache: bool
    stream: bool
    finish_reason: str
    request_body: str
    response_body: str
    client_ip: str
    user_agent: str
    # The spans as their JSON, written natively (``Trace.span_rows``); read them back with
    # ``spans_of``.
    spans: msgspec.Raw = msgspec.field(name="span_rows")


class BreakerEventRecord(msgspec.Struct, kw_only=True):
    event_id: str
    time: float
    provider: str
    model: str
    from_state: str
    to_state: str
    reason: str


_encoder = msgspec.json.Encoder()


def encode(record: msgspec.Struct) -> bytes:
    return _encoder.encode(record)


class RecordBuilder:
    """Turns a finished request into its rows, with the redaction settings applied."""

    def __init__(self, settings: Settings) -> None:
        self._bodies = settings.log_bodies
        self._body_max = settings.log_body_max_bytes
        # Provider keys, and any key-shaped string, leave no trace in any row, whatever
        # LOG_SCRUB says: the secrets scrubber masks what the "api_keys" kind would, so that
        # kind is not run a second time.
        self._secrets = SecretScrubber.from_settings(settings)
        self._redact = Redactor(kind for kind in settings.log_scrub if kind != "api_keys")
        self._quiet = log_needles(self._secrets, settings.log_scrub).quiet

    def wants(self, ctx: RequestContext) -> bool:
        return ctx.path.startswith(LOGGED_PATH_PREFIX)

    def request(
        self,
        ctx: RequestContext,
        *,
        bodies: bool = True,
        latency_ms: float | None = None,
        export: bool = False,
    ) -> RequestRecord:
        """The request's row; ``bodies=False`` leaves the bodies out whatever LOG_BODIES
        says (a row built for the trace export alone). ``latency_ms``: what ``settle``
        returned, when it ran already. ``export``: the trace also writes its spans for the
        trace export, for ``ctx.trace.export_row(record)`` to take."""
        if latency_ms is None:
            latency_ms = settle(ctx)
        headers, chat, key, usage = ctx.headers, ctx.chat, ctx.key, ctx.usage
        return RequestRecord(
            request_id=ctx.request_id,
            time=ctx.started_at,
            organization=organization_of(ctx),
            project=project_of(ctx),
            api_key_id=key.id if key is not None else "",
            user_id=self._clean(
                ctx.user_id
                or (headers.user_id if headers else None)
                or (chat.user if chat else None)
                or ""
            ),
            session_id=self._clean((headers.session_id if headers else None) or ""),
            session_name=self._clean((headers.session_name if headers else None) or ""),
            session_path=self._clean((headers.session_path if headers else None) or ""),
            properties=self._properties(headers.properties if headers else {}),
            method=ctx.method,
            path=ctx.path,
            requested_model=self._clean(ctx.requested_model or (chat.model if chat else "")),
            model=ctx.model or "",
            provider=ctx.provider or "",
            fallback_used=ctx.fallback_used,
            status=ctx.status,
            error_code=ctx.error_code or "",
            latency_ms=latency_ms,
            ttft_ms=ttft_of(ctx),
            stage_latency_ms=dict(ctx.stages_ms),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            total_tokens=usage.total_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            cache_write_tokens=usage.cache_write_tokens if usage else 0,
            cost_usd=ctx.cost_usd,
            cache_status=ctx.cache_status or "",
            cache_tier=ctx.cache_tier or "",
            cache_similarity=ctx.cache_similarity,
            cache_saved_usd=ctx.cache_saved_usd,
            firewall_verdict=ctx.firewall_verdict or "",
            firewall_score=ctx.firewall_score,
            firewall_categories=list(ctx.firewall_categories),
            firewall_backend=ctx.firewall_backend or "",
            firewall_model=ctx.firewall_model or "",
            firewall_from_cache=ctx.firewall_from_cache,
            stream=ctx.stream,
            finish_reason=ctx.finish_reason or "",
            request_body=self._body(ctx.body) if bodies else "",
            response_body=self._body(ctx.response_body) if bodies else "",
            client_ip=(headers.forwarded_for if headers else None) or _host_of(ctx.client_ip),
            user_agent=(headers.user_agent if headers else None) or "",
            spans=self._spans(ctx, latency_ms, export),
        )

    def _spans(self, ctx: RequestContext, latency_ms: float, export: bool) -> msgspec.Raw:
        """The root span (the request; a child of the caller's span when its ``traceparent``
        named one) and every span a stage recorded under it, as JSON written by the trace
        itself. The root carries the W3C trace id the spans were exported under; an error
        message a span holds is scrubbed as the bodies are."""
        rows = ctx.trace.span_rows(
            ctx.parent_span_id,
            ctx.started_at,
            latency_ms,
            "ok" if ctx.status < 400 else "error",
            {
                "method": ctx.method,
                "path": ctx.path,
                "status": str(ctx.status),
                "trace_id": ctx.trace_id,
            },
            ctx.started_at - ctx.started,  # perf_counter to wall clock
            self._clean,
            export,
        )
        return msgspec.Raw(rows)

    def _properties(self, properties: Mapping[str, str]) -> dict[str, str]:
        return {name: self._clean(value) for name, value in properties.items()}

    def _body(self, body: bytes) -> str:
        if not self._bodies or not body:
            return ""
        return self._clean(body[: self._body_max].decode("utf-8", "replace"))

    def _clean(self, text: str) -> str:
        """Client-supplied or upstream text, as the log may keep it."""
        if not text or self._quiet(text):
            return text
        text = self._secrets.scrub(text)
        return self._redact(text) if self._redact else text


def breaker_event_record(event: BreakerEvent) -> BreakerEventRecord:
    """The row of a circuit-breaker state change."""
    return BreakerEventRecord(
        event_id=uuid.uuid4().hex,
        time=event.time,
        provider=event.provider,
        model=event.model,
        from_state=event.from_state,
        to_state=event.to_state,
        reason=event.reason,
    )


def organization_of(ctx: RequestContext) -> str:
    if ctx.organization:
        return ctx.organization
    return ctx.key.organization if ctx.key is not None else ""


def project_of(ctx: RequestContext) -> str:
    """The project the auth stage resolved; else DESIGN section 4's order: a key locked to a
    project, the floopy-project-id header, the key's default, then "default"."""
    if ctx.project:
        return ctx.project
    key, headers = ctx.key, ctx.headers
    if key is not None and key.locked_to_project and key.project:
        return key.project
    if headers is not None and headers.project_id:
        return headers.project_id
    if key is not None and key.project:
        return key.project
    return "default"


def settle(ctx: RequestContext) -> float:
    """Ends the spans the request left open (it was cancelled inside them, and is then a
    client disconnect) and returns its latency so far, in milliseconds."""
    latency_ms = (time.perf_counter() - ctx.started) * 1000
    ctx.trace.close_open("cancelled")
    _note_disconnect(ctx)
    return latency_ms


_SPANS = msgspec.json.Decoder(list[SpanRecord])


def spans_of(record: RequestRecord) -> list[SpanRecord]:
    """A record's spans, decoded from the JSON they are kept as."""
    return _SPANS.decode(record.spans)


def ttft_of(ctx: RequestContext) -> float | None:
    """Milliseconds from the request's start until its answer began: when the respond stage
    opened (a stream's first event was in hand; a whole answer was complete). A provider
    sends its first event with its first token, so this is the time to first token as the
    client sees it. None when nothing was answered."""
    if ctx.status >= 400 and ctx.status != CLIENT_DISCONNECTED:
        return None
    start = ctx.trace.stage_start("respond")
    return None if start is None else (start - ctx.started) * 1000


def _note_disconnect(ctx: RequestContext) -> None:
    """A request cancelled inside a stage (its client went away) is logged as 499."""
    if ctx.error_code is not None:
        return
    if ctx.trace.any_status("cancelled"):
        ctx.status, ctx.error_code = CLIENT_DISCONNECTED, "CLIENT_DISCONNECTED"


def _host_of(peer: str) -> str:
    """granian gives the peer as ``host:port``; the port is noise in a log."""
    host, sep, port = peer.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else peer
