"""Stage: cache. A repeat answered at once from the tiers (``tiers.Cache``: exact, then
semantic, then advanced), or, on a miss, the answer stored once the response is complete.

Three steps, in the pipeline's order:

- ``run`` (the ``cache`` stage, before the firewall): whether the request uses the cache
  (``policy``); the tiers looked up, one child span each; on a hit, sets ``exchange.reply``
  (which skips the firewall, routing and dispatch), ``ctx.provider`` and ``ctx.model`` of
  the cached answer, ``ctx.cache_status`` ("HIT"), ``ctx.cache_tier``,
  ``ctx.cache_similarity``, ``ctx.cache_bucket_index`` and ``ctx.cache_saved_usd`` (what
  the provider charged for it); on a miss, ``ctx.cache_status`` ("MISS") and
  ``exchange.cache_misses``. A store that fails or is slow only turns the cache off.
- ``tap`` (after dispatch): a missed request's stream is recorded as it is relayed.
- ``store`` (after the response): a whole success goes to the tiers that missed.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from floopy.pipeline.cache import replay
from floopy.pipeline.cache.exact import ExactTier
from floopy.pipeline.cache.policy import Policy
from floopy.pipeline.cache.semantic import FIELDS, Vectors, VectorTier
from floopy.pipeline.cache.store import CacheStore, Slot, StoreStats, build_store
from floopy.pipeline.cache.tap import RecordedStream, whole_success
from floopy.pipeline.cache.tier import Hit, Miss, Query, Tier
from floopy.pipeline.cache.tiers import Cache
from floopy.providers.operations import Whole
from floopy.vectors import build_index
from floopy.vectors.embedder import LOCAL, embedder_name
from floopy.vectors.index import collection_name
from floopy.vectors.minilm import INT8_MODEL_NAME, LocalEmbedder

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from floopy.pipeline.exchange import Exchange
    from floopy.settings import Settings
    from floopy.vectors import Embedder

__all__ = [
    "Cache",
    "CacheStore",
    "Hit",
    "Miss",
    "Query",
    "Slot",
    "StoreStats",
    "Tier",
    "build_cache",
    "cache_embedder_name",
    "run",
    "store",
    "tap",
]


COLLECTION = "cache"


def build_cache(settings: Settings, redis: Redis | None, embedder: Embedder | None) -> Cache:
    """The exact tier, and the semantic and advanced tiers unless ``CACHE_SEMANTIC_ENABLED``
    is off (or no embedder is given). Nothing heavy: the index opens on first use.

    With the local embedder the tiers embed with a copy of their own that runs the model's
    matrix products in int8 (``floopy.vectors.minilm``): a lookup's embedding in about half
    the CPU time, kept in ``DATA_DIR/models``; a provider's embedder is shared as given."""
    store_ = build_store(settings, redis)
    tiers: list[Tier] = [ExactTier(store_)]
    vectors = None
    if settings.cache_semantic_enabled and embedder is not None:
        owns_embedder = isinstance(embedder, LocalEmbedder)
        if owns_embedder:
            embedder = LocalEmbedder(
                threads=settings.embedding_threads,
                int8_activations=True,
                directory=Path(settings.data_dir) / "models",
            )
        index = build_index(settings, collection_name(COLLECTION, embedder.name), FIELDS)
        vectors = Vectors(
            embedder,
            index,
            store_,
            threshold=settings.cache_semantic_threshold,
            timeout=settings.cache_semantic_timeout,
            max_chars=settings.cache_semantic_max_chars,
            owns_embedder=owns_embedder,
        )
        tiers += [VectorTier(vectors, multi_turn=False), VectorTier(vectors, multi_turn=True)]
    return Cache(store_, tiers, Policy(settings), vectors=vectors)


def cache_embedder_name(settings: Settings) -> str:
    """The name of the embedder the tiers use (their collection is named after it), without
    building it: for the command line."""
    return INT8_MODEL_NAME if settings.embedding_model == LOCAL else embedder_name(settings)


def run(exchange: Exchange) -> Awaitable[None] | None:
    cache = exchange.worker.cache
    query = cache.policy.query(exchange)
    return None if query is None else _look_up(exchange, cache, query)


async def _look_up(exchange: Exchange, cache: Cache, query: Query) -> None:
    ctx = exchange.ctx
    outcome = await cache.lookup(query, ctx, exchange.span)
    if isinstance(outcome, Hit):
        _answer(exchange, query, outcome)
        return
    ctx.cache_status = "MISS"
    if query.ttl > 0:
        exchange.cache_misses = (query, outcome)


def tap(exchange: Exchange) -> None:
    """Records the stream of a missed request as it goes to the client."""
    if exchange.cache_misses is not None and exchange.reply is not None:
        reply = exchange.reply
        if not isinstance(reply, Whole):
            limit = exchange.worker.settings.cache_max_entry_bytes
            exchange.reply = RecordedStream(reply, limit)


def store(exchange: Exchange) -> Awaitable[None] | None:
    """Once the response is complete: a whole success goes to the tiers that missed."""
    if exchange.cache_misses is None or exchange.reply is None or not exchange.cache_misses[1]:
        return None
    return _store(exchange)


async def _store(exchange: Exchange) -> None:
    assert exchange.cache_misses is not None and exchange.reply is not None
    query, misses = exchange.cache_misses
    worker = exchange.worker
    limit = worker.settings.cache_max_entry_bytes
    entry = whole_success(exchange.ctx, query.api, exchange.reply, limit)
    if entry is not None:
        await worker.cache.save(misses, entry.encode())


def _answer(exchange: Exchange, query: Query, hit: Hit) -> None:
    ctx, entry = exchange.ctx, hit.entry
    ctx.cache_status, ctx.cache_tier = "HIT", hit.tier
    ctx.cache_similarity, ctx.cache_bucket_index = hit.similarity, hit.bucket_index
    ctx.provider, ctx.model = entry.provider, entry.model
    ctx.cache_saved_usd = exchange.worker.prices.cost(entry.provider, entry.model, entry.usage)
    if query.stream:
        exchange.reply = replay.stream(entry, query.include_usage)
    else:
        exchange.reply = replay.whole(entry)
