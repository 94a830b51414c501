"""The exact tier: a repeat of the same request (the same body, once its layout and the
fields that do not change the answer are set aside) by the same tenant gets the stored answer.

The key is the native xxh3-128 of the canonical body (``_native.CacheKeyer``: sorted keys,
``stream``, ``stream_options``, ``user``, ``metadata``, ``store`` and the request's
``floopy-cache-ignore-keys`` left out), framed with the scope (the API, organization,
project and the routing headers) and ``floopy-cache-seed``. With
``floopy-cache-bucket-max-size: N`` a key keeps up to N answers, filled by misses; once it
holds N, each hit serves one at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from floopy._native import CacheKeyer
from floopy.pipeline.cache.answer import Entry
from floopy.pipeline.cache.store import CacheStore, Slot
from floopy.pipeline.cache.tier import Hit, Miss, Query

NAME = "exact"


def scope_of(query: Query) -> str:
    """Unambiguous: the API is one of a few fixed words, the organization is length-prefixed
    and the project and routing are separated by a byte neither may hold."""
    org = query.organization
    return f"{query.api}\n{len(org)}:{org}\n{query.project}\0{query.routing}"


class ExactTier:
    name = NAME

    def __init__(
        self,
        store: CacheStore,
        keyer: CacheKeyer | None = None,
        choose: Callable[[int], int] = random.randrange,
    ) -> None:
        self._store = store
        self._keyer = keyer or CacheKeyer()
        self._choose = choose

    def applies(self, query: Query) -> bool:
        return True

    def slot(self, query: Query) -> Slot:
        key = self._keyer.key(query.body, scope_of(query), query.seed, query.ignore_keys)
        return Slot(query.organization, query.project, key)

    async def lookup(self, query: Query) -> Hit | Miss:
        slot = self.slot(query)
        answers = await self._store.get(slot)
        if len(answers) < query.bucket_size:
            return ExactMiss(self._store, slot, query.ttl, query.bucket_size)
        # A key may hold more answers than this request's bucket (another asked for more):
        # it is served from its own first N.
        index = self._choose(query.bucket_size) if query.bucket_size > 1 else 0
        entry = Entry.decode(answers[index])
        return Hit(NAME, entry, bucket_index=index if query.bucketed else None)


class ExactMiss:
    """The slot a missed request's answer goes to, with its TTL and bucket size."""

    __slots__ = ("_limit", "_store", "_ttl", "slot")
    tier = NAME

    def __init__(self, store: CacheStore, slot: Slot, ttl: float, limit: int) -> None:
        self._store, self.slot, self._ttl, self._limit = store, slot, ttl, limit

    async def store(self, answer: bytes) -> bool:
        return await self._store.add(self.slot, answer, self._ttl, self._limit)
