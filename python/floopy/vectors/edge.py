"""Qdrant's embedded engine (qdrant-edge): a shard on local disk, in this process.

Each worker process opens a shard of its own: the first free ``slot-N`` directory under the
collection's path, held with an exclusive file lock for the life of the process, since a
shard is not shared between processes (set ``QDRANT_URL`` for one index shared by every
worker and instance). Shard calls block, so they run on one thread of the index's own, which
also keeps them in order. Search runs on the shard's own search threads.

The shard is this process's alone, so the index knows what it holds: for each combination
of its keyword fields' values (a scope), the latest expiry among its entries, kept as
entries are added (and read from a shard found on disk, once, in the background). ``holds``
answers from it without a call to the shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import qdrant_edge as qe

from floopy.vectors.index import EXPIRES_AT, Entry, Hit, IndexUnavailable, clock, scope_of

if TYPE_CHECKING:
    from floopy.vectors.embedder import Vector

T = TypeVar("T")
MAX_SLOTS = 64
# Build the HNSW graph once this many entries were added since the last time: until then new
# entries are searched exactly (about 10 ms at 100k on one core). Optimizing holds the index's
# thread for as long as it takes (seconds at 100k), so it is rare.
OPTIMIZE_EVERY = 20_000
# Candidates the HNSW search keeps: Qdrant's default (the graph's ef_construct). 64 searched
# 100k entries 0.7 ms faster and found the planted neighbour 91 % of the time against 95.5 %
# (benches/RESULTS.md, "Cache: the semantic tier"): not worth a cache's hits.
SEARCH_EF = 100
SCAN_PAGE = 1000  # entries read at a time from a shard found on disk


class EdgeIndex:
    kind = "embedded"  # for /readyz

    def __init__(
        self,
        path: Path,
        name: str,
        keyword_fields: Sequence[str] = (),
        *,
        optimize_every: int = OPTIMIZE_EVERY,
    ) -> None:
        self.name = name
        self._optimize_every = optimize_every
        self._path = path
        self._keyword_fields = tuple(keyword_fields)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floopy-vectors")
        self._shard: qe.EdgeShard | None = None
        self._lock_file: IO[bytes] | None = None
        self._slot: Path | None = None
        self._since_optimize = 0
        # Scope -> the latest expiry of its entries; None until known (a shard found on disk
        # is read first), and then ``holds`` says True.
        self._expiries: dict[int, float] | None = None
        self._reading: asyncio.Task[None] | None = None

    async def _call(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, work)
        except IndexUnavailable:
            raise
        except Exception as exc:  # the engine's own errors carry no common class
            raise IndexUnavailable(f"vector index {self.name!r}: {exc}") from exc

    def _open(self, size: int | None) -> qe.EdgeShard | None:
        """The shard, opened or created on first use; None before the first vector when
        none exists yet (a search on an empty index)."""
        if self._shard is not None:
            return self._shard
        slot = self._claim_slot()
        if any(slot.iterdir()):
            self._shard = qe.EdgeShard.load(str(slot))
            self._expiries = self._read_expiries(self._shard)
            return self._shard
        self._expiries = {}  # nothing on disk: every entry will come through ``_upsert``
        if size is None:
            return None
        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine))
        shard = qe.EdgeShard.create(str(slot), config)
        for field in self._keyword_fields:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        shard.update(qe.UpdateOperation.create_field_index(EXPIRES_AT, qe.PayloadSchemaType.Float))
        self._shard = shard
        return shard

    def _claim_slot(self) -> Path:
        if self._slot is not None:
            return self._slot
        self._path.mkdir(parents=True, exist_ok=True)
        for n in range(MAX_SLOTS):
            handle = open(self._path / f"slot-{n}.lock", "wb")  # noqa: SIM115 (held open)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._lock_file = handle
            self._slot = self._path / f"slot-{n}"
            self._slot.mkdir(exist_ok=True)
            return self._slot
        raise IndexUnavailable(f"all {MAX_SLOTS} shards of {self.name!r} are held by processes")

    async def upsert(self, entries: Sequence[Entry]) -> None:
        if entries:
            await self._call(lambda: self._upsert(entries))

    def _upsert(self, entries: Sequence[Entry]) -> None:
        shard = self._open(len(entries[0].vector))
        assert shard is not None
        points = [
            qe.Point(e.id, e.vector.tolist(), {**e.payload, EXPIRES_AT: e.expires_at})
            for e in entries
        ]
        shard.update(qe.UpdateOperation.upsert_points(points))
        expiries = self._expiries
        if expiries is not None and not all(
            self._note(expiries, e.payload, e.expires_at) for e in entries
        ):
            self._expiries = None
        self._since_optimize += len(points)
        if self._since_optimize >= self._optimize_every:
            self._since_optimize = 0
            shard.optimize()

    def _note(self, expiries: dict[int, float], payload: Mapping[str, Any], at: float) -> bool:
        """Counts an entry in its scope; False for an entry outside every scope (missing
        a keyword field), after which what the shard holds is no longer known."""
        if not all(field in payload for field in self._keyword_fields):
            return False
        scope = scope_of([payload[field] for field in self._keyword_fields])
        if at > expiries.get(scope, 0.0):
            expiries[scope] = at
        return True

    def _read_expiries(self, shard: qe.EdgeShard) -> dict[int, float] | None:
        """Each scope's latest expiry, from every entry of a shard found on disk."""
        expiries: dict[int, float] = {}
        fields = [*self._keyword_fields, EXPIRES_AT]
        offset: Any = None
        while True:
            request = qe.ScrollRequest(offset=offset, limit=SCAN_PAGE, with_payload=fields)
            records, offset = shard.scroll(request)
            for record in records:
                payload = dict(record.payload or {})
                if not self._note(expiries, payload, float(payload.get(EXPIRES_AT, 0.0))):
                    return None
            if offset is None:
                return expiries

    async def holds(self, where: Mapping[str, str], now: float | None = None) -> bool:
        if self._expiries is None and self._shard is None and self._reading is None:
            # Opening reads a shard found on disk: in the background, once.
            self._reading = asyncio.ensure_future(self._open_quietly())
        expiries = self._expiries
        if expiries is None or set(where) != set(self._keyword_fields):
            return True
        scope = scope_of([where[field] for field in self._keyword_fields])
        return expiries.get(scope, 0.0) > clock(now)

    async def _open_quietly(self) -> None:
        with contextlib.suppress(IndexUnavailable):  # the next search or write reports it
            await self._call(lambda: self._open(None))

    async def search(
        self,
        vector: Vector,
        *,
        where: Mapping[str, str],
        threshold: float,
        limit: int = 1,
        now: float | None = None,
    ) -> list[Hit]:
        conditions: list[Any] = [
            qe.FieldCondition(key, match=qe.MatchValue(value)) for key, value in where.items()
        ]
        conditions.append(qe.FieldCondition(EXPIRES_AT, range=qe.RangeFloat(gt=clock(now))))
        request = qe.SearchRequest(
            query=qe.Query.Nearest(vector.tolist()),
            limit=limit,
            filter=qe.Filter(must=conditions),
            params=qe.SearchParams(hnsw_ef=SEARCH_EF),
            with_payload=True,
            score_threshold=threshold,
        )
        return await self._call(lambda: self._search(request))

    def _search(self, request: qe.SearchRequest) -> list[Hit]:
        shard = self._open(None)
        if shard is None:
            return []
        return [
            Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in shard.search(request)
        ]

    async def purge_expired(self, now: float | None = None) -> None:
        at = clock(now)
        expired = qe.Filter(must=[qe.FieldCondition(EXPIRES_AT, range=qe.RangeFloat(lte=at))])
        await self._call(lambda: self._delete(expired, at))

    def _delete(self, where: qe.Filter, now: float) -> None:
        shard = self._open(None)
        if shard is not None:
            shard.update(qe.UpdateOperation.delete_points_by_filter(where))
        if self._expiries is not None:  # the scopes whose entries all expired
            self._expiries = {scope: at for scope, at in self._expiries.items() if at > now}

    async def optimize(self) -> None:
        """Builds the HNSW graph over what was added (the bench calls it after loading)."""
        await self._call(lambda: self._shard.optimize() if self._shard is not None else False)

    async def close(self) -> None:
        def close() -> None:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None

        try:
            await self._call(close)
        finally:
            self._thread.shutdown(wait=False)
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None
