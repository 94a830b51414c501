"""Where cached answers live: one small protocol (``CacheStore``) over the process's memory
(``memory``) or a Redis shared by every gateway instance (``redis``), picked by
``REDIS_URL``.

A store knows nothing of requests or tiers: it keeps, under a ``Slot`` (organization,
project and a tier's key), a bucket of up to N answers (opaque bytes), each with its own
expiry, and gives back the live ones. The organization and project are part of the slot so
that an operator can clear one tenant's entries (``floopy cache clear``); the key itself
already hashes them in, so no two tenants ever share a slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from floopy.settings import Settings


class Slot(NamedTuple):
    organization: str
    project: str
    key: str  # the tier's key, hex


class StoreStats(NamedTuple):
    entries: int  # cached answers (a bucket of N counts N)
    bytes: int


class CacheStore(Protocol):
    kind: str  # "memory" or "redis", for /readyz, /metrics and the CLI

    async def get(self, slot: Slot) -> list[bytes]:
        """The live answers of the slot's bucket, in a stable order; [] when none.
        Raises on a store failure (the caller fails open)."""
        ...

    async def add(self, slot: Slot, answer: bytes, ttl: float, limit: int) -> bool:
        """Adds ``answer`` for ``ttl`` seconds unless the bucket already holds ``limit``
        live answers; returns whether it was added."""
        ...

    async def clear(self, organization: str | None = None, project: str | None = None) -> int:
        """Drops every answer, or one organization's, or one project's of an organization;
        returns how many buckets went."""
        ...

    async def stats(self) -> StoreStats: ...

    def gauges(self) -> StoreStats | None:
        """What the store holds, without asking a server: None when not known here."""
        ...

    async def close(self) -> None: ...


def build_store(settings: Settings, redis: Redis | None) -> CacheStore:
    """Redis when ``REDIS_URL`` is set (the worker's connection), else this process's
    memory."""
    from floopy.pipeline.cache.memory import MemoryStore
    from floopy.pipeline.cache.redis import RedisStore

    if redis is not None:
        return RedisStore(redis, timeout=settings.cache_timeout)
    return MemoryStore(settings.cache_max_bytes)
