"""The circuit breaker state machine, in process and in Redis: the same scenarios, driven by a
clock the test moves, against both backends (Redis: a real redis-server)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from clocks import Clock
from redis.asyncio import Redis

from floopy.pipeline.dispatch.breaker import BreakerEvent, Breakers, NoBreakers, build_breakers
from floopy.pipeline.dispatch.breaker.memory import InProcessBreakers
from floopy.pipeline.dispatch.breaker.redis import RedisBreakers
from floopy.settings import CircuitBreakerConfig

CONFIG = CircuitBreakerConfig(
    failures=3, failure_ratio=0.5, min_requests=6, window=10.0, cooldown=5.0
)
P, M = "prov", "model-a"

Scenario = Callable[[Breakers, Clock, list[BreakerEvent]], Awaitable[None]]
Drive = Callable[..., None]


@pytest.fixture(params=["memory", "redis"])
def drive(request: pytest.FixtureRequest) -> Drive:
    """Runs a scenario against one backend, with a fresh clock and event list."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def run(scenario: Scenario, config: CircuitBreakerConfig = CONFIG) -> None:
        async def main() -> None:
            clock, events = Clock(), []
            redis = None
            breakers: Breakers
            if url is not None:
                redis = Redis.from_url(url)
                await redis.flushdb()
                breakers = RedisBreakers(redis, config, events.append, clock)
            else:
                breakers = InProcessBreakers(config, events.append, clock)
            try:
                await scenario(breakers, clock, events)
            finally:
                if redis is not None:
                    await redis.aclose()

        asyncio.run(main())

    return run


async def fail(breakers: Breakers, times: int = 1, error: str = "HTTP 500") -> None:
    for _ in range(times):
        await breakers.record(P, M, ok=False, error=error)


async def succeed(breakers: Breakers, times: int = 1) -> None:
    for _ in range(times):
        await breakers.record(P, M, ok=True)


def transitions(events: list[BreakerEvent]) -> list[tuple[str, str]]:
    return [(event.from_state, event.to_state) for event in events]


def test_opens_after_consecutive_failures(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        await fail(breakers, 2)
        assert await breakers.allow(P, M)
        assert events == []
        await fail(breakers, error="mock: HTTP 503")
        assert not await breakers.allow(P, M)
        assert transitions(events) == [("closed", "open")]
        event = events[0]
        assert (event.provider, event.model, event.time) == (P, M, clock.now)
        assert event.reason == "3 failures in a row (last: mock: HTTP 503)"
        assert await breakers.allow(P, "model-b"), "another model of the provider is not affected"

    drive(scenario)


def test_a_success_resets_the_run_of_failures(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        await fail(breakers, 2)
        await succeed(breakers)
        await fail(breakers, 2)
        assert await breakers.allow(P, M)
        assert events == []

    drive(scenario)


def test_opens_on_failure_ratio_once_the_window_holds_enough_calls(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        for _ in range(2):
            await succeed(breakers)
            await fail(breakers)
        assert await breakers.allow(P, M), "2 of 4 failed, but 6 calls are needed"
        await succeed(breakers)
        await fail(breakers)
        assert not await breakers.allow(P, M)
        assert transitions(events) == [("closed", "open")]
        assert events[0].reason.startswith("3 of the last 6 calls failed within 10s")

    drive(scenario)


def test_calls_older_than_the_window_do_not_count(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        for _ in range(2):
            await succeed(breakers)
            await fail(breakers)
        await succeed(breakers)
        clock.advance(12.0)  # past the window and its current bucket
        await fail(breakers)
        assert await breakers.allow(P, M)
        assert events == []

    drive(scenario)


def test_half_open_lets_one_probe_through_after_the_cooldown_and_closes(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        await fail(breakers, 3)
        clock.advance(4.9)
        assert not await breakers.allow(P, M)
        clock.advance(0.1)
        assert await breakers.allow(P, M), "the probe"
        assert not await breakers.allow(P, M), "only one probe at a time"
        assert transitions(events) == [("closed", "open"), ("open", "half_open")]
        await succeed(breakers)
        assert transitions(events)[-1] == ("half_open", "closed")
        assert events[-1].reason == "probe succeeded"
        assert await breakers.allow(P, M)
        await fail(breakers, 2)
        assert await breakers.allow(P, M), "closing starts a fresh count"

    drive(scenario)


def test_a_failed_probe_opens_again_for_another_cooldown(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        await fail(breakers, 3)
        clock.advance(5.0)
        assert await breakers.allow(P, M)
        await fail(breakers, error="still down")
        assert transitions(events)[-1] == ("half_open", "open")
        assert events[-1].reason == "probe failed (last: still down)"
        clock.advance(4.0)
        assert not await breakers.allow(P, M)
        clock.advance(1.0)
        assert await breakers.allow(P, M)

    drive(scenario)


def test_a_lost_probe_is_replaced_after_the_cooldown(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        await fail(breakers, 3)
        clock.advance(5.0)
        assert await breakers.allow(P, M)  # this probe never reports (its client left)
        clock.advance(4.0)
        assert not await breakers.allow(P, M)
        clock.advance(1.0)
        assert await breakers.allow(P, M)
        assert len(events) == 2, "no new event: still half-open"

    drive(scenario)


def test_outcomes_arriving_while_open_change_nothing(drive: Drive) -> None:
    async def scenario(breakers: Breakers, clock: Clock, events: list[BreakerEvent]) -> None:
        await fail(breakers, 3)
        await succeed(breakers)  # a call that started before the breaker opened
        await fail(breakers)
        assert not await breakers.allow(P, M)
        assert len(events) == 1

    drive(scenario)


def test_disabled_breakers_always_allow() -> None:
    events: list[Any] = []
    breakers = build_breakers(CircuitBreakerConfig(enabled=False), None, events.append)
    assert isinstance(breakers, NoBreakers)

    async def main() -> None:
        for _ in range(10):
            await breakers.record(P, M, ok=False)
        assert await breakers.allow(P, M)

    asyncio.run(main())
    assert events == []


def test_a_failing_event_sink_never_reaches_the_request(caplog: pytest.LogCaptureFixture) -> None:
    def broken_sink(event: BreakerEvent) -> None:
        raise RuntimeError("sink down")

    breakers = build_breakers(CircuitBreakerConfig(failures=1), None, broken_sink)

    async def main() -> None:
        await breakers.record(P, M, ok=False, error="boom")
        assert not await breakers.allow(P, M)

    asyncio.run(main())
    assert "circuit breaker prov/model-a: closed -> open" in caplog.text
    assert "circuit-breaker event sink failed" in caplog.text


def test_redis_down_lets_calls_through(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        breakers = RedisBreakers(redis, CONFIG, lambda event: None)
        await breakers.record(P, M, ok=False)
        assert await breakers.allow(P, M)
        await redis.aclose()

    asyncio.run(main())
    assert "Redis unavailable" in caplog.text
