"""The ``RATE_LIMITS`` policies per API key, organization, project and
end user, on requests and on tokens per sliding window.

Requests are counted when they are let through, before dispatch; a request refused by any
policy counts against none. Tokens are known only once the answer is complete, so a request
is let through while its token budgets are not used up, and its prompt and completion tokens
are counted after the response: the request that crosses a token limit completes, and the
next one is refused until enough tokens leave the window.

Counters live in process by default, or in Redis (atomic Lua scripts) when ``REDIS_URL`` is
set, so that every gateway instance spends the same budgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from floopy import errors
from floopy.pipeline.ratelimit.budget import Budget, Kind, Usage, Verdict
from floopy.pipeline.ratelimit.memory import InProcessCounters
from floopy.pipeline.ratelimit.redis import RedisCounters

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from floopy.settings import RateLimitPolicy

__all__ = ["Budget", "Counters", "RateLimiter", "Subjects", "Usage", "Verdict", "build_limiter"]


class Counters(Protocol):
    async def acquire(self, budgets: Sequence[Budget], request_id: str) -> Verdict: ...
    async def add_tokens(self, budgets: Sequence[Budget], tokens: int, request_id: str) -> None: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Subjects:
    """Who a request is from, as the policies' scopes see it (None: not known)."""

    key: str | None
    organization: str | None
    project: str | None
    user: str | None

    def of(self, scope: str) -> str | None:
        value: str | None = getattr(self, scope)
        return value


class RateLimiter:
    def __init__(self, policies: Sequence[RateLimitPolicy], counters: Counters) -> None:
        self._policies = tuple(enumerate(policies))
        self._counters = counters

    @property
    def enabled(self) -> bool:
        return bool(self._policies)

    async def admit(self, subjects: Subjects, request_id: str) -> dict[str, str]:
        """Counts the request against its budgets and returns the RateLimit-* headers for
        the response; raises RateLimitExceeded (with those headers) when one is used up."""
        budgets = self.budgets(subjects)
        if not budgets:
            return {}
        verdict = await self._counters.acquire(budgets, request_id)
        headers = verdict.headers()
        if verdict.denied_by is not None:
            raise errors.RateLimitExceeded(
                f"rate limit exceeded: {verdict.denied_by.limit} "
                f"{verdict.denied_by.kind} ({verdict.denied_by.label}); retry in "
                f"{headers['Retry-After']}s",
                retry_after=verdict.retry_after,
                headers=headers,
            )
        return headers

    async def spend_tokens(self, subjects: Subjects, tokens: int, request_id: str) -> None:
        """Counts a finished request's tokens against its token budgets."""
        budgets = self.budgets(subjects, kinds=("tokens",))
        if budgets and tokens > 0:
            await self._counters.add_tokens(budgets, tokens, request_id)

    def budgets(
        self, subjects: Subjects, kinds: Sequence[Kind] = ("requests", "tokens")
    ) -> list[Budget]:
        budgets = []
        for index, policy in self._policies:
            subject = subjects.of(policy.scope)
            if subject is None or (policy.match is not None and subject != policy.match):
                continue
            for kind in kinds:
                limit = policy.requests if kind == "requests" else policy.tokens
                if limit is not None:
                    key = f"{index}:{kind}:{policy.scope}:{subject}"
                    budgets.append(Budget(key, kind, limit, policy.window, policy.label))
        return budgets

    async def close(self) -> None:
        await self._counters.close()


def build_limiter(policies: Sequence[RateLimitPolicy], redis: Redis | None) -> RateLimiter:
    counters: Counters = RedisCounters(redis) if redis is not None else InProcessCounters()
    return RateLimiter(policies, counters)
