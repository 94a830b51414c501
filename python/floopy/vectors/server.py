"""A Qdrant server (``QDRANT_URL``) through qdrant-client's async client; the same class
over qdrant-client's local mode (``AsyncQdrantClient(path=...)``) is what the benches
compare the embedded engine with.

The collection and its payload indexes are created on first use, if missing, with the first
vector's size; the server keeps them, so every worker and instance shares one index.

``holds`` asks the server to count the live entries of a scope; since another worker or
instance may add one at any time, only a scope found holding entries (or given one here) is
remembered, for ``HOLDS_SECONDS``.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qdrant_client import AsyncQdrantClient, models

from floopy.vectors.index import EXPIRES_AT, Entry, Hit, IndexUnavailable, clock, scope_of

if TYPE_CHECKING:
    from floopy.vectors.embedder import Vector

HOLDS_SECONDS = 10.0


class ServerIndex:
    kind = "qdrant"  # for /readyz

    def __init__(
        self, client: AsyncQdrantClient, name: str, keyword_fields: Sequence[str] = ()
    ) -> None:
        self.name = name
        self._client = client
        self._keyword_fields = tuple(keyword_fields)
        self._ready = False
        self._ready_lock = asyncio.Lock()
        # Scope -> until when (monotonic) it is taken to hold entries, and until when (Unix
        # time) one of them lives, when known.
        self._holding: dict[int, tuple[float, float]] = {}

    async def _ensure(self, size: int | None) -> bool:
        """Whether the collection exists, creating it when ``size`` is known."""
        if self._ready:
            return True
        async with self._ready_lock:
            if self._ready:
                return True
            if await self._client.collection_exists(self.name):
                self._ready = True
                return True
            if size is None:
                return False
            await self._client.create_collection(
                self.name,
                vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE),
            )
            indexes = [(f, models.PayloadSchemaType.KEYWORD) for f in self._keyword_fields]
            indexes.append((EXPIRES_AT, models.PayloadSchemaType.FLOAT))
            with warnings.catch_warnings():
                # Local mode filters without them and says so; a server uses them.
                warnings.filterwarnings("ignore", "Payload indexes have no effect")
                for field, schema in indexes:
                    await self._client.create_payload_index(self.name, field, schema)
            self._ready = True
            return True

    async def upsert(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        points = [
            models.PointStruct(
                id=e.id, vector=e.vector.tolist(), payload={**e.payload, EXPIRES_AT: e.expires_at}
            )
            for e in entries
        ]
        try:
            await self._ensure(len(entries[0].vector))
            await self._client.upsert(self.name, points=points, wait=False)
        except Exception as exc:  # transport errors, the server's refusals
            raise IndexUnavailable(f"vector index {self.name!r}: {exc}") from exc
        for e in entries:
            if all(field in e.payload for field in self._keyword_fields):
                scope = scope_of([e.payload[field] for field in self._keyword_fields])
                _, lives = self._holding.get(scope, (0.0, 0.0))
                self._holding[scope] = (time.monotonic() + HOLDS_SECONDS, max(lives, e.expires_at))

    async def holds(self, where: Mapping[str, str], now: float | None = None) -> bool:
        if set(where) != set(self._keyword_fields):
            return True
        scope = scope_of([where[field] for field in self._keyword_fields])
        until, lives = self._holding.get(scope, (0.0, 0.0))
        if until > time.monotonic() and lives > clock(now):
            return True
        conditions = self._conditions(where, now)
        try:
            if not await self._ensure(None):
                return False
            answer = await self._client.count(
                self.name, count_filter=models.Filter(must=conditions), exact=True
            )
        except Exception as exc:
            raise IndexUnavailable(f"vector index {self.name!r}: {exc}") from exc
        if answer.count == 0:
            return False
        if len(self._holding) > 100_000:  # scopes of passed traffic
            self._holding.clear()
        self._holding[scope] = (time.monotonic() + HOLDS_SECONDS, float("inf"))
        return True

    @staticmethod
    def _conditions(where: Mapping[str, str], now: float | None) -> list[Any]:
        conditions: list[Any] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in where.items()
        ]
        conditions.append(models.FieldCondition(key=EXPIRES_AT, range=models.Range(gt=clock(now))))
        return conditions

    async def search(
        self,
        vector: Vector,
        *,
        where: Mapping[str, str],
        threshold: float,
        limit: int = 1,
        now: float | None = None,
    ) -> list[Hit]:
        conditions = self._conditions(where, now)
        try:
            if not await self._ensure(None):
                return []
            answer = await self._client.query_points(
                self.name,
                query=vector.tolist(),
                query_filter=models.Filter(must=conditions),
                limit=limit,
                score_threshold=threshold,
                with_payload=True,
            )
        except Exception as exc:
            raise IndexUnavailable(f"vector index {self.name!r}: {exc}") from exc
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in answer.points]

    async def purge_expired(self, now: float | None = None) -> None:
        expired = models.Filter(
            must=[models.FieldCondition(key=EXPIRES_AT, range=models.Range(lte=clock(now)))]
        )
        try:
            if await self._ensure(None):
                await self._client.delete(
                    self.name, points_selector=models.FilterSelector(filter=expired)
                )
        except Exception as exc:
            raise IndexUnavailable(f"vector index {self.name!r}: {exc}") from exc

    async def close(self) -> None:
        await self._client.close()
