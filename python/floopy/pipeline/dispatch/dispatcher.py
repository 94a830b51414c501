"""The dispatcher: call the targets in order until one answers.

For each target, in the order routing chose:

1. an open circuit breaker skips it without an attempt;
2. an attempt; a retriable failure (``retry.is_retriable``: unreachable, timed out, 408,
   409, 429, 5xx) is retried after a backoff with jitter, or after the provider's
   Retry-After, while retries are left and the request's deadline allows;
3. a failure another provider might not have (``retry.falls_back``) hands over to the next
   target; a request the provider rejected as malformed goes back to the client at once,
   since every provider would reject it too.

Each attempt asks the target's provider for the operation the request needs (chat, messages
or embeddings: ``providers.operations``). Its outcome goes to the target's circuit breaker and
its latency to the latency tracker; the context names the last target tried, so an error
answer says which provider failed. Streams are handed over only before their first event,
which is why providers return a stream only once its first event has arrived; a stream's
outcome reaches the breaker when it ends, so a stream that breaks half-way counts as the
failure it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, NoReturn

from floopy import errors
from floopy.pipeline.dispatch.breaker import Breakers, NoBreakers
from floopy.pipeline.dispatch.retry import (
    Attempts,
    Deadline,
    Expiry,
    RetryPolicy,
    falls_back,
    is_retriable,
)
from floopy.pipeline.routing.latency import LatencyTracker
from floopy.providers.operations import Operations, Reply, Whole
from floopy.scrub import SecretScrubber
from floopy.settings import defaults

if TYPE_CHECKING:
    from floopy.context import RequestContext
    from floopy.pipeline.exchange import ProviderRequest
    from floopy.pipeline.routing.target import Target
    from floopy.providers.base import Provider, Stream

NO_RETRIES = RetryPolicy(attempts=0, backoff=0.0, backoff_max=0.0)


class Dispatcher:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        breakers: Breakers | None = None,
        latency: LatencyTracker | None = None,
        retry: RetryPolicy = NO_RETRIES,
        deadline: float = defaults.UPSTREAM_DEADLINE,
        max_attempts: int = defaults.MAX_ATTEMPTS_PER_REQUEST,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        secrets: SecretScrubber | None = None,
    ) -> None:
        self._secrets = secrets or SecretScrubber()
        self._operations = {name: Operations(provider) for name, provider in providers.items()}
        self._breakers = breakers or NoBreakers()
        self._latency = latency or LatencyTracker()
        self._retry = retry
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._clock = clock

    async def dispatch(
        self, ctx: RequestContext, targets: list[Target], request: ProviderRequest
    ) -> Reply:
        """The first target's answer: whole, or a stream whose first event has arrived (its
        outcome reaches the breaker when it ends)."""
        deadline = Deadline(self._deadline, self._clock)
        attempts = Attempts(self._max_attempts)
        failures: list[tuple[Target, errors.FloopyError]] = []
        for position, target in enumerate(targets):
            if attempts.left <= 0:
                break
            if not await self._breakers.allow(target.provider, target.model):
                failures.append((target, _circuit_open(target)))
                continue
            ctx.provider, ctx.model = target.provider, target.model
            ctx.fallback_used = position > 0
            try:
                reply = await self._with_retries(ctx, target, request, deadline, attempts)
            except errors.FloopyError as exc:
                if not falls_back(exc):
                    raise
                failures.append((target, exc))
                if deadline.remaining() <= 0:
                    break
                continue
            if not request.stream or isinstance(reply, Whole):
                return reply
            return self._settled(target, reply)
        raise _all_failed(failures)

    def _settled(self, target: Target, stream: Stream) -> SettledStream:
        """A stream whose outcome reaches the target's breaker once it ended."""
        provider, model = target.provider, target.model

        async def settle(error: str | None) -> None:
            await self._breakers.record(provider, model, ok=error is None, error=error)

        return SettledStream(stream, settle)

    async def _with_retries(
        self,
        ctx: RequestContext,
        target: Target,
        request: ProviderRequest,
        deadline: Deadline,
        attempts: Attempts,
    ) -> Reply:
        retry = 0
        while True:
            attempts.take()
            try:
                return await self._once(ctx, target, request, deadline, retry)
            except errors.FloopyError as exc:
                wait = self._retry_wait(exc, retry, deadline)
                if wait is None or attempts.left <= 0:
                    raise
                failure = exc
            await self._sleep(wait)
            # Another request may have opened the breaker meanwhile: then stop here.
            if not await self._breakers.allow(target.provider, target.model):
                raise failure
            retry += 1

    def _retry_wait(self, exc: errors.FloopyError, retry: int, deadline: Deadline) -> float | None:
        """Seconds to wait before retrying after ``exc``, or None for no retry."""
        if retry >= self._retry.attempts or not is_retriable(exc):
            return None
        wait = self._retry.delay(retry, exc.retry_after)
        if wait is None or not deadline.allows(wait):
            return None
        return wait

    async def _once(
        self,
        ctx: RequestContext,
        target: Target,
        request: ProviderRequest,
        deadline: Deadline,
        retry: int,
    ) -> Reply:
        """One attempt. Its success counts for the breaker now, unless it is a stream,
        whose outcome is known when it ends."""
        operations = self._operations[target.provider]
        started = self._clock()
        # ctx.span's work without a generator's: this runs for every attempt.
        span = ctx.start_span(
            "provider_attempt", provider=target.provider, model=target.model, attempt=retry
        )
        try:
            try:
                with Expiry(deadline.remaining()):
                    reply = await operations.send(request.call(target), stream=request.stream)
            except TimeoutError:
                await self._failed(target, _deadline_passed(target))
            except errors.FloopyError as exc:
                # A provider may quote the key it was sent: never past this point.
                exc.message = self._secrets.scrub(exc.message)
                await self._failed(target, exc)
        except BaseException as exc:
            span.fail(exc)
            raise
        finally:
            ctx.end_span(span)
        self._latency.observe(target.provider, target.model, self._clock() - started)
        if not request.stream:
            await self._breakers.record(target.provider, target.model, ok=True)
        return reply

    async def _failed(self, target: Target, exc: errors.FloopyError) -> NoReturn:
        """Counts the failure against the target, then raises it. A request the provider
        rejected as malformed shows the provider is up: a success for its breaker."""
        provider, model = target.provider, target.model
        if falls_back(exc):
            self._latency.observe(provider, model, None)
            await self._breakers.record(provider, model, ok=False, error=exc.message)
        else:
            await self._breakers.record(provider, model, ok=True)
        raise exc


class SettledStream:
    """A provider's stream that reports its outcome once it ended, cut short or not (a
    client that went away is no failure of the provider's)."""

    def __init__(self, inner: Stream, settle: Callable[[str | None], Awaitable[None]]) -> None:
        self.first = inner.first
        self.summary = inner.summary  # the same object, filled in by the inner stream
        self._inner = inner
        self._settle = settle
        self._settled = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            yield piece
        await self._finish()

    async def close(self) -> None:
        await self._inner.close()
        await self._finish()

    async def _finish(self) -> None:
        if not self._settled:
            self._settled = True
            await self._settle(self.summary.error)


def _circuit_open(target: Target) -> errors.ProviderError:
    return errors.ProviderError(
        f"{target.provider}/{target.model}: skipped, its circuit breaker is open "
        "after repeated failures"
    )


def _deadline_passed(target: Target) -> errors.GatewayTimeout:
    return errors.GatewayTimeout(
        f"{target.provider} did not answer within the request's deadline (UPSTREAM_DEADLINE)"
    )


def _all_failed(failures: list[tuple[Target, errors.FloopyError]]) -> errors.FloopyError:
    if len(failures) == 1:
        return failures[0][1]
    tried = "; ".join(f"{t.provider}/{t.model}: {f.message}" for t, f in failures)
    message = f"all {len(failures)} targets failed: {tried}"
    if all(isinstance(f, errors.GatewayTimeout) for _, f in failures):
        return errors.GatewayTimeout(message)
    return errors.ProviderError(message)
