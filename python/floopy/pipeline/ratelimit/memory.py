"""Rate-limit counters kept in this worker process: exact sliding windows (a log of uses per
budget), the default for a single instance."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from floopy.pipeline.ratelimit.budget import Budget, Usage, Verdict

# Subjects include client-chosen end-user ids: idle logs are swept every this many checks.
SWEEP_EVERY = 1000


class SlidingLog:
    """Uses of one budget with their times; a use leaves the window ``window`` seconds later."""

    __slots__ = ("_entries", "total", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self.total = 0
        self._entries: deque[tuple[float, int]] = deque()

    def expire(self, now: float) -> None:
        horizon = now - self.window
        entries = self._entries
        while entries and entries[0][0] <= horizon:
            self.total -= entries.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        self._entries.append((now, amount))
        self.total += amount

    def wait_below(self, limit: int, now: float) -> float:
        """Seconds until the total drops under ``limit``, as uses leave the window."""
        left = self.total
        for at, amount in self._entries:
            left -= amount
            if left < limit:
                return at + self.window - now
        return 0.0

    def oldest_expires_in(self, now: float) -> float | None:
        return self._entries[0][0] + self.window - now if self._entries else None


class InProcessCounters:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, SlidingLog] = {}
        self._checks = 0

    async def acquire(self, budgets: Sequence[Budget], request_id: str) -> Verdict:
        """Refuses when any budget is used up; otherwise counts one request in each request
        budget. Nothing awaits in between, so concurrent requests cannot both take the last
        unit of a budget."""
        now = self._clock()
        logs = [self._log(budget, now) for budget in budgets]
        for budget, log in zip(budgets, logs, strict=True):
            if log.total >= budget.limit:
                return Verdict(
                    False, denied_by=budget, retry_after=log.wait_below(budget.limit, now)
                )
        for budget, log in zip(budgets, logs, strict=True):
            if budget.kind == "requests":
                log.add(now, 1)
        self._sweep(now)
        return Verdict(
            True,
            tuple(
                Usage(budget, log.total, log.oldest_expires_in(now))
                for budget, log in zip(budgets, logs, strict=True)
            ),
        )

    async def add_tokens(self, budgets: Sequence[Budget], tokens: int, request_id: str) -> None:
        now = self._clock()
        for budget in budgets:
            self._log(budget, now).add(now, tokens)

    async def close(self) -> None:
        pass

    def _log(self, budget: Budget, now: float) -> SlidingLog:
        log = self._logs.get(budget.key)
        if log is None:
            log = self._logs[budget.key] = SlidingLog(budget.window)
        log.expire(now)
        return log

    def _sweep(self, now: float) -> None:
        self._checks += 1
        if self._checks % SWEEP_EVERY:
            return
        for key, log in list(self._logs.items()):
            log.expire(now)
            if log.total == 0:
                del self._logs[key]
