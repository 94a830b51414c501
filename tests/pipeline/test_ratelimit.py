"""Rate limits: exact sliding windows at their boundaries, requests and tokens, several
policies at once, the headers; in process and in Redis, with a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from clocks import Clock
from redis.asyncio import Redis

from floopy import errors
from floopy.pipeline.ratelimit import RateLimiter, Subjects
from floopy.pipeline.ratelimit.memory import InProcessCounters
from floopy.pipeline.ratelimit.redis import RedisCounters
from floopy.settings import RateLimitPolicy

ALICE = Subjects(key="k1", organization="acme", project="web", user="alice")
BOB = Subjects(key="k1", organization="acme", project="web", user="bob")

Scenario = Callable[[Callable[..., RateLimiter], Clock], Awaitable[None]]
Drive = Callable[[Scenario], None]


@pytest.fixture(params=["memory", "redis"])
def drive(request: pytest.FixtureRequest) -> Drive:
    """Runs a scenario with a factory of limiters over one backend and a fresh clock."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            clock = Clock()
            redis = Redis.from_url(url) if url is not None else None
            if redis is not None:
                await redis.flushdb()

            def limiter(*policies: RateLimitPolicy) -> RateLimiter:
                counters = (
                    RedisCounters(redis, clock) if redis is not None else InProcessCounters(clock)
                )
                return RateLimiter(policies, counters)

            try:
                await scenario(limiter, clock)
            finally:
                if redis is not None:
                    await redis.aclose()

        asyncio.run(main())

    return run


async def refused(
    limiter: RateLimiter, subjects: Subjects, request_id: str = "r"
) -> dict[str, str]:
    with pytest.raises(errors.RateLimitExceeded) as caught:
        await limiter.admit(subjects, request_id)
    assert caught.value.status == 429 and caught.value.code == "RATE_LIMIT_EXCEEDED"
    return caught.value.headers


def test_requests_are_refused_exactly_at_the_limit_until_the_window_slides(drive: Drive) -> None:
    async def scenario(make: Callable[..., RateLimiter], clock: Clock) -> None:
        limiter = make(RateLimitPolicy(scope="user", requests=3, window=10))
        remaining = []
        for n in range(3):
            headers = await limiter.admit(ALICE, f"r{n}")
            remaining.append(headers["RateLimit-Remaining"])
            assert headers["RateLimit-Limit"] == "3"
            clock.advance(1)
        assert remaining == ["2", "1", "0"]
        headers = await refused(limiter, ALICE)  # t = 3: the first use leaves at t = 10
        assert headers == {
            "RateLimit-Limit": "3",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": "7",
            "Retry-After": "7",
        }
        clock.advance(6.999)
        assert (await refused(limiter, ALICE))["Retry-After"] == "1"
        clock.advance(0.001)  # t = 10: exactly one window after the first use
        assert (await limiter.admit(ALICE, "r3"))["RateLimit-Remaining"] == "0"
        await refused(limiter, ALICE)
        assert (await limiter.admit(BOB, "r4"))["RateLimit-Remaining"] == "2", "own budget"

    drive(scenario)


def test_a_refused_request_counts_against_no_budget(drive: Drive) -> None:
    async def scenario(make: Callable[..., RateLimiter], clock: Clock) -> None:
        limiter = make(
            RateLimitPolicy(scope="key", requests=5, window=60),
            RateLimitPolicy(scope="user", requests=1, window=60),
        )
        await limiter.admit(ALICE, "r1")
        for n in range(3):
            await refused(limiter, ALICE, f"x{n}")
        headers = await limiter.admit(BOB, "r2")
        # Bob's own budget is the tightest (0 left); the key's has 3 left: only 2 counted.
        assert headers["RateLimit-Remaining"] == "0"
        used = await limiter.admit(Subjects("k1", "acme", "web", None), "r3")
        assert used["RateLimit-Remaining"] == "2"

    drive(scenario)


def test_tokens_are_counted_after_the_response(drive: Drive) -> None:
    async def scenario(make: Callable[..., RateLimiter], clock: Clock) -> None:
        limiter = make(RateLimitPolicy(scope="project", tokens=100, window=10))
        assert (await limiter.admit(ALICE, "r1"))["RateLimit-Remaining"] == "100"
        await limiter.spend_tokens(ALICE, 60, "r1")
        clock.advance(2)
        assert (await limiter.admit(ALICE, "r2"))["RateLimit-Remaining"] == "40"
        await limiter.spend_tokens(ALICE, 60, "r2")  # crosses the limit: that one completes
        headers = await refused(limiter, ALICE)
        assert headers["RateLimit-Limit"] == "100"
        assert headers["Retry-After"] == "8", "once r1's 60 tokens leave, 60 < 100"
        clock.advance(8)
        assert (await limiter.admit(ALICE, "r3"))["RateLimit-Remaining"] == "40"

    drive(scenario)


def test_policies_apply_to_their_scope_and_match(drive: Drive) -> None:
    async def scenario(make: Callable[..., RateLimiter], clock: Clock) -> None:
        limiter = make(
            RateLimitPolicy(scope="organization", match="globex", requests=1, window=60),
            RateLimitPolicy(scope="project", match="web", requests=2, window=60),
        )
        other = Subjects("k2", "acme", "batch", None)
        for n in range(5):
            assert await limiter.admit(other, f"o{n}") == {}, "no policy applies"
        await limiter.admit(ALICE, "a1")
        await limiter.admit(BOB, "b1")
        await refused(limiter, ALICE)  # one project budget for both users
        globex = Subjects("k3", "globex", None, None)
        await limiter.admit(globex, "g1")
        await refused(limiter, globex)

    drive(scenario)


def test_no_subject_no_budget() -> None:
    limiter = RateLimiter(
        [RateLimitPolicy(scope="user", requests=1, window=60)], InProcessCounters()
    )
    anonymous = Subjects("k1", "acme", None, None)

    async def main() -> None:
        for n in range(3):
            assert await limiter.admit(anonymous, f"r{n}") == {}

    asyncio.run(main())


def test_policy_needs_requests_or_tokens() -> None:
    with pytest.raises(ValueError, match="needs `requests`, `tokens` or both"):
        RateLimitPolicy(scope="user", window=60)


def test_redis_down_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        limiter = RateLimiter(
            [RateLimitPolicy(scope="user", requests=1, window=60)], RedisCounters(redis)
        )
        for n in range(3):
            assert await limiter.admit(ALICE, f"r{n}") == {}
        await redis.aclose()

    asyncio.run(main())
    assert "Redis unavailable" in caplog.text


def test_idle_logs_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    from floopy.pipeline.ratelimit import memory

    monkeypatch.setattr(memory, "SWEEP_EVERY", 10)
    clock = Clock()
    counters = InProcessCounters(clock)
    limiter = RateLimiter([RateLimitPolicy(scope="user", requests=5, window=1)], counters)

    async def main() -> None:
        for n in range(9):
            await limiter.admit(Subjects(None, None, None, f"user{n}"), f"r{n}")
        clock.advance(2)
        await limiter.admit(Subjects(None, None, None, "last"), "r9")

    asyncio.run(main())
    assert list(counters._logs) == ["0:requests:user:last"]
