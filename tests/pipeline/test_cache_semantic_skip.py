"""The semantic tier embeds only where it could find something: a lookup in a scope the index
holds no live entry of is a miss without an embedding, and the prompt is embedded when its
answer is stored; once the scope holds entries, lookups embed and search. With both engines
(the embedded one knows its scopes, a Qdrant server is asked to count)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from floopy.pipeline.cache import answer
from floopy.pipeline.cache.memory import MemoryStore
from floopy.pipeline.cache.semantic import FIELDS, Vectors, VectorTier
from floopy.pipeline.cache.tier import Hit, Query
from floopy.vectors import Vector, VectorIndex
from floopy.vectors.edge import EdgeIndex
from floopy.vectors.server import ServerIndex


class CountingEmbedder:
    """A vector per word count and length: the same text, the same vector; every call
    counted."""

    name = "counting"

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.texts.extend(texts)
        out = []
        for text in texts:
            vector = np.array([len(text), len(text.split()), 1.0], dtype=np.float32)
            out.append(vector / np.linalg.norm(vector))
        return out

    async def close(self) -> None:
        pass


def query(text: str, system: str = "Be brief.") -> Query:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    body = msgspec.json.encode({"model": "gpt-4o-mini", "messages": messages})
    return Query(
        api="chat",
        body=body,
        organization="acme",
        project="web",
        routing="\0",
        seed=None,
        ignore_keys=[],
        bucket_size=1,
        bucketed=False,
        ttl=3600.0,
        stream=False,
        include_usage=False,
    )


def edge(tmp_path: Path) -> VectorIndex:
    return EdgeIndex(tmp_path / "vectors", "cache", FIELDS)


def client_local_mode(tmp_path: Path) -> VectorIndex:
    return ServerIndex(AsyncQdrantClient(location=":memory:"), "cache", FIELDS)


@pytest.fixture(params=[edge, client_local_mode], ids=["qdrant-edge", "qdrant-client"])
def make(request: pytest.FixtureRequest) -> Callable[[Path], VectorIndex]:
    factory: Callable[[Path], VectorIndex] = request.param
    return factory


async def opened(index: VectorIndex, tier: VectorTier, asked: Query) -> None:
    """Until the embedded engine has opened its shard (in the background, on the first
    ``holds``), it cannot tell: wait for that."""
    assert asked.conversation
    where = tier._where(asked, asked.conversation)
    for _ in range(1000):
        if not await index.holds(where):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the index never opened")


def test_a_scope_without_entries_is_missed_without_an_embedding(
    make: Callable[[Path], VectorIndex], tmp_path: Path
) -> None:
    async def main() -> None:
        embedder, index = CountingEmbedder(), make(tmp_path)
        vectors = Vectors(
            embedder, index, MemoryStore(1 << 20), threshold=0.9, timeout=5.0, max_chars=2000
        )
        tier = VectorTier(vectors, multi_turn=False)
        stored = answer.entry("chat", b'{"id": "stored"}', "mock", "m", None, "stop").encode()
        try:
            asked = query("What is the capital of France?")
            assert tier.applies(asked)
            await opened(index, tier, asked)
            miss = await tier.lookup(asked)
            assert not isinstance(miss, Hit)
            assert embedder.texts == []  # nothing to find: nothing embedded
            assert await miss.store(stored)
            assert embedder.texts == ["What is the capital of France?"]  # embedded to store

            again = query("What is the capital of France?")
            assert tier.applies(again)
            hit = await tier.lookup(again)
            assert isinstance(hit, Hit) and hit.tier == "semantic"
            assert embedder.texts == ["What is the capital of France?"]  # its recent vector

            # Another system prompt: another scope, still empty, still not embedded.
            elsewhere = query("What is the capital of Spain?", system="Be long.")
            assert tier.applies(elsewhere)
            assert not isinstance(await tier.lookup(elsewhere), Hit)
            assert embedder.texts == ["What is the capital of France?"]

            # The scope holds an entry: a new prompt in it is embedded and searched.
            near = query("What is the capital of Spain?")
            assert tier.applies(near)
            assert not isinstance(await tier.lookup(near), Hit)  # another entity: no hit
            assert embedder.texts[-1] == "What is the capital of Spain?"
        finally:
            await index.close()

    asyncio.run(main())
