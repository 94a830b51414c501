"""Screening one request's text: the verdict cache, then the classifier, within a time limit.

For the windows of the screened text (``screened``):

1. the verdict cache (when on) embeds them and looks each up among earlier unsafe verdicts:
   a match is the verdict, unsafe, and no classifier is asked. The cache failing (embedder or
   index down) is a miss, never an error;
2. the classifier gives a verdict per window (reusing the cache's embeddings when both use
   the same embedder); the worst window decides;
3. an unsafe verdict is stored in the verdict cache, for the windows found unsafe;
4. a classifier failure, an unreadable answer, or ``timeout`` seconds passing over the whole
   of it is the verdict ``error``: the stage lets the request through (fail open) or answers
   503 (fail closed).

Each step is a child span of the ``firewall`` span: ``verdict_cache`` and ``classifier``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from floopy.observability.metrics import FirewallCounters
from floopy.pipeline.firewall.verdict import ClassifierError, Verdict, worst
from floopy.vectors import EmbedderUnavailable, IndexUnavailable

if TYPE_CHECKING:
    from floopy.context import RequestContext
    from floopy.pipeline.firewall.verdict import Classifier
    from floopy.pipeline.firewall.verdict_cache import VerdictCache
    from floopy.vectors import Vector

log = logging.getLogger("floopy")


class Firewall:
    def __init__(
        self,
        classifier: Classifier,
        cache: VerdictCache | None,
        *,
        timeout: float,
        window_chars: int,
        counters: FirewallCounters | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.classifier = classifier
        self.cache = cache
        self.window_chars = classifier.window_chars or window_chars  # text screened at once
        self.counters = counters or FirewallCounters()
        self._timeout = timeout
        self._clock = clock

    async def screen(self, ctx: RequestContext, windows: Sequence[str]) -> Verdict:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._screen(ctx, windows)
        except (ClassifierError, TimeoutError) as exc:
            reason = str(exc) or f"no verdict within {self._timeout:g}s"
            log.warning("firewall: no verdict for %s: %s", ctx.request_id, reason)
            return Verdict("error", None, (), self.classifier.backend, self.classifier.model)

    async def _screen(self, ctx: RequestContext, windows: Sequence[str]) -> Verdict:
        vectors = None
        if self.cache is not None:
            vectors, cached = await self._look_up(ctx, windows)
            if cached is not None:
                return cached
        verdicts = await self._classify(ctx, windows, vectors)
        verdict = worst(verdicts)
        if verdict.outcome == "unsafe" and self.cache is not None and vectors is not None:
            try:
                await self.cache.store(windows, vectors, verdicts, ctx.organization)
            except IndexUnavailable as exc:
                log.warning("firewall: verdict not cached: %s", exc)
        return verdict

    async def _look_up(
        self, ctx: RequestContext, windows: Sequence[str]
    ) -> tuple[list[Vector] | None, Verdict | None]:
        assert self.cache is not None
        with ctx.span("verdict_cache", windows=len(windows)) as span:
            try:
                vectors = await self.cache.embed(windows)
                verdict = await self.cache.lookup(vectors, ctx.organization)
            except (EmbedderUnavailable, IndexUnavailable) as exc:
                log.warning("firewall: verdict cache skipped: %s", exc)
                span.set(hit=False, error=type(exc).__name__)
                return None, None
            span.set(hit=verdict is not None)
            return vectors, verdict

    async def _classify(
        self, ctx: RequestContext, windows: Sequence[str], vectors: list[Vector] | None
    ) -> list[Verdict]:
        classifier = self.classifier
        same_embedder = (
            self.cache is not None and classifier.embedder_name == self.cache.embedder.name
        )
        with ctx.span("classifier", backend=classifier.backend, model=classifier.model) as span:
            started = self._clock()
            try:
                verdicts = await classifier.classify(windows, vectors if same_embedder else None)
            finally:
                self.counters.classifier_latency(classifier.backend, self._clock() - started)
            top = worst(verdicts)
            span.set(verdict=top.outcome, score=top.score, categories=",".join(top.categories))
            return verdicts

    async def warm_up(self) -> None:
        """Loads the embedder and the classifier off the request path (the worker starts it
        at start-up), so the first screened request is not the one that times out on it."""
        try:
            if self.cache is not None:
                await self.cache.embedder.embed(["warm up"])
            await self.classifier.warm_up()
        except Exception as exc:  # the first requests will meet it again, and fail open
            log.warning("firewall: warming up failed: %s", exc)

    async def close(self) -> None:
        await self.classifier.close()
        if self.cache is not None:
            await self.cache.index.close()
