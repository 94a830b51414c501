"""Trace spans of one request: one per stage, one per provider attempt, and any a stage adds.

A span has an id, its parent's id, a start, a duration and attributes. Ids are W3C Trace
Context's: a trace id is 32 hex digits (16 bytes), a span id 16 (8 bytes), neither all zeros,
so the log's spans and the ones exported over OpenTelemetry are the same. The request itself is
the root: spans opened while no other is open are its children (the stages), spans opened
inside another become that one's children unless a parent is named. Times come from
``time.perf_counter``; the log turns them into wall-clock times against the request's start.
"""

from __future__ import annotations

import asyncio
import random
from time import perf_counter
from dataclasses import dataclass, field

Attribute = str | int | float | bool | None


_HEX = frozenset("0123456789abcdef")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """The caller's trace id and span id from a W3C ``traceparent`` header
    (``00-<32 hex>-<16 hex>-<2 hex>``); None when absent or malformed, as the spec asks: a
    request with a bad ``traceparent`` starts a trace of its own. Versions above ``00`` are
    read by the same prefix, as the spec allows; ``ff`` is invalid."""
    if not value:
        return None
    value = value.strip().lower()
    if len(value) < 55 or (len(value) > 55 and value[55] != "-"):
        return None
    version, trace_id, span_id, flags = value[:2], value[3:35], value[36:52], value[53:55]
    if value[2] != "-" or value[35] != "-" or value[52] != "-" or version == "ff":
        return None
    if version == "00" and len(value) != 55:
        return None
    if not _HEX.issuperset(version + trace_id + span_id + flags):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id


def traceparent(trace_id: str, span_id: str) -> str:
    """The ``traceparent`` header naming ``span_id`` of ``trace_id``, sampled."""
    return f"00-{trace_id}-{span_id}-01"


def new_span_id() -> str:
    """16 hex digits, as OpenTelemetry span ids; unique within a request is what matters."""
    return f"{random.getrandbits(64):016x}"


# A span id's last four hex digits for the first spans of a request, formatted once.
_SUFFIXES = tuple(f"{n:04x}" for n in range(256))


@dataclass(slots=True)
class Span:
    name: str
    span_id: str
    parent_id: str | None  # None: a child of the request's root span (a stage)
    start: float  # perf_counter() when it opened
    duration_ms: float | None = None  # None while open
    status: str = "ok"  # "ok", "error" or "cancelled"
    attributes: dict[str, Attribute] = field(default_factory=dict)

    def set(self, **attributes: Attribute) -> None:
        self.attributes.update(attributes)

    def fail(self, exc: BaseException) -> None:
        """Marks the span failed with the error's code (a FloopyError) or its class name."""
        if isinstance(exc, asyncio.CancelledError):  # the client went away
            self.status = "cancelled"
            return
        self.status = "error"
        self.attributes["error"] = getattr(exc, "code", None) or type(exc).__name__
        message = getattr(exc, "message", None)
        if isinstance(message, str):
            self.attributes["error.message"] = message[:500]


class Trace:
    """The spans of one request, in the order they opened.

    A request's span ids are one random 48-bit prefix and a counter (the root is 1), so each
    span costs a table lookup, not a draw from the random generator."""

    __slots__ = ("_count", "_open", "_prefix", "root_id", "spans")

    def __init__(self) -> None:
        self._prefix = prefix = f"{random.getrandbits(48):012x}"
        self._count = 1
        self.root_id = prefix + _SUFFIXES[1]
        self.spans: list[Span] = []
        self._open: list[Span] = []

    def start(self, name: str, parent: Span | None, attributes: dict[str, Attribute]) -> Span:
        opened = self._open
        if parent is not None:
            parent_id: str | None = parent.span_id
        else:
            parent_id = opened[-1].span_id if opened else None
        n = self._count = self._count + 1
        span = Span(
            name,
            self._prefix + (_SUFFIXES[n] if n < 256 else f"{n & 0xFFFF:04x}"),
            parent_id,
            perf_counter(),
            None,
            "ok",
            attributes,
        )
        self.spans.append(span)
        opened.append(span)
        return span

    def end(self, span: Span, stages: dict[str, float] | None = None) -> float | None:
        """Closes ``span`` and returns its duration; None if it was closed already. The
        duration of a child of the root (a stage) is added to ``stages`` under its name."""
        if span.duration_ms is not None:
            return None
        span.duration_ms = duration = (perf_counter() - span.start) * 1000
        opened = self._open
        if opened[-1] is span:  # an open span is in ``_open``
            opened.pop()
        else:  # not always the last: concurrent attempts may interleave
            for index, candidate in enumerate(opened):
                if candidate is span:
                    del opened[index]
                    break
        if stages is not None and span.parent_id is None:
            name = span.name
            stages[name] = stages.get(name, 0.0) + duration
        return duration

    def close_open(self, status: str) -> None:
        """Ends the spans a request left open (it was cancelled or failed inside them)."""
        if not self._open:
            return
        for span in list(self._open):
            if span.status == "ok":
                span.status = status
            self.end(span)
