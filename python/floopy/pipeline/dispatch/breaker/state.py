"""The circuit breaker of one (provider, model) target, as a pure state machine.

closed     calls go through; each outcome is counted. ``failures`` failures in a row, or a
           failure ratio of at least ``failure_ratio`` over the last ``window`` seconds once
           that window holds ``min_requests`` calls, open the breaker.
open       the target is skipped without an attempt, for ``cooldown`` seconds.
half_open  one probe call goes through: its success closes the breaker, its failure opens it
           again for another cool-down. A probe that never reports (its request was
           cancelled) is replaced by another after ``cooldown``.

Times are plain seconds passed in by the caller, so tests drive the clock. The window counts
calls in buckets of ``window / BUCKETS`` seconds; the Redis backend keeps the same buckets.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from floopy.context import BreakerEvent
from floopy.settings import CircuitBreakerConfig

__all__ = ["BreakerEvent", "Change", "Circuit", "State"]

BUCKETS = 10  # the window is measured in this many buckets, plus the current one


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Change:
    from_state: State
    to_state: State
    reason: str

    def event(self, provider: str, model: str, time: float) -> BreakerEvent:
        return BreakerEvent(
            provider, model, self.from_state.value, self.to_state.value, self.reason, time
        )


def opened_by_failures(count: int, error: str | None) -> Change:
    return Change(State.CLOSED, State.OPEN, f"{count} failures in a row{_last(error)}")


def opened_by_ratio(failed: int, calls: int, window: float, error: str | None) -> Change:
    return Change(
        State.CLOSED,
        State.OPEN,
        f"{failed} of the last {calls} calls failed within {window:g}s{_last(error)}",
    )


def probing(cooldown: float) -> Change:
    return Change(State.OPEN, State.HALF_OPEN, f"cool-down of {cooldown:g}s over: one probe")


def probe_outcome(ok: bool, error: str | None) -> Change:
    if ok:
        return Change(State.HALF_OPEN, State.CLOSED, "probe succeeded")
    return Change(State.HALF_OPEN, State.OPEN, f"probe failed{_last(error)}")


def _last(error: str | None) -> str:
    return f" (last: {error})" if error else ""


def bucket_of(now: float, window: float) -> int:
    return math.floor(now / (window / BUCKETS))


class Circuit:
    """One target's breaker state. ``allow`` before a call, ``record`` its outcome after."""

    __slots__ = ("_buckets", "_config", "consecutive", "opened_at", "probe_until", "state")

    def __init__(self, config: CircuitBreakerConfig) -> None:
        self._config = config
        self.state = State.CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.probe_until = 0.0
        self._buckets: deque[list[int]] = deque()  # [bucket index, calls, failures]

    def allow(self, now: float) -> tuple[bool, Change | None]:
        """Whether a call may go to the target now, and the state change this causes."""
        cooldown = self._config.cooldown
        if self.state is State.CLOSED:
            return True, None
        if self.state is State.OPEN:
            if now < self.opened_at + cooldown:
                return False, None
            self.state, self.probe_until = State.HALF_OPEN, now + cooldown
            return True, probing(cooldown)
        if now >= self.probe_until:  # the probe was lost: let another one through
            self.probe_until = now + cooldown
            return True, None
        return False, None

    def record(self, ok: bool, now: float, error: str | None = None) -> Change | None:
        """Counts a call's outcome; returns the state change it causes, if any."""
        if self.state is State.HALF_OPEN:
            change = probe_outcome(ok, error)
            self._reset()
            if not ok:
                self.state, self.opened_at = State.OPEN, now
            return change
        if self.state is State.OPEN:
            return None  # a call that started before the breaker opened
        self._count(ok, now)
        if ok:
            return None
        return self._maybe_open(now, error)

    def _count(self, ok: bool, now: float) -> None:
        current = bucket_of(now, self._config.window)
        if not self._buckets or self._buckets[-1][0] != current:
            self._buckets.append([current, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += 0 if ok else 1
        while self._buckets[0][0] < current - BUCKETS:
            self._buckets.popleft()
        self.consecutive = 0 if ok else self.consecutive + 1

    def _maybe_open(self, now: float, error: str | None) -> Change | None:
        config = self._config
        if self.consecutive >= config.failures:
            change = opened_by_failures(self.consecutive, error)
        else:
            calls = sum(bucket[1] for bucket in self._buckets)
            failed = sum(bucket[2] for bucket in self._buckets)
            if calls < config.min_requests or failed / calls < config.failure_ratio:
                return None
            change = opened_by_ratio(failed, calls, config.window, error)
        self._reset()
        self.state, self.opened_at = State.OPEN, now
        return change

    def _reset(self) -> None:
        self.state = State.CLOSED
        self.consecutive = 0
        self._buckets.clear()

    @property
    def idle(self) -> bool:
        """Closed with nothing counted that could open it soon: safe to forget."""
        return self.state is State.CLOSED and self.consecutive == 0
