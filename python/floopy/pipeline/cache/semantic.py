"""The semantic and advanced tiers: a request whose last user message means the same as one
answered before, with everything else the same, gets that answer.

Both tiers share one ``Vectors`` (the embedder, the vector index and the answer store) and
differ in the requests they take (``conversation``): the semantic tier single-turn prompts
(an optional system message and one user message), the advanced tier multi-turn
conversations, only when the request asks with ``floopy-cache-advanced: true`` (or
``CACHE_ADVANCED_BY_DEFAULT``). Neither takes a request with buckets
(``floopy-cache-bucket-max-size``): those are the exact tier's.

A lookup, within ``CACHE_SEMANTIC_TIMEOUT`` in all:

1. its scope: a hash of the organization, project, tier, number of messages, key (the exact
   hash of the request without its last user message: model, parameters, system prompt,
   tools, seed, routing and every earlier turn) and literals (the message's numbers and
   polarity words, ``wording``), one payload field that the search filters on (one
   condition checked per candidate costs half the search's CPU of six); when the index
   holds no live entry of that scope (``VectorIndex.holds``: the embedded engine knows
   without asking its shard), the lookup is a miss at once and the message is embedded only
   if its answer is stored, after the response;
2. the last user message embedded (off the event loop; the last few hundred texts' vectors
   are kept, so a repeat is not embedded again); a text the local model would cut short is
   not looked up (a miss that stores nothing), nor is any while the local model is still
   loading (it starts loading with the worker when the cache is on by setting, else with
   the first lookup);
3. the nearest live vectors of the scope at or above ``CACHE_SEMANTIC_THRESHOLD``; the
   nearest whose content words agree with the prompt's (``wording``) is the match;
4. its answer read from the cache store (memory or Redis), like the exact tier's; a vector
   whose answer is gone (expired, evicted, cleared) is a miss.

On a miss the answer, once whole, goes to the store under a slot of its own and its vector
to the index, both for the request's TTL, after the response (within ``WRITE_SECONDS``).
Expired vectors are purged every ``PURGE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from floopy._native import CacheKeyer
from floopy.pipeline.cache.answer import Entry
from floopy.pipeline.cache.conversation import Conversation, split
from floopy.pipeline.cache.store import CacheStore, Slot
from floopy.pipeline.cache.tier import Hit, Miss, Query
from floopy.vectors import Entry as VectorEntry
from floopy.vectors.index import PayloadValue, entry_id
from floopy.vectors.minilm import LocalEmbedder

if TYPE_CHECKING:
    from floopy.vectors import Embedder, Vector, VectorIndex

SEMANTIC = "semantic"
ADVANCED = "advanced"
# Payload fields indexed as keywords: the scope, which every search filters on, and the
# tenant (also in the scope), by which ``floopy cache clear`` deletes from a Qdrant server.
SCOPE = "scope"
FIELDS = (SCOPE, "organization", "project")
CANDIDATES = 4  # nearest vectors read, the first whose wording agrees answers
RECENT_VECTORS = 512  # texts whose vectors are kept (about 1.5 KB each with the local model)
PURGE_SECONDS = 600.0
# A write happens after the response went out, so it delays no one: it gets longer than a
# lookup (the first one creates the index on disk, which can take a second on a busy host),
# yet is bounded, so that a hung Qdrant does not pile writes up.
WRITE_SECONDS = 5.0


class Vectors:
    """What the two tiers share: the embedder, the index, the store and their limits."""

    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        store: CacheStore,
        *,
        threshold: float,
        timeout: float,
        max_chars: int,
        clock: Callable[[], float] = time.time,
        owns_embedder: bool = False,
    ) -> None:
        self.embedder = embedder
        self.owns_embedder = owns_embedder  # closed with the cache
        self.index = index
        self.store = store
        self.threshold = threshold
        self.timeout = timeout
        self.max_chars = max_chars
        self.keyer = CacheKeyer()
        self.clock = clock
        self._recent: OrderedDict[str, Vector] = OrderedDict()
        self._purged_at = clock()
        # The local model loads in the background (seconds): until then the tiers miss
        # without storing, rather than time out and count an error.
        self.ready = not isinstance(embedder, LocalEmbedder)
        self._warming: asyncio.Task[None] | None = None

    async def vector(self, text: str, *, waited_for: bool = True) -> Vector | None:
        """The text's embedding; None when the local model would read only its start, or
        is still loading. ``waited_for`` False: for an answer stored after the response,
        which the local model embeds beside the lookups rather than before them."""
        if not self.ready:
            if self._warming is None:
                self._warming = asyncio.ensure_future(self.warm_up())
            return None
        vector = self.recent(text)
        if vector is not None:
            return vector
        embedder = self.embedder
        if isinstance(embedder, LocalEmbedder):
            vectors = await embedder.embed_whole([text], waited_for=waited_for)
            if vectors is None:
                return None
        else:
            vectors = await embedder.embed([text])
        self._recent[text] = vectors[0]
        if len(self._recent) > RECENT_VECTORS:
            self._recent.popitem(last=False)
        return vectors[0]

    def recent(self, text: str) -> Vector | None:
        """The text's vector if it was embedded lately."""
        vector = self._recent.get(text)
        if vector is not None:
            self._recent.move_to_end(text)
        return vector

    async def warm_up(self) -> None:
        """Loads the local model ahead of the first request (a failure shows at lookup)."""
        try:
            await self.embedder.embed(["warm up"])
        except Exception:  # reported by the next lookup instead
            pass
        finally:
            self.ready = True

    async def purge_now_and_then(self) -> None:
        if self.clock() - self._purged_at >= PURGE_SECONDS:
            self._purged_at = self.clock()
            await self.index.purge_expired()


class VectorTier:
    """The semantic tier (``multi_turn`` False) or the advanced tier (True)."""

    def __init__(self, vectors: Vectors, *, multi_turn: bool) -> None:
        self.name = ADVANCED if multi_turn else SEMANTIC
        self._vectors = vectors
        self._multi_turn = multi_turn

    def applies(self, query: Query) -> bool:
        if query.bucketed or (self._multi_turn and not query.advanced):
            return False
        talk = self._conversation(query)
        return talk is not None and talk.single_turn is not self._multi_turn

    def _conversation(self, query: Query) -> Conversation | None:
        """Split once per request, for whichever tier asks first."""
        if query.conversation is None:
            vectors = self._vectors
            query.conversation = split(query, vectors.keyer, vectors.max_chars) or False
        return query.conversation or None

    async def lookup(self, query: Query) -> Hit | Miss:
        talk = self._conversation(query)
        assert talk is not None, "asked only when it applies"
        vectors = self._vectors
        where = self._where(query, talk)
        async with asyncio.timeout(vectors.timeout):
            now = vectors.clock()
            if not await vectors.index.holds(where, now):
                # Nothing to find: embedded later, if the answer is stored.
                return VectorMiss(self.name, vectors, query, where, None, talk)
            vector = await vectors.vector(talk.text)
            if vector is None:
                return Unstored(self.name)
            hits = await vectors.index.search(
                vector,
                where={SCOPE: where[SCOPE]},
                threshold=vectors.threshold,
                limit=CANDIDATES,
                now=now,
            )
            hit = next((h for h in hits if talk.wording.agrees(tuple(h.payload["words"]))), None)
            if hit is not None:
                answers = await vectors.store.get(self._slot(query, hit.payload["answer"]))
                if answers:
                    return Hit(self.name, Entry.decode(answers[0]), similarity=hit.score)
        return VectorMiss(self.name, vectors, query, where, vector, talk)

    def _where(self, query: Query, talk: Conversation) -> dict[str, str]:
        """The request's scope and tenant (step 1)."""
        parts = (query.organization, query.project, self.name, talk.key, str(talk.turns))
        mark = "\x1f".join((*parts, talk.wording.literals)).encode()
        scope = hashlib.blake2b(mark, digest_size=16).hexdigest()
        return {SCOPE: scope, "organization": query.organization, "project": query.project}

    @staticmethod
    def _slot(query: Query, answer: str) -> Slot:
        return Slot(query.organization, query.project, answer)


class VectorMiss:
    """Where a missed request's answer goes: the store, and its vector to the index."""

    __slots__ = ("_query", "_talk", "_vector", "_vectors", "_where", "tier")

    def __init__(
        self,
        tier: str,
        vectors: Vectors,
        query: Query,
        where: dict[str, str],
        vector: Vector | None,  # None: embedded when stored
        talk: Conversation,
    ) -> None:
        self.tier, self._vectors, self._query = tier, vectors, query
        self._where, self._vector, self._talk = where, vector, talk

    async def store(self, answer: bytes) -> bool:
        vectors, query = self._vectors, self._query
        point = entry_id(self.tier, self._talk.key, self._talk.text)
        # The slot's key names its tier, so no exact key (hex) can ever be the same.
        slot = VectorTier._slot(query, f"{self.tier}-{point}")
        async with asyncio.timeout(max(vectors.timeout, WRITE_SECONDS)):
            vector = self._vector
            if vector is None:
                vector = await vectors.vector(self._talk.text, waited_for=False)
                if vector is None:
                    return False  # longer than the model reads, or the model is loading
            if not await vectors.store.add(slot, answer, query.ttl, 1):
                return False  # the same text's answer is already there, its vector too
            payload: dict[str, PayloadValue] = {
                **self._where,
                "answer": slot.key,
                "words": list(self._talk.wording.words),
            }
            expires_at = vectors.clock() + query.ttl
            await vectors.index.upsert([VectorEntry(point, vector, payload, expires_at)])
        await vectors.purge_now_and_then()
        return True


class Unstored:
    """A miss of a prompt the tier does not compare (longer than the model reads)."""

    __slots__ = ("tier",)

    def __init__(self, tier: str) -> None:
        self.tier = tier

    async def store(self, answer: bytes) -> bool:
        return False
