"""Everything one worker process holds, opened inside the worker (granian forks workers, so
nothing holding a socket or a file is created at import time)."""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec

from floopy.context import RequestContext
from floopy.observability import RequestLog
from floopy.pipeline.auth import KeyStore
from floopy.pipeline.auth.projects import Projects
from floopy.pipeline.cache import build_cache
from floopy.pipeline.dispatch import Dispatcher
from floopy.pipeline.dispatch.breaker import BreakerEvent, build_breakers
from floopy.pipeline.dispatch.retry import RetryPolicy
from floopy.pipeline.firewall import build_firewall
from floopy.pipeline.parse import Parser
from floopy.pipeline.ratelimit import build_limiter
from floopy.pipeline.routing import Router
from floopy.pipeline.routing.latency import LatencyTracker
from floopy.pricing import PriceBook
from floopy.providers import build_providers
from floopy.providers.base import Provider
from floopy.redis_client import open_redis
from floopy.scrub import SecretScrubber
from floopy.settings import Settings, load_settings
from floopy.upstream import Upstream, open_upstream
from floopy.vectors import build_embedder

log = logging.getLogger("floopy")


class Worker:
    """Configured native parsers, keys, router and providers of one worker process."""

    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream
        self.parser = Parser(
            max_body_bytes=settings.max_body_bytes,
            max_depth=settings.max_json_depth,
            max_header_value=settings.max_header_value_bytes,
            max_properties=settings.max_properties,
        )
        self.keys = KeyStore.from_settings(settings)
        self.secrets = SecretScrubber.from_settings(settings)
        self.providers: dict[str, Provider] = build_providers(settings, upstream)
        # Shared state across instances when REDIS_URL is set; in this process otherwise.
        self.redis = open_redis(settings.redis_url) if settings.redis_url else None
        self.projects = Projects(settings)
        self.limiter = build_limiter(settings.rate_limits, self.redis)
        # Vectors (the semantic cache, the firewall's verdict cache): loaded on first use.
        self.embedder = build_embedder(settings, self.providers)
        self.cache = build_cache(settings, self.redis, self.embedder)
        self.breakers = build_breakers(settings.circuit_breaker, self.redis, self.on_breaker_event)
        self.latency = LatencyTracker()
        self.router = Router(settings, set(settings.unavailable_providers()), self.latency)
        self.dispatcher = Dispatcher(
            self.providers,
            breakers=self.breakers,
            latency=self.latency,
            retry=RetryPolicy(
                attempts=settings.retry_attempts,
                backoff=settings.retry_backoff,
                backoff_max=settings.retry_backoff_max,
            ),
            deadline=settings.upstream_deadline,
            max_attempts=settings.max_attempts_per_request,
            secrets=self.secrets,
        )
        self.firewall = build_firewall(settings, self.providers, self.embedder)
        self.prices = PriceBook(settings)
        self.models_created = int(time.time())  # the catalog's "created", as of this start
        self.models_body = _models_list(settings, self.models_created)
        self.log: RequestLog | None = None  # opened by start(), inside the worker process
        self.warming: asyncio.Task[None] | None = None  # models loading, from start()
        self.cache_warming: asyncio.Task[None] | None = None  # the semantic cache's model

    @classmethod
    async def start(cls) -> Worker:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
        # In the worker process and its loop: a client's pool and thread must not cross a fork.
        upstream = open_upstream(settings, asyncio.get_running_loop())
        worker = cls(settings, upstream)
        worker.log = RequestLog.open(settings)
        if worker.firewall is not None:
            worker.firewall.counters = worker.log.metrics.firewall  # rendered in /metrics
            if settings.firewall.screens_by_policy:  # else loaded by the first opt-in
                worker.warming = asyncio.create_task(worker.firewall.warm_up())
        vectors = worker.cache.vectors
        if vectors is not None and worker.cache.policy.ever_on:  # else loaded by the first use
            worker.cache_warming = asyncio.create_task(vectors.warm_up())
        return worker

    def finished(self, ctx: RequestContext) -> None:
        """The log (``floopy.pipeline``): a request's row, written once, whatever the
        outcome: just before a whole answer or an error is sent, after a stream ended, and
        at the latest when the request ends. Must never block or raise."""
        if self.log is not None:
            self.log.finished(ctx)

    def on_breaker_event(self, event: BreakerEvent) -> None:
        """A circuit breaker changed state (provider, model, from and to state, reason,
        time): the record for the circuit-breaker log sink. Called on the request path
        (already written to the server log), so it must never block; an exception it raises
        is logged and dropped."""
        if self.log is not None:
            self.log.breaker_event(event)

    async def close(self) -> None:
        if self.log is not None:
            self.log.close()  # every row is on disk already: closes the journal
        await self.cache.close()
        for task in (self.warming, self.cache_warming):
            if task is not None:
                task.cancel()
        if self.firewall is not None:
            await self.firewall.close()
        await self.embedder.close()
        for provider in self.providers.values():
            await provider.close()
        await self.upstream.close()
        if self.redis is not None:
            await self.redis.aclose()


def _models_list(settings: Settings, created: int) -> bytes:
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": model.provider}
        for name, model in sorted(settings.models.items())
    ]
    return msgspec.json.encode({"object": "list", "data": data})
