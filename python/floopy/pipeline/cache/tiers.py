"""The worker's cache: its tiers, looked up in order, failing open, counted.

A tier whose store errs or is slower than ``CACHE_TIMEOUT`` costs the request at most that
long: the lookup counts as an error, the request goes on as a miss of that tier (it is not
stored there either), and the tier rests for ``REST_SECONDS`` before it is asked again, so
a Redis that hangs does not add its time-out to every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from floopy.pipeline.cache.counters import CacheCounters
from floopy.pipeline.cache.tier import Hit, Miss, Query, Tier

if TYPE_CHECKING:
    from floopy.context import RequestContext
    from floopy.pipeline.cache.policy import Policy
    from floopy.pipeline.cache.semantic import Vectors
    from floopy.pipeline.cache.store import CacheStore
    from floopy.trace import Span

log = logging.getLogger("floopy")

REST_SECONDS = 1.0
GAUGE_REFRESH_SECONDS = 30.0  # how stale the entries and bytes of a shared store may be


class Cache:
    def __init__(
        self,
        store: CacheStore,
        tiers: Sequence[Tier],
        policy: Policy,
        clock: Callable[[], float] = time.monotonic,
        *,
        vectors: Vectors | None = None,
    ) -> None:
        self.store = store
        self.vectors = vectors  # the semantic and advanced tiers' embedder and index
        self.policy = policy
        self.tiers = tuple(tiers)
        self.counters = CacheCounters(tuple(tier.name for tier in self.tiers))
        self._clock = clock
        self._resting_until: dict[str, float] = {}
        self._last_error: dict[str, str] = {}  # tier -> its last failure, until a success
        self._gauges_at = float("-inf")
        self._refresh: asyncio.Task[Any] | None = None

    async def lookup(
        self, query: Query, ctx: RequestContext, span: Span | None
    ) -> Hit | list[Miss]:
        """The first hit, or where each tier that missed would store the answer."""
        misses: list[Miss] = []
        for tier in self.tiers:
            if self._resting(tier.name) or not tier.applies(query):
                continue
            outcome = await self._ask(tier, query, ctx, span)
            if isinstance(outcome, Hit):
                return outcome
            if outcome is not None:
                misses.append(outcome)
        return misses

    async def _ask(
        self, tier: Tier, query: Query, ctx: RequestContext, span: Span | None
    ) -> Hit | Miss | None:
        """One tier's answer in a child span of its own, counted; None when it failed."""
        child = ctx.start_span(tier.name, span) if span is not None else None
        outcome: Hit | Miss | None = None
        try:
            outcome = await tier.lookup(query)
        except Exception as exc:
            self._failed(tier.name, "lookup", exc)
        finally:
            said = "error" if outcome is None else "hit" if isinstance(outcome, Hit) else "miss"
            if child is not None:
                child.set(outcome=said)
                if isinstance(outcome, Hit) and outcome.similarity is not None:
                    child.set(similarity=round(outcome.similarity, 4))
                ctx.end_span(child)
        if outcome is not None:
            self.counters.add(said, tier.name)
            self._last_error.pop(tier.name, None)
        return outcome

    async def save(self, misses: Sequence[Miss], answer: bytes) -> None:
        for miss in misses:
            if self._resting(miss.tier):
                continue
            try:
                if await miss.store(answer):
                    self.counters.add("stored", miss.tier)
            except Exception as exc:
                self._failed(miss.tier, "write", exc)

    def metrics_text(self) -> bytes:
        self._refresh_gauges()
        return self.counters.render(self.store.kind, self.store.gauges()).encode()

    def readiness(self) -> dict[str, Any]:
        """Down from a failure until the next lookup that succeeds: as the requests saw it,
        without asking the store now."""
        report: dict[str, Any] = {
            "status": "down" if self._last_error else "up",
            "store": self.store.kind,
            "tiers": [tier.name for tier in self.tiers],
        }
        if self.vectors is not None:
            report["vectors"] = getattr(self.vectors.index, "kind", "custom")
            report["embedder"] = self.vectors.embedder.name
            report["embedder_ready"] = self.vectors.ready
        if self._last_error:
            report["error"] = "; ".join(self._last_error[name] for name in sorted(self._last_error))
        return report

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        if self.vectors is not None:
            await self.vectors.index.close()
            if self.vectors.owns_embedder:  # else the worker's, closed by the worker
                await self.vectors.embedder.close()
        await self.store.close()

    def _resting(self, tier: str) -> bool:
        until = self._resting_until.get(tier)
        return until is not None and self._clock() < until

    def _failed(self, tier: str, what: str, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("cache: %s %s failed, going on without it: %s", tier, what, reason)
        self.counters.add("error", tier)
        self._resting_until[tier] = self._clock() + REST_SECONDS
        self._last_error[tier] = f"{tier} {self.store.kind}: {reason}"

    def _refresh_gauges(self) -> None:
        """A shared store's entries and bytes are counted by a scan now and then, off the
        scrape: the scrape shows the last count."""
        if self.store.kind == "memory" or self._clock() - self._gauges_at < GAUGE_REFRESH_SECONDS:
            return
        if self._refresh is not None and not self._refresh.done():
            return
        self._gauges_at = self._clock()
        self._refresh = asyncio.ensure_future(self._count())

    async def _count(self) -> None:
        try:
            await self.store.stats()
        except Exception as exc:
            log.warning("cache: counting the %s store failed: %s", self.store.kind, exc)
