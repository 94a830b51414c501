"""Dispatch with scripted providers: retries, backoff waits, Retry-After, the deadline,
fallbacks, the circuit breaker and a stream's outcome. No network, no real sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from clocks import Clock

from floopy import _native, errors
from floopy.context import RequestContext
from floopy.endpoints.chat import ChatCalls
from floopy.pipeline.dispatch import Dispatcher
from floopy.pipeline.dispatch.breaker.memory import InProcessBreakers
from floopy.pipeline.dispatch.retry import RetryPolicy
from floopy.pipeline.routing import Target
from floopy.pipeline.routing.latency import LatencyTracker
from floopy.providers.base import Call, Completion, Stream, StreamSummary, upstream_error
from floopy.settings import CircuitBreakerConfig

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
Outcome = Exception | str


class FakeStream:
    def __init__(self, pieces: list[bytes], error: str | None = None) -> None:
        self.first = b"data: first\n\n"
        self.summary = StreamSummary()
        self._pieces = pieces
        self._error = error
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece
        self.summary.error = self._error

    async def close(self) -> None:
        self.closed = True


class Scripted:
    """A provider answering each call with the next scripted outcome (the last repeats)."""

    kind = "fake"

    def __init__(self, name: str, *outcomes: Outcome, stream: FakeStream | None = None) -> None:
        self.name = name
        self.outcomes = list(outcomes)
        self.calls: list[Call] = []
        self._stream = stream

    def _next(self) -> str:
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def complete(self, call: Call) -> Completion:
        self.calls.append(call)
        return Completion(body=self._next().encode())

    async def stream(self, call: Call) -> FakeStream:
        self.calls.append(call)
        self._next()
        assert self._stream is not None
        return self._stream

    async def close(self) -> None:
        pass


class Harness:
    def __init__(
        self,
        *providers: Scripted,
        attempts: int = 2,
        deadline: float = 60.0,
        max_attempts: int = 100,
    ) -> None:
        self.clock = Clock()
        self.slept: list[float] = []
        self.events: list[Any] = []
        self.providers = {p.name: p for p in providers}
        self.breakers = InProcessBreakers(
            CircuitBreakerConfig(failures=3, cooldown=30.0), self.events.append, self.clock
        )
        self.latency = LatencyTracker(clock=self.clock)
        self.dispatcher = Dispatcher(
            self.providers,  # type: ignore[arg-type]
            breakers=self.breakers,
            latency=self.latency,
            retry=RetryPolicy(attempts=attempts, backoff=0.5, backoff_max=4.0, random=lambda: 0.0),
            deadline=deadline,
            max_attempts=max_attempts,
            sleep=self.sleep,
            clock=self.clock,
        )

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

    def complete(self, *targets: str) -> tuple[RequestContext, Completion]:
        ctx = context()
        chain = [Target(name.split("/")[0], name.split("/")[1], name) for name in targets]
        reply = asyncio.run(self.dispatcher.dispatch(ctx, chain, calls(ctx)))
        assert isinstance(reply, Completion)
        return ctx, reply

    def fails(self, *targets: str) -> errors.FloopyError:
        with pytest.raises(errors.FloopyError) as caught:
            self.complete(*targets)
        return caught.value


def calls(ctx: RequestContext) -> ChatCalls:
    assert ctx.chat is not None
    return ChatCalls(ctx.body, ctx.chat)


async def open_stream(h: Harness, ctx: RequestContext, targets: list[Target]) -> Stream:
    reply = await h.dispatcher.dispatch(ctx, targets, calls(ctx))
    assert not isinstance(reply, Completion)
    return reply  # type: ignore[return-value]


def context(stream: bool = False) -> RequestContext:
    ctx = RequestContext(request_id="req_test", method="POST", path="/", client_ip="127.0.0.1")
    body = BODY if not stream else BODY[:-1] + b', "stream": true}'
    ctx.body, ctx.chat = body, _native.RequestParser().parse(body)
    return ctx


def http(status: int, **headers: str) -> errors.FloopyError:
    return upstream_error("a", status, f"HTTP {status}", headers=headers)


def test_retriable_failure_is_retried_with_backoff_then_answers() -> None:
    a = Scripted("a", http(503), http(502), "fine")
    h = Harness(a)
    ctx, completion = h.complete("a/m")
    assert completion.body == b"fine"
    assert len(a.calls) == 3
    assert h.slept == [0.25, 0.5], "equal jitter at its low end: half of 0.5, then of 1.0"
    assert (ctx.provider, ctx.fallback_used) == ("a", False)


def test_client_error_is_neither_retried_nor_handed_over() -> None:
    a, b = Scripted("a", http(400)), Scripted("b", "never")
    h = Harness(a, b)
    error = h.fails("a/m", "b/m")
    assert error.status == 400
    assert (len(a.calls), len(b.calls), h.slept) == (1, 0, [])


def test_after_the_retries_the_next_target_answers() -> None:
    a, b = Scripted("a", http(500)), Scripted("b", "from b")
    h = Harness(a, b, attempts=2)
    ctx, completion = h.complete("a/m", "b/m")
    assert completion.body == b"from b"
    assert len(a.calls) == 3
    assert (ctx.provider, ctx.model, ctx.fallback_used) == ("b", "m", True)


def test_credentials_rejected_goes_to_the_next_target_without_retry() -> None:
    a, b = Scripted("a", http(401)), Scripted("b", "from b")
    h = Harness(a, b)
    assert h.complete("a/m", "b/m")[1].body == b"from b"
    assert len(a.calls) == 1


def test_retry_after_is_waited_for() -> None:
    a = Scripted("a", http(429, **{"retry-after-ms": "1200"}), "fine")
    h = Harness(a)
    assert h.complete("a/m")[1].body == b"fine"
    assert h.slept == [1.2]


def test_a_long_retry_after_moves_on_at_once() -> None:
    a, b = Scripted("a", http(429, **{"retry-after": "30"})), Scripted("b", "from b")
    h = Harness(a, b)
    assert h.complete("a/m", "b/m")[1].body == b"from b"
    assert (len(a.calls), h.slept) == (1, [])


def test_the_last_failure_keeps_its_status_and_retry_after() -> None:
    a = Scripted("a", http(429, **{"retry-after": "30"}))
    error = Harness(a).fails("a/m")
    assert error.status == 429 and error.headers["Retry-After"] == "30"


def test_no_retry_past_the_deadline() -> None:
    a = Scripted("a", http(503))
    h = Harness(a, attempts=10, deadline=1.0)
    h.fails("a/m")
    assert h.slept == [0.25, 0.5], "a third wait (1.0s) would end past the 1s deadline"


def test_all_targets_failing_names_each() -> None:
    a, b = Scripted("a", http(500)), Scripted("b", errors.GatewayTimeout("b: too slow"))
    error = Harness(a, b, attempts=0).fails("a/m", "b/m")
    assert error.status == 502
    assert "a/m: a: HTTP 500" in error.message and "b/m: b: too slow" in error.message


def test_only_timeouts_give_504() -> None:
    a = Scripted("a", errors.GatewayTimeout("a: too slow"))
    b = Scripted("b", errors.GatewayTimeout("b: too slow"))
    assert Harness(a, b, attempts=0).fails("a/m", "b/m").status == 504


def test_the_breaker_skips_an_open_target_without_an_attempt() -> None:
    a, b = Scripted("a", http(500)), Scripted("b", "from b")
    h = Harness(a, b, attempts=0)
    for _ in range(3):
        h.complete("a/m", "b/m")
    assert len(a.calls) == 3
    assert [(e.from_state, e.to_state) for e in h.events] == [("closed", "open")]
    ctx, completion = h.complete("a/m", "b/m")
    assert len(a.calls) == 3, "skipped"
    assert completion.body == b"from b" and ctx.fallback_used


def test_breaker_open_on_every_target_is_a_provider_error() -> None:
    a = Scripted("a", http(500))
    h = Harness(a, attempts=0)
    for _ in range(3):
        h.fails("a/m")
    error = h.fails("a/m")
    assert error.status == 502 and "circuit breaker is open" in error.message


def test_client_errors_count_as_the_provider_being_up() -> None:
    a = Scripted("a", http(500), http(500), http(400), http(500), http(500), "ok")
    h = Harness(a, attempts=0)
    for _ in range(5):
        h.fails("a/m")
    assert h.events == []


def test_a_stream_reports_its_outcome_when_it_ends() -> None:
    broken = FakeStream([b"data: 1\n\n"], error="a broke the stream")
    a = Scripted("a", "open", stream=broken)
    h = Harness(a)

    async def relay() -> list[bytes]:
        ctx = context(stream=True)
        stream = await open_stream(h, ctx, [Target("a", "m", "a/m")])
        pieces = [piece async for piece in stream]
        await stream.close()
        return pieces

    for _ in range(3):
        assert asyncio.run(relay()) == [b"data: 1\n\n"]
    assert [(e.from_state, e.to_state) for e in h.events] == [("closed", "open")]
    assert "a broke the stream" in h.events[0].reason


def test_a_stream_the_client_left_is_no_failure() -> None:
    a = Scripted("a", "open", stream=FakeStream([b"data: 1\n\n"] * 5))
    h = Harness(a)

    async def leave_early() -> None:
        stream = await open_stream(h, context(stream=True), [Target("a", "m", "a/m")])
        await stream.close()

    for _ in range(5):
        asyncio.run(leave_early())
    assert h.events == []


def test_latency_is_measured_per_target() -> None:
    class Slow(Scripted):
        async def complete(self, call: Call) -> Completion:
            h.clock.advance(0.3)
            return await super().complete(call)

    h = Harness(Slow("a", "ok"))
    h.latency.track("a", "m")
    h.complete("a/m")
    h.complete("a/m")
    assert h.latency.p50("a", "m") == pytest.approx(0.3)


def test_the_attempts_per_request_are_capped_across_targets() -> None:
    providers = [Scripted(name, http(503)) for name in "abcde"]
    h = Harness(*providers, attempts=2, max_attempts=4)
    failure = h.fails(*(f"{p.name}/m" for p in providers))
    # a: three attempts (two retries), b: the last one; c, d and e never called.
    assert [len(p.calls) for p in providers] == [3, 1, 0, 0, 0]
    assert "a/m" in failure.message and "b/m" in failure.message
    assert "c/m" not in failure.message
