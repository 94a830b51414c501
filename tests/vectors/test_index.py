"""One contract for both vector indexes: the embedded engine (qdrant-edge) and qdrant-client
(its local mode here; a server in production)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from floopy.settings import load_settings
from floopy.vectors import Entry, VectorIndex, build_index
from floopy.vectors.edge import EdgeIndex
from floopy.vectors.index import collection_name, entry_id
from floopy.vectors.server import ServerIndex

NOW = 1_800_000_000.0


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def edge(tmp_path: Path) -> VectorIndex:
    return EdgeIndex(tmp_path / "things", "things", ["organization", "model"])


def client_local_mode(tmp_path: Path) -> VectorIndex:
    return ServerIndex(AsyncQdrantClient(location=":memory:"), "things", ["organization", "model"])


IndexFactory = Callable[[Path], VectorIndex]


@pytest.fixture(params=[edge, client_local_mode], ids=["qdrant-edge", "qdrant-client"])
def make(request: pytest.FixtureRequest) -> IndexFactory:
    factory: IndexFactory = request.param
    return factory


def run(test: Callable[[VectorIndex], Coroutine[Any, Any, None]], index: VectorIndex) -> None:
    async def main() -> None:
        try:
            await test(index)
        finally:
            await index.close()

    asyncio.run(main())


def entry(key: str, vector: np.ndarray, ttl: float = 60.0, **payload: Any) -> Entry:
    return Entry(entry_id(key), vector, {"organization": "acme", **payload}, NOW + ttl)


def test_an_empty_index_finds_nothing(make: IndexFactory, tmp_path: Path) -> None:
    async def test(index: VectorIndex) -> None:
        assert await index.search(unit(1, 0, 0), where={}, threshold=0.0, now=NOW) == []

    run(test, make(tmp_path))


def test_the_nearest_match_above_the_threshold_is_found(make: IndexFactory, tmp_path: Path) -> None:
    async def test(index: VectorIndex) -> None:
        await index.upsert(
            [entry("a", unit(1, 0, 0), label="a"), entry("b", unit(1, 1, 0), label="b")]
        )
        hits = await index.search(unit(1, 0.1, 0), where={}, threshold=0.5, limit=2, now=NOW)
        assert [h.payload["label"] for h in hits] == ["a", "b"]
        assert hits[0].score > hits[1].score and hits[0].id == entry_id("a")
        assert await index.search(unit(0, 0, 1), where={}, threshold=0.5, now=NOW) == []

    run(test, make(tmp_path))


def test_payload_fields_filter_exactly(make: IndexFactory, tmp_path: Path) -> None:
    async def test(index: VectorIndex) -> None:
        await index.upsert(
            [
                entry("acme", unit(1, 0, 0), model="m1"),
                Entry(entry_id("other"), unit(1, 0, 0), {"organization": "globex"}, NOW + 60),
            ]
        )
        where = {"organization": "acme", "model": "m1"}
        hits = await index.search(unit(1, 0, 0), where=where, threshold=0.9, now=NOW)
        assert [h.id for h in hits] == [entry_id("acme")]
        where = {"organization": "acme", "model": "m2"}
        assert await index.search(unit(1, 0, 0), where=where, threshold=0.9, now=NOW) == []
        where = {"organization": "initech"}
        assert await index.search(unit(1, 0, 0), where=where, threshold=0.9, now=NOW) == []

    run(test, make(tmp_path))


def test_expired_entries_are_never_found_and_are_purged(make: IndexFactory, tmp_path: Path) -> None:
    async def test(index: VectorIndex) -> None:
        await index.upsert([entry("old", unit(1, 0, 0), ttl=10), entry("new", unit(0, 1, 0))])
        found = await index.search(unit(1, 0, 0), where={}, threshold=0.9, now=NOW + 5)
        assert [h.id for h in found] == [entry_id("old")]
        assert await index.search(unit(1, 0, 0), where={}, threshold=0.9, now=NOW + 11) == []
        await index.purge_expired(now=NOW + 11)
        # Purged: gone even for a clock that would still find it live.
        assert await index.search(unit(1, 0, 0), where={}, threshold=0.9, now=NOW) == []
        assert len(await index.search(unit(0, 1, 0), where={}, threshold=0.9, now=NOW)) == 1

    run(test, make(tmp_path))


def test_upserting_the_same_id_replaces_the_entry(make: IndexFactory, tmp_path: Path) -> None:
    async def test(index: VectorIndex) -> None:
        await index.upsert([entry("k", unit(1, 0, 0), label="first")])
        await index.upsert([entry("k", unit(1, 0, 0), label="second")])
        hits = await index.search(unit(1, 0, 0), where={}, threshold=0.9, limit=5, now=NOW)
        assert [h.payload["label"] for h in hits] == ["second"]

    run(test, make(tmp_path))


def test_holds_says_whether_a_search_could_find_a_live_entry_of_the_scope(
    make: IndexFactory, tmp_path: Path
) -> None:
    acme_m1 = {"organization": "acme", "model": "m1"}

    async def test(index: VectorIndex) -> None:
        await index.upsert([entry("a", unit(1, 0, 0), ttl=10, model="m1")])
        assert await index.holds(acme_m1, now=NOW)
        assert not await index.holds({"organization": "acme", "model": "m2"}, now=NOW)
        assert not await index.holds({"organization": "globex", "model": "m1"}, now=NOW)
        assert not await index.holds(acme_m1, now=NOW + 11)  # expired
        # A scope over other fields than the indexed ones: not known, so maybe.
        assert await index.holds({"organization": "acme"}, now=NOW)

    run(test, make(tmp_path))


def test_an_embedded_index_found_on_disk_knows_its_scopes_once_read(tmp_path: Path) -> None:
    async def write(index: VectorIndex) -> None:
        await index.upsert([entry("kept", unit(1, 0, 0), model="m1")])

    async def read(index: VectorIndex) -> None:
        where = {"organization": "acme", "model": "m1"}
        assert await index.holds(where, now=NOW)  # not read yet: maybe
        for _ in range(200):  # read in the background
            if not await index.holds({"organization": "acme", "model": "m2"}, now=NOW):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the shard found on disk was never read")
        assert await index.holds(where, now=NOW)
        assert not await index.holds(where, now=NOW + 61)

    run(write, edge(tmp_path))
    run(read, edge(tmp_path))


def test_the_embedded_index_keeps_its_entries_across_a_restart(tmp_path: Path) -> None:
    async def write(index: VectorIndex) -> None:
        await index.upsert([entry("kept", unit(1, 0, 0))])

    async def read(index: VectorIndex) -> None:
        hits = await index.search(unit(1, 0, 0), where={}, threshold=0.9, now=NOW)
        assert [h.id for h in hits] == [entry_id("kept")]

    run(write, edge(tmp_path))
    run(read, edge(tmp_path))


def test_two_processes_worth_of_embedded_indexes_take_separate_shards(tmp_path: Path) -> None:
    async def main() -> None:
        first, second = edge(tmp_path), edge(tmp_path)
        try:
            await first.upsert([entry("one", unit(1, 0, 0))])
            await second.upsert([entry("two", unit(1, 0, 0))])
        finally:
            await first.close()
            await second.close()

    asyncio.run(main())
    assert sorted(p.name for p in (tmp_path / "things").iterdir() if p.is_dir()) == [
        "slot-0",
        "slot-1",
    ]


def test_the_engine_follows_qdrant_url(tmp_path: Path) -> None:
    embedded = build_index(load_settings({"FLOOPY_DATA_DIR": str(tmp_path)}), "c")
    server = build_index(load_settings({"FLOOPY_QDRANT_URL": "http://127.0.0.1:1"}), "c")
    assert isinstance(embedded, EdgeIndex) and isinstance(server, ServerIndex)
    asyncio.run(server.close())


def test_collections_are_per_purpose_and_embedder() -> None:
    assert collection_name("firewall-verdicts", "local:all-MiniLM-L6-v2-int8") == (
        "firewall-verdicts-local-all-minilm-l6-v2-int8"
    )
