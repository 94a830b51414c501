"""Circuit breakers per (provider, model) target: open targets are skipped without an
attempt. In process by default; shared through Redis when ``REDIS_URL`` is set, so every
gateway instance skips the same broken target. Each state change becomes a ``BreakerEvent``
for the circuit-breaker log sink (``Worker.on_breaker_event``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from floopy.pipeline.dispatch.breaker.memory import InProcessBreakers
from floopy.pipeline.dispatch.breaker.redis import RedisBreakers
from floopy.pipeline.dispatch.breaker.state import BreakerEvent, State

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from floopy.settings import CircuitBreakerConfig

__all__ = ["BreakerEvent", "Breakers", "NoBreakers", "State", "build_breakers"]

log = logging.getLogger("floopy")


class Breakers(Protocol):
    async def allow(self, provider: str, model: str) -> bool:
        """Whether a call may go to the target now (in half-open: the one probe)."""
        ...

    async def record(
        self, provider: str, model: str, *, ok: bool, error: str | None = None
    ) -> None:
        """The outcome of a call that ``allow`` let through."""
        ...

    async def close(self) -> None: ...


class NoBreakers:
    """``CIRCUIT_BREAKER = {"enabled": False}``: every target is always tried."""

    async def allow(self, provider: str, model: str) -> bool:
        return True

    async def record(
        self, provider: str, model: str, *, ok: bool, error: str | None = None
    ) -> None:
        pass

    async def close(self) -> None:
        pass


def build_breakers(
    config: CircuitBreakerConfig,
    redis: Redis | None,
    on_event: Callable[[BreakerEvent], None],
) -> Breakers:
    if not config.enabled:
        return NoBreakers()
    deliver = _logged(on_event)
    if redis is not None:
        return RedisBreakers(redis, config, deliver)
    return InProcessBreakers(config, deliver)


def _logged(on_event: Callable[[BreakerEvent], None]) -> Callable[[BreakerEvent], None]:
    """Writes each change to the server log too, and keeps a failing sink off the request."""

    def deliver(event: BreakerEvent) -> None:
        level = logging.INFO if event.to_state == State.CLOSED else logging.WARNING
        log.log(
            level,
            "circuit breaker %s/%s: %s -> %s: %s",
            event.provider,
            event.model,
            event.from_state,
            event.to_state,
            event.reason,
        )
        try:
            on_event(event)
        except Exception:
            log.exception("circuit-breaker event sink failed")

    return deliver
