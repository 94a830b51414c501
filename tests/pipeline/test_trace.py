"""The span API of the request context: stages, nesting, failures, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from floopy import errors
from floopy.context import RequestContext


def context() -> RequestContext:
    return RequestContext(request_id="req_1", method="POST", path="/v1/x", client_ip="::1")


def test_top_level_spans_are_stages_with_latency() -> None:
    ctx = context()
    with ctx.span("auth"):
        pass
    with (
        ctx.span("dispatch", targets=2) as dispatch,
        ctx.span("provider_attempt", provider="mock") as attempt,
    ):
        pass
    assert [s.name for s in ctx.trace.spans] == ["auth", "dispatch", "provider_attempt"]
    assert set(ctx.stages_ms) == {"auth", "dispatch"}
    assert dispatch.parent_id is None
    assert attempt.parent_id == dispatch.span_id
    assert attempt.attributes == {"provider": "mock"}
    assert dispatch.duration_ms is not None and dispatch.duration_ms >= attempt.duration_ms  # type: ignore[operator]


def test_an_error_marks_the_span_and_propagates() -> None:
    ctx = context()
    with pytest.raises(errors.InvalidApiKey), ctx.span("auth"):
        raise errors.InvalidApiKey("no key")
    span = ctx.trace.spans[0]
    assert span.status == "error"
    assert span.attributes["error"] == "INVALID_API_KEY"
    assert span.duration_ms is not None


def test_cancellation_is_not_an_error() -> None:
    ctx = context()

    async def cancelled() -> None:
        with ctx.span("respond"):
            await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(cancelled())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert ctx.trace.spans[0].status == "cancelled"


def test_explicit_parent_and_manual_spans() -> None:
    ctx = context()
    first = ctx.start_span("hedge", attempt=0)
    second = ctx.start_span("hedge", parent=None, attempt=1)
    assert second.parent_id == first.span_id  # opened inside the first
    third = ctx.start_span("other", parent=first)
    ctx.end_span(second)
    ctx.end_span(third)
    ctx.end_span(first)
    ctx.end_span(first)  # twice changes nothing
    assert ctx.stages_ms["hedge"] == first.duration_ms
    ctx.trace.close_open("cancelled")
    assert all(span.duration_ms is not None for span in ctx.trace.spans)
