"""What the gateway hands to the log: the request context (what each stage reads and sets,
carried to the log once the request ended) and circuit-breaker state changes.

Both the pipeline and observability import this module; it imports neither."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from floopy.trace import Attribute, Span, Trace

if TYPE_CHECKING:
    from floopy._native import ChatRequest, FloopyHeaders
    from floopy.providers.base import Usage
    from floopy.settings import ApiKeyEntry


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str
    path: str
    client_ip: str
    # The API the client speaks: "openai", or "anthropic" on /v1/messages; errors are
    # rendered in its envelope.
    api_format: str = "openai"
    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)  # wall clock, for the log
    headers: FloopyHeaders | None = None  # parse
    key: ApiKeyEntry | None = None  # auth
    organization: str | None = None  # auth: the key's organization
    project: str | None = None  # projects: header, key default or organization default
    user_id: str | None = None  # rate limit: floopy-user-id, else the body's `user`
    rate_limit_headers: dict[str, str] = field(default_factory=dict)  # rate limit: RateLimit-*
    routing_rule: str | None = None  # routing: the rule applied, if any
    chat: ChatRequest | None = None  # parse
    stream: bool = False  # parse: the client asked for a stream, whatever its API
    body: bytes = b""
    requested_model: str | None = None  # routing
    provider: str | None = None  # dispatch: the target that answered
    model: str | None = None
    fallback_used: bool = False
    status: int = 200
    error_code: str | None = None
    logged: bool = False  # its row is in the journal (written once, before a whole answer)
    usage: Usage | None = None
    cost_usd: float | None = None  # from usage and the catalog's prices (pricing.py)
    finish_reason: str | None = None
    ttft_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    response_body: bytes = b""  # respond: a whole answer (streams: the summary's content)
    cache_status: str | None = None  # cache: "HIT" or "MISS"; None when not looked up
    cache_tier: str | None = None  # cache: exact, semantic or advanced, on a hit
    cache_similarity: float | None = None  # cache: a semantic or advanced hit's similarity
    cache_bucket_index: int | None = None  # cache: which answer of a bucket a hit served
    cache_saved_usd: float | None = None  # cache: what the provider charged for a hit's answer
    # firewall: safe, unsafe, error or skipped; None when not screened (mode off, or an
    # endpoint without a prompt). The rest describe the verdict.
    firewall_verdict: str | None = None
    firewall_score: float | None = None
    firewall_categories: tuple[str, ...] = ()
    firewall_backend: str | None = None
    firewall_model: str | None = None
    firewall_from_cache: bool = False  # the verdict cache answered, not the classifier
    trace: Trace = field(default_factory=Trace)
    # W3C trace id (32 hex digits): the caller's from its ``traceparent``, else the request
    # id's random part. ``parent_span_id``: the caller's span the request's root is a child of.
    trace_id: str = ""
    parent_span_id: str = ""

    def __post_init__(self) -> None:
        if not self.trace_id:
            rid = self.request_id
            self.trace_id = rid[4:] if len(rid) == 36 else os.urandom(16).hex()

    def mark(self, stage: str, since: float) -> float:
        """Records how long ``stage`` took since ``since``; returns now."""
        now = time.perf_counter()
        self.stages_ms[stage] = (now - since) * 1000
        return now

    @contextmanager
    def span(
        self, name: str, parent: Span | None = None, **attributes: Attribute
    ) -> Iterator[Span]:
        """Times the block as a trace span. Opened while no other span is open, it is a stage:
        its duration also goes to ``stages_ms[name]``. An exception marks it failed."""
        span = self.start_span(name, parent, **attributes)
        try:
            yield span
        except BaseException as exc:
            span.fail(exc)
            raise
        finally:
            self.end_span(span)

    def start_span(self, name: str, parent: Span | None = None, **attributes: Attribute) -> Span:
        """For a span that does not fit one block; close it with ``end_span``."""
        return self.trace.start(name, parent, attributes)

    def end_span(self, span: Span) -> None:
        self.trace.end(span, self.stages_ms)


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One state change of one target's breaker, for the circuit-breaker log sink."""

    provider: str
    model: str
    from_state: str
    to_state: str
    reason: str
    time: float  # Unix time of the change
