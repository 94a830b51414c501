"""Cached answers in this process's memory: least recently used buckets go first once the
answers held pass ``CACHE_MAX_BYTES``; each answer expires on its own. Each worker process
has its own (with several workers, a repeat may reach a worker that has not seen it)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from floopy.pipeline.cache.store import Slot, StoreStats

# What a bucket costs besides its answers' bytes (the slot, the tuples), roughly, so that
# many small answers are bounded too.
OVERHEAD_BYTES = 160

# Buckets and their keys are plain tuples of strings, floats and bytes, which the garbage
# collector stops tracking: a cache of a million answers does not make every full
# collection walk a million containers. A bucket: its answers with their expiry, oldest
# first.
Bucket = tuple[tuple[float, bytes], ...]
Key = tuple[str, str, str]  # a Slot's fields (a NamedTuple would stay tracked)


class MemoryStore:
    kind = "memory"

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_bytes = max_bytes
        self._clock = clock
        self._buckets: OrderedDict[Key, Bucket] = OrderedDict()
        self._bytes = 0
        self._entries = 0

    async def get(self, slot: Slot) -> list[bytes]:
        key = (slot.organization, slot.project, slot.key)
        bucket = self._live(key)
        if not bucket:
            return []
        self._buckets.move_to_end(key)
        return [answer for _, answer in bucket]

    async def add(self, slot: Slot, answer: bytes, ttl: float, limit: int) -> bool:
        if ttl <= 0 or len(answer) + OVERHEAD_BYTES > self._max_bytes:
            return False
        key = (slot.organization, slot.project, slot.key)
        bucket = self._live(key)
        if len(bucket) >= limit:
            return False
        self._buckets[key] = (*bucket, (self._clock() + ttl, answer))
        self._buckets.move_to_end(key)
        self._bytes += len(answer) + OVERHEAD_BYTES
        self._entries += 1
        while self._bytes > self._max_bytes:
            _, evicted = self._buckets.popitem(last=False)
            self._forget(evicted)
        return True

    async def clear(self, organization: str | None = None, project: str | None = None) -> int:
        gone = [
            key
            for key in self._buckets
            if (organization is None or key[0] == organization)
            and (project is None or key[1] == project)
        ]
        for key in gone:
            self._forget(self._buckets.pop(key))
        return len(gone)

    async def stats(self) -> StoreStats:
        return StoreStats(self._entries, self._bytes)

    def gauges(self) -> StoreStats:
        return StoreStats(self._entries, self._bytes)

    async def close(self) -> None:
        self._buckets.clear()
        self._bytes = self._entries = 0

    def _live(self, key: Key) -> Bucket:
        """The key's bucket without its expired answers (an emptied bucket is dropped)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return ()
        now = self._clock()
        live = tuple(item for item in bucket if item[0] > now)
        if len(live) < len(bucket):
            self._forget(tuple(item for item in bucket if item[0] <= now))
            if live:
                self._buckets[key] = live
            else:
                del self._buckets[key]
        return live

    def _forget(self, answers: Bucket) -> None:
        self._entries -= len(answers)
        self._bytes -= sum(len(answer) + OVERHEAD_BYTES for _, answer in answers)
