"""The verdict cache: embeddings of texts a classifier found unsafe, so that a similar text
is stopped without asking it again.

Only unsafe verdicts are stored (a safe verdict is never reused: the next similar text may
be the attack), with their categories, score, backend and model, for ``verdict_cache_ttl``
seconds. A lookup matches at or above ``verdict_cache_similarity`` (cosine, 0.95 by
default), within the request's organization unless ``verdict_cache_shared`` shares verdicts
between organizations. Same embedder and vector index as the semantic cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from floopy.pipeline.firewall.verdict import Verdict
from floopy.vectors import Entry
from floopy.vectors.index import entry_id

if TYPE_CHECKING:
    from floopy.vectors import Embedder, Vector, VectorIndex

SHARED = ""  # the organization recorded when verdicts are shared


class VerdictCache:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        *,
        similarity: float,
        ttl: float,
        shared: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self._similarity = similarity
        self._ttl = ttl
        self._shared = shared
        self._clock = clock

    def _scope(self, organization: str | None) -> str:
        return SHARED if self._shared else (organization or "")

    async def embed(self, windows: Sequence[str]) -> list[Vector]:
        return await self.embedder.embed(windows)

    async def lookup(self, vectors: Sequence[Vector], organization: str | None) -> Verdict | None:
        """The stored unsafe verdict nearest to any window, or None."""
        where = {"organization": self._scope(organization)}
        best = None
        for vector in vectors:
            hits = await self.index.search(
                vector, where=where, threshold=self._similarity, now=self._clock()
            )
            if hits and (best is None or hits[0].score > best.score):
                best = hits[0]
        if best is None:
            return None
        payload = best.payload
        return Verdict(
            "unsafe",
            float(payload.get("score", 1.0)),
            tuple(payload.get("categories", ())),
            str(payload.get("backend", "")) or None,
            str(payload.get("model", "")) or None,
            from_cache=True,
        )

    async def store(
        self,
        windows: Sequence[str],
        vectors: Sequence[Vector],
        verdicts: Sequence[Verdict],
        organization: str | None,
    ) -> None:
        """Stores the unsafe windows' verdicts."""
        scope = self._scope(organization)
        expires_at = self._clock() + self._ttl
        entries = [
            Entry(
                entry_id(scope, text),
                vector,
                {
                    "organization": scope,
                    "categories": list(verdict.categories),
                    "score": verdict.score if verdict.score is not None else 1.0,
                    "backend": verdict.backend or "",
                    "model": verdict.model or "",
                },
                expires_at,
            )
            for text, vector, verdict in zip(windows, vectors, verdicts, strict=True)
            if verdict.outcome == "unsafe"
        ]
        await self.index.upsert(entries)
