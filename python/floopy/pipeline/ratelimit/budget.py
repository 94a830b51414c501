"""What the rate-limit counters work on: budgets (one policy applied to one subject) and the
verdict of a check, turned into the response headers clients read.

Headers follow the IETF RateLimit header fields draft (the widely deployed form):
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds), reporting
the budget closest to its limit; a 429 adds ``Retry-After``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Kind = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Budget:
    key: str  # the counter's name, unique per policy, kind and subject
    kind: Kind
    limit: int
    window: float  # seconds
    label: str  # the policy, for people


@dataclass(frozen=True, slots=True)
class Usage:
    """One budget's state after a check: how much of it is used, and when the oldest use
    leaves the window (None when nothing is used)."""

    budget: Budget
    used: int
    oldest_expires_in: float | None

    @property
    def remaining(self) -> int:
        return max(0, self.budget.limit - self.used)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    usages: tuple[Usage, ...] = ()  # every budget, when allowed
    denied_by: Budget | None = None
    retry_after: float = 0.0  # seconds, when denied

    def headers(self) -> dict[str, str]:
        if self.denied_by is not None:
            wait = _seconds(self.retry_after)
            return {
                "RateLimit-Limit": str(self.denied_by.limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": wait,
                "Retry-After": wait,
            }
        if not self.usages:
            return {}
        tightest = min(self.usages, key=lambda usage: (usage.remaining, usage.budget.limit))
        reset = tightest.oldest_expires_in
        return {
            "RateLimit-Limit": str(tightest.budget.limit),
            "RateLimit-Remaining": str(tightest.remaining),
            "RateLimit-Reset": _seconds(reset or 0.0),
        }


def _seconds(value: float) -> str:
    # Whole seconds, rounded up, so a client that waits that long is not refused again.
    return str(max(0, math.ceil(value - 1e-9)))
