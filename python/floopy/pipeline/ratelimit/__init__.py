"""Stage: rate limit. The request against its ``RATE_LIMITS`` budgets (``limiter``), in
process (``memory``) or shared through Redis (``redis``).

Reads the key, organization, project and end user; sets ``ctx.user_id`` (``floopy-user-id``,
else the body's user) and ``ctx.rate_limit_headers``. Answers early with 429 and
``Retry-After``. Once the response is complete, ``spend_tokens`` counts its tokens.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from floopy.pipeline.ratelimit.limiter import Counters, RateLimiter, Subjects, build_limiter

if TYPE_CHECKING:
    from floopy.context import RequestContext
    from floopy.pipeline.exchange import Exchange

__all__ = ["Counters", "RateLimiter", "Subjects", "build_limiter", "spend_tokens"]


def run(exchange: Exchange) -> Awaitable[None] | None:
    ctx, limiter = exchange.ctx, exchange.worker.limiter
    assert ctx.headers is not None, "runs after auth"
    ctx.user_id = ctx.headers.user_id or exchange.parsed().user
    return _admit(ctx, limiter) if limiter.enabled else None


async def _admit(ctx: RequestContext, limiter: RateLimiter) -> None:
    ctx.rate_limit_headers = await limiter.admit(_subjects(ctx), ctx.request_id)


def spend_tokens(exchange: Exchange) -> Awaitable[None] | None:
    """Counts the finished request's prompt and completion tokens against its budgets."""
    ctx, limiter = exchange.ctx, exchange.worker.limiter
    if limiter.enabled and ctx.usage is not None:
        tokens = ctx.usage.prompt_tokens + ctx.usage.completion_tokens
        return limiter.spend_tokens(_subjects(ctx), tokens, ctx.request_id)
    return None


def _subjects(ctx: RequestContext) -> Subjects:
    return Subjects(
        key=ctx.key.id if ctx.key is not None else None,
        organization=ctx.organization,
        project=ctx.project,
        user=ctx.user_id,
    )
