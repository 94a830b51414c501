"""Circuit breakers kept in this worker process: the default, right for one instance."""

from __future__ import annotations

import time
from collections.abc import Callable

from floopy.pipeline.dispatch.breaker.state import BreakerEvent, Change, Circuit
from floopy.settings import CircuitBreakerConfig

# Targets come from client-chosen model names too: past this many breakers, closed ones
# with nothing against them are forgotten, so memory stays bounded.
MAX_CIRCUITS = 10_000


class InProcessBreakers:
    def __init__(
        self,
        config: CircuitBreakerConfig,
        on_event: Callable[[BreakerEvent], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._clock = clock
        self._circuits: dict[tuple[str, str], Circuit] = {}

    async def allow(self, provider: str, model: str) -> bool:
        circuit = self._circuits.get((provider, model))
        if circuit is None:
            return True
        now = self._clock()
        allowed, change = circuit.allow(now)
        self._emit(provider, model, change, now)
        return allowed

    async def record(
        self, provider: str, model: str, *, ok: bool, error: str | None = None
    ) -> None:
        circuit = self._circuits.get((provider, model))
        if circuit is None:
            circuit = self._circuits[(provider, model)] = Circuit(self._config)
            self._forget_idle()
        now = self._clock()
        self._emit(provider, model, circuit.record(ok, now, error), now)

    def state(self, provider: str, model: str) -> str:
        circuit = self._circuits.get((provider, model))
        return "closed" if circuit is None else circuit.state.value

    async def close(self) -> None:
        pass

    def _emit(self, provider: str, model: str, change: Change | None, now: float) -> None:
        if change is not None:
            self._on_event(change.event(provider, model, now))

    def _forget_idle(self) -> None:
        if len(self._circuits) <= MAX_CIRCUITS:
            return
        for key in [key for key, circuit in self._circuits.items() if circuit.idle]:
            del self._circuits[key]
