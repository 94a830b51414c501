"""The vector index protocol and the choice of engine: Qdrant's embedded engine under
``DATA_DIR`` by default, a Qdrant server when ``QDRANT_URL`` is set.

An index is one collection of entries: a vector, a payload and an expiry. A search returns
the nearest live entries whose payload matches every ``where`` field exactly (organization,
project, model...), at or above a cosine ``threshold``. Expired entries are never returned
and are purged from time to time. The collection is created on first use with the first
vector's size, so the embedder's dimensions need not be known in advance.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from floopy.settings import Settings
    from floopy.vectors.embedder import Vector

PayloadValue = str | int | float | bool | list[str]
EXPIRES_AT = "expires_at"  # payload field: Unix time after which the entry is dead
_NAMESPACE = uuid.UUID("6f3d1c2e-8a4b-4c1d-9e2f-5a7b3c9d0e1f")


class IndexUnavailable(Exception):
    """The index could not be reached or refused an operation: the caller goes on without
    it (a cache miss, a verdict-cache miss)."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str  # a UUID string; ``entry_id`` derives a stable one from a key
    vector: Vector
    payload: Mapping[str, PayloadValue]
    expires_at: float  # Unix time


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float  # cosine similarity
    payload: dict[str, Any] = field(default_factory=dict)


class VectorIndex(Protocol):
    name: str  # the collection

    async def upsert(self, entries: Sequence[Entry]) -> None:
        """Inserts or replaces entries (same id). Raises IndexUnavailable."""
        ...

    async def search(
        self,
        vector: Vector,
        *,
        where: Mapping[str, str],
        threshold: float,
        limit: int = 1,
        now: float | None = None,
    ) -> list[Hit]:
        """The nearest live entries matching ``where``, best first, scored at or above
        ``threshold``. Raises IndexUnavailable."""
        ...

    async def holds(self, where: Mapping[str, str], now: float | None = None) -> bool:
        """Whether a live entry may match ``where``: False only when a search with it would
        surely find nothing, so that a caller can skip what the search needs (an embedding).
        Raises IndexUnavailable."""
        ...

    async def purge_expired(self, now: float | None = None) -> None:
        """Deletes the entries whose expiry has passed."""
        ...

    async def close(self) -> None: ...


def entry_id(*parts: str) -> str:
    """A stable UUID for a key made of ``parts``: upserting it again replaces the entry."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def collection_name(purpose: str, embedder_name: str) -> str:
    """One collection per purpose and embedder: vectors of different models never mix."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{purpose}-{embedder_name}").strip("-").lower()


def clock(now: float | None) -> float:
    return time.time() if now is None else now


def scope_of(values: Sequence[PayloadValue]) -> int:
    """A number for the values of an index's keyword fields (``holds``): two scopes may
    share one, which only makes ``holds`` say True where it could have said False."""
    return hash(tuple(str(v) for v in values))


def build_index(
    settings: Settings, collection: str, keyword_fields: Sequence[str] = ()
) -> VectorIndex:
    """The index for ``collection``: on the Qdrant server at ``QDRANT_URL``, else embedded
    under ``DATA_DIR/vectors``. ``keyword_fields`` are indexed for filtering."""
    if settings.qdrant_url is not None:
        from qdrant_client import AsyncQdrantClient

        from floopy.vectors.server import ServerIndex

        # No version probe at start-up: a server not up yet must not hold the worker back.
        client = AsyncQdrantClient(url=settings.qdrant_url, timeout=5, check_compatibility=False)
        return ServerIndex(client, collection, keyword_fields)
    from floopy.vectors.edge import EdgeIndex

    return EdgeIndex(Path(settings.data_dir) / "vectors" / collection, collection, keyword_fields)
