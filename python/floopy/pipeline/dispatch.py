"""Stage 7, dispatch: call the targets in order until one answers.

A target that fails in a way another provider might not (unreachable, timed out, rate
limited, 5xx) hands over to the next; a request the provider rejected as malformed does not,
since every provider would reject it too. Streams are handed over only before their first
event, which is why providers return a stream only once its first event has arrived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from floopy import errors
from floopy.pipeline.context import RequestContext
from floopy.pipeline.routing import Target
from floopy.providers.base import Call, Completion, Provider, Stream

T = TypeVar("T")

_FALL_BACK_ON = (errors.ProviderError, errors.GatewayTimeout, errors.RateLimitExceeded)


class Dispatcher:
    def __init__(self, providers: dict[str, Provider]) -> None:
        self._providers = providers

    async def complete(self, ctx: RequestContext, targets: list[Target]) -> Completion:
        return await self._first_success(ctx, targets, lambda p, c: p.complete(c))

    async def stream(self, ctx: RequestContext, targets: list[Target]) -> Stream:
        return await self._first_success(ctx, targets, lambda p, c: p.stream(c))

    async def _first_success(
        self,
        ctx: RequestContext,
        targets: list[Target],
        attempt: Callable[[Provider, Call], Awaitable[T]],
    ) -> T:
        failures: list[errors.FloopyError] = []
        for position, target in enumerate(targets):
            provider = self._providers[target.provider]
            try:
                result = await attempt(provider, self._call(ctx, target))
            except _FALL_BACK_ON as exc:
                failures.append(exc)
                continue
            ctx.provider, ctx.model = target.provider, target.model
            ctx.fallback_used = position > 0
            return result
        raise _all_failed(failures, targets)

    @staticmethod
    def _call(ctx: RequestContext, target: Target) -> Call:
        chat = ctx.chat
        assert chat is not None, "dispatch runs after parse"
        return Call(
            body=ctx.body,
            model=target.model,
            requested_model=chat.model,
            stream=chat.stream,
            include_usage=chat.include_usage,
            user_text=chat.last_user_text,
        )


def _all_failed(failures: list[errors.FloopyError], targets: list[Target]) -> errors.FloopyError:
    if len(failures) == 1:
        return failures[0]
    tried = "; ".join(
        f"{t.provider}/{t.model}: {f.message}" for t, f in zip(targets, failures, strict=True)
    )
    return errors.ProviderError(f"all {len(targets)} targets failed: {tried}")
