"""Recent latency per (provider, model) target, measured on every call, for the ``latency``
routing strategy.

A call's latency is the time until its answer (non-stream) or its first event (stream). A
failed call counts as infinitely slow, so a target failing half its calls ranks last however
fast it fails. Samples older than ``horizon`` seconds are dropped: a target that was slow
becomes unmeasured again, gets tried, and so is measured anew instead of being shunned
forever.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable

SAMPLES = 100  # most recent calls kept per target
HORIZON = 300.0  # seconds a sample counts


class LatencyTracker:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, horizon: float = HORIZON
    ) -> None:
        self._samples: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._clock = clock
        self._horizon = horizon

    def track(self, provider: str, model: str) -> None:
        """Measures this target from now on. Only the targets of latency-routed rules are
        tracked: model names come from clients too, and measuring every one of them would
        grow without bound."""
        self._samples.setdefault((provider, model), deque(maxlen=SAMPLES))

    def observe(self, provider: str, model: str, seconds: float | None) -> None:
        """One call's latency; None for a failed call."""
        samples = self._samples.get((provider, model))
        if samples is not None:
            samples.append((self._clock(), math.inf if seconds is None else seconds))

    def p50(self, provider: str, model: str) -> float | None:
        """The median latency of the recent calls, in seconds; None when there are none."""
        samples = self._samples.get((provider, model))
        if not samples:
            return None
        oldest = self._clock() - self._horizon
        while samples and samples[0][0] < oldest:
            samples.popleft()
        return statistics.median(value for _, value in samples) if samples else None
