"""``floopy cache stats`` and ``floopy cache clear``: the shared cache in Redis, when
``REDIS_URL`` is set.

Without it each worker process keeps its own cache in memory: ``stats`` then reads the
running gateway's ``/metrics`` (the worker that answers the scrape), and ``clear`` has
nothing it can reach: a restart empties those caches.

The semantic and advanced tiers keep their answers in the same store (so both commands
count and clear them) and their vectors in Qdrant: with ``QDRANT_URL`` the commands count
and delete those too; the embedded engine's shards belong to the worker processes, and a
vector whose answer was cleared only ever misses until it expires.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from typing import Any, TextIO

from floopy.pipeline.cache.redis import RedisStore
from floopy.pipeline.cache.store import StoreStats
from floopy.redis_client import open_redis
from floopy.settings import Settings

_GAUGE = re.compile(r'^floopy_cache_(entries|bytes)\{store="memory"\} (\d+)$', re.MULTILINE)
EXIT_FAILED = 1


def stats_command(settings: Settings, out: TextIO, err: TextIO) -> int:
    if settings.redis_url is None:
        return _memory_stats(settings, out, err)
    try:
        stats = asyncio.run(_redis_stats(settings.redis_url))
    except Exception as exc:
        err.write(f"floopy: Redis (REDIS_URL) did not answer: {exc}\n")
        return EXIT_FAILED
    out.write(f"store: redis\nentries: {stats.entries}\nbytes: {stats.bytes}\n")
    return _vector_stats(settings, out, err)


def clear_command(
    settings: Settings, organization: str | None, project: str | None, out: TextIO, err: TextIO
) -> int:
    if settings.redis_url is None:
        err.write(
            "floopy: REDIS_URL is not set, so each gateway worker keeps its cache in its own "
            "memory, out of this command's reach; restarting the gateway empties it\n"
        )
        return EXIT_FAILED
    try:
        gone = asyncio.run(_redis_clear(settings.redis_url, organization, project))
    except Exception as exc:
        err.write(f"floopy: Redis (REDIS_URL) did not answer: {exc}\n")
        return EXIT_FAILED
    scope = "every organization"
    if organization is not None:
        scope = f"organization {organization!r}"
        if project is not None:
            scope += f", project {project!r}"
    out.write(f"cleared {gone} cache keys of {scope}\n")
    if settings.cache_semantic_enabled and settings.qdrant_url is not None:
        try:
            asyncio.run(_qdrant_clear(settings, organization, project))
        except Exception as exc:
            err.write(f"floopy: Qdrant (QDRANT_URL) did not answer: {exc}\n")
            return EXIT_FAILED
        out.write(f"deleted the semantic cache's vectors of {scope}\n")
    return 0


async def _redis_stats(url: str) -> StoreStats:
    redis = open_redis(url)
    try:
        return await RedisStore(redis, timeout=30.0).stats()
    finally:
        await redis.aclose()


async def _redis_clear(url: str, organization: str | None, project: str | None) -> int:
    redis = open_redis(url)
    try:
        return await RedisStore(redis, timeout=30.0).clear(organization, project)
    finally:
        await redis.aclose()


def _vector_stats(settings: Settings, out: TextIO, err: TextIO) -> int:
    """The semantic and advanced tiers' vectors: counted on a Qdrant server."""
    if not settings.cache_semantic_enabled:
        return 0
    collection = _collection(settings)
    if settings.qdrant_url is None:
        out.write(f"vectors: embedded, one shard per worker (DATA_DIR/vectors/{collection})\n")
        return 0
    try:
        count = asyncio.run(_qdrant_count(settings))
    except Exception as exc:
        err.write(f"floopy: Qdrant (QDRANT_URL) did not answer: {exc}\n")
        return EXIT_FAILED
    out.write(f"vectors: {count} (qdrant, collection {collection})\n")
    return 0


def _collection(settings: Settings) -> str:
    from floopy.pipeline.cache import COLLECTION, cache_embedder_name
    from floopy.vectors.index import collection_name

    return collection_name(COLLECTION, cache_embedder_name(settings))


def _qdrant(settings: Settings) -> Any:
    from qdrant_client import AsyncQdrantClient

    return AsyncQdrantClient(url=settings.qdrant_url, timeout=30, check_compatibility=False)


async def _qdrant_count(settings: Settings) -> int:
    client, collection = _qdrant(settings), _collection(settings)
    try:
        if not await client.collection_exists(collection):
            return 0
        return int((await client.count(collection, exact=True)).count)
    finally:
        await client.close()


async def _qdrant_clear(settings: Settings, organization: str | None, project: str | None) -> None:
    from qdrant_client import models

    client, collection = _qdrant(settings), _collection(settings)
    scope = {"organization": organization, "project": project}
    must: list[Any] = [
        models.FieldCondition(key=k, match=models.MatchValue(value=v))
        for k, v in scope.items()
        if v is not None
    ]
    try:
        if await client.collection_exists(collection):
            selector = models.FilterSelector(filter=models.Filter(must=must))
            await client.delete(collection, points_selector=selector)
    finally:
        await client.close()


def _memory_stats(settings: Settings, out: TextIO, err: TextIO) -> int:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError as exc:
        err.write(f"floopy: the gateway did not answer at {url}: {exc}\n")
        return EXIT_FAILED
    gauges = dict(_GAUGE.findall(text))
    out.write(
        f"store: memory (one per worker; this is the worker that answered {url})\n"
        f"entries: {gauges.get('entries', '0')}\nbytes: {gauges.get('bytes', '0')}\n"
    )
    return 0
