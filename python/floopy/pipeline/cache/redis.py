"""Cached answers in Redis, shared by every gateway instance that names the same
``REDIS_URL``.

A bucket is one sorted set: each member an answer, its score the time it expires (the
gateway's clock, like the rate limits: instances need synchronised clocks). A lookup reads
the live members in one round trip; a write is one Lua script that drops the expired ones,
adds the answer while the bucket has room, and lets Redis expire the set with its last
answer. Keys are ``floopy:cache:<organization>:<project>:<key>``, the names percent-encoded,
so one tenant's entries can be found and cleared. Every call is bounded by
``CACHE_TIMEOUT``; a slow or absent Redis raises, and the caller goes on without the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from floopy.pipeline.cache.store import Slot, StoreStats

if TYPE_CHECKING:
    from redis.asyncio import Redis

PREFIX = "floopy:cache:"

# KEYS: the bucket. ARGV: now, the answer's expiry, the bucket's limit, the answer.
_ADD = """
local now, expires, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], expires, ARGV[4])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) * 1000))
return 1
"""


def key_of(slot: Slot) -> str:
    return f"{PREFIX}{_name(slot.organization)}:{_name(slot.project)}:{slot.key}"


def pattern_of(organization: str | None, project: str | None) -> str:
    if organization is None:
        return f"{PREFIX}*"
    if project is None:
        return f"{PREFIX}{_name(organization)}:*"
    return f"{PREFIX}{_name(organization)}:{_name(project)}:*"


def _name(text: str) -> str:
    # Percent-encoding leaves no ':' and no glob character ('*', '?', '[') in a name.
    return quote(text, safe="")


class RedisStore:
    kind = "redis"

    def __init__(
        self, redis: Redis, *, timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._timeout = timeout
        self._clock = clock
        self._add: Any = redis.register_script(_ADD)
        self._gauges: StoreStats | None = None

    async def get(self, slot: Slot) -> list[bytes]:
        async with asyncio.timeout(self._timeout):
            answers = await self._redis.zrangebyscore(key_of(slot), f"({self._clock()!r}", "+inf")
        return cast("list[bytes]", answers)

    async def add(self, slot: Slot, answer: bytes, ttl: float, limit: int) -> bool:
        if ttl <= 0:
            return False
        now = self._clock()
        async with asyncio.timeout(self._timeout):
            added = await self._add(
                keys=[key_of(slot)], args=[repr(now), repr(now + ttl), limit, answer]
            )
        return bool(added)

    async def clear(self, organization: str | None = None, project: str | None = None) -> int:
        gone = 0
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=pattern_of(organization, project), count=500):
            batch.append(key)
            if len(batch) >= 500:
                gone += await self._redis.unlink(*batch)
                batch = []
        if batch:
            gone += await self._redis.unlink(*batch)
        return gone

    async def stats(self) -> StoreStats:
        """Scans every bucket (for the CLI and the occasional gauge refresh)."""
        entries = size = 0
        keys = [key async for key in self._redis.scan_iter(match=f"{PREFIX}*", count=500)]
        for start in range(0, len(keys), 500):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys[start : start + 500]:
                pipe.zcard(key)
                pipe.memory_usage(key)
            replies = await pipe.execute()
            entries += sum(int(n or 0) for n in replies[0::2])
            size += sum(int(n or 0) for n in replies[1::2])
        self._gauges = StoreStats(entries, size)
        return self._gauges

    def gauges(self) -> StoreStats | None:
        return self._gauges  # as of the last ``stats``

    async def close(self) -> None:
        pass  # the connection belongs to the worker
