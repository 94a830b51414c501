"""The native trace and its spans (rust/py/src/trace.rs), as the pipeline and the log use
them: ids, parents, ends, failures and the fields that never change."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from floopy import errors
from floopy.trace import Span, Trace


def test_span_ids_share_the_trace_prefix_and_count_from_the_root() -> None:
    trace = Trace()
    first, second = trace.start("auth", None, {}), trace.start("parse", None, {})
    assert re.fullmatch(r"[0-9a-f]{12}0001", trace.root_id)
    assert first.span_id == trace.root_id[:12] + "0002"
    assert second.span_id == trace.root_id[:12] + "0003"
    assert Trace().root_id[:12] != trace.root_id[:12]  # 48 random bits per trace


def test_a_span_opened_inside_another_is_its_child_unless_a_parent_is_named() -> None:
    trace = Trace()
    stage = trace.start("dispatch", None, {})
    attempt = trace.start("provider_attempt", None, {"attempt": 0})
    named = trace.start("exact", stage, {})
    assert stage.parent_id is None
    assert attempt.parent_id == stage.span_id
    assert named.parent_id == stage.span_id
    assert trace.spans == [stage, attempt, named]


def test_end_closes_once_and_adds_a_stage_to_the_stages() -> None:
    trace, stages = Trace(), {"auth": 1.0}
    stage = trace.start("auth", None, {})
    assert stage.duration_ms is None and stage.status == "ok"
    duration = trace.end(stage, stages)
    assert duration is not None and duration >= 0.0
    assert stage.duration_ms == duration
    assert stages["auth"] == pytest.approx(1.0 + duration)
    assert trace.end(stage, stages) is None  # closed already: nothing added
    assert stages["auth"] == pytest.approx(1.0 + duration)
    child = trace.start("provider_attempt", trace.start("dispatch", None, {}), {})
    trace.end(child, stages)
    assert "provider_attempt" not in stages  # only the root's children are stages


def test_fail_records_the_code_or_the_class_and_a_cancellation() -> None:
    trace = Trace()
    refused, broken, gone = (trace.start(name, None, {}) for name in ("a", "b", "c"))
    refused.fail(errors.InvalidApiKey("x" * 600))
    assert refused.status == "error"
    assert refused.attributes["error"] == errors.InvalidApiKey("").code
    assert refused.attributes["error.message"] == "x" * 500
    broken.fail(KeyError("k"))
    assert (broken.status, broken.attributes) == ("error", {"error": "KeyError"})
    gone.fail(asyncio.CancelledError())
    assert (gone.status, gone.attributes) == ("cancelled", {})


def test_close_open_ends_what_is_open_and_keeps_a_failed_status() -> None:
    trace = Trace()
    done = trace.start("auth", None, {})
    trace.end(done)
    failed = trace.start("dispatch", None, {})
    failed.fail(errors.ProviderError("down"))
    waiting = trace.start("provider_attempt", None, {})
    trace.close_open("cancelled")
    assert (done.status, failed.status, waiting.status) == ("ok", "error", "cancelled")
    assert all(span.duration_ms is not None for span in trace.spans)
    trace.close_open("cancelled")  # nothing left open: a no-op


def test_set_adds_attributes_and_the_fixed_fields_are_read_only() -> None:
    span = Trace().start("dispatch", None, {"targets": 1})
    span.set(stream=False, targets=2)
    assert span.attributes == {"targets": 2, "stream": False}
    with pytest.raises(AttributeError):
        span.name = "other"


def test_a_span_built_directly_takes_the_old_dataclass_arguments() -> None:
    span = Span("auth", "00000000000a0002", None, 1.5)
    assert (span.name, span.parent_id, span.start, span.duration_ms) == ("auth", None, 1.5, None)
    assert (span.status, span.attributes) == ("ok", {})
    closed = Span("x", "y", "z", 1.0, 2.0, "error", {"k": "v"})
    assert (closed.parent_id, closed.duration_ms, closed.status) == ("z", 2.0, "error")
    assert closed.attributes == {"k": "v"}


def test_spans_are_timed_on_the_clock_of_time_perf_counter() -> None:
    trace = Trace()
    before = time.perf_counter()
    span = trace.start("auth", None, {})
    time.sleep(0.002)
    duration = trace.end(span)
    after = time.perf_counter()
    assert before <= span.start <= after
    assert duration is not None and 2.0 <= duration <= (after - before) * 1000


def test_span_ids_count_in_four_hex_digits_and_wrap() -> None:
    trace = Trace()
    prefix = trace.root_id[:12]
    ids = [trace.start("s", None, {}).span_id for _ in range(0xFFFF + 1)]
    assert ids[0] == prefix + "0002" and ids[8] == prefix + "000a" and ids[0xEE] == prefix + "00f0"
    assert ids[0xFFFD] == prefix + "ffff" and ids[0xFFFE] == prefix + "0000"


def test_a_status_is_set_by_failing_or_closing_never_written_directly() -> None:
    trace = Trace()
    failed, cancelled, open_one = (trace.start(name, None, {}) for name in ("a", "b", "c"))
    failed.fail(errors.ProviderError("down"))
    cancelled.fail(asyncio.CancelledError())
    trace.close_open("cancelled")  # an open span not failed yet takes the status
    assert (failed.status, cancelled.status, open_one.status) == ("error", "cancelled", "cancelled")
    assert trace.any_status("error") and not trace.any_status("ok")
    with pytest.raises(AttributeError):
        failed.status = "ok"  # type: ignore[misc]
    with pytest.raises(ValueError, match="ok, error or cancelled"):
        Span("x", "y", None, 1.0, None, "fine")
