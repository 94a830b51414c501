"""Trace spans of one request: one per stage, one per provider attempt, and any a stage adds.

A span has an id, its parent's id, a start, a duration and attributes. Ids are W3C Trace
Context's: a trace id is 32 hex digits (16 bytes), a span id 16 (8 bytes), neither all zeros,
so the log's spans and the ones exported over OpenTelemetry are the same. The request itself is
the root: spans opened while no other is open are its children (the stages), spans opened
inside another become that one's children unless a parent is named. Times come from
``time.perf_counter``; the log turns them into wall-clock times against the request's start.
"""

from __future__ import annotations

import random

from floopy._native import Span, Trace

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


# A request's trace and its spans are native (``rust/py/src/trace.rs``): the pipeline opens
# and ends ten or so spans per request, each one native call. A span has ``name``,
# ``span_id``, ``parent_id`` (None: a child of the root), ``start`` (``time.perf_counter()``
# when it opened), ``duration_ms`` (None while open), ``status`` ("ok", "error" or
# "cancelled") and ``attributes``; ``set(**attributes)`` adds some, ``fail(exc)`` marks it
# failed with the error's code (a FloopyError) or its class name. A trace's span ids are one
# random 48-bit prefix and a counter (the root is 1).
__all__ = ["Attribute", "Span", "Trace", "new_span_id", "parse_traceparent", "traceparent"]
