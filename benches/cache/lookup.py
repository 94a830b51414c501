"""The semantic tier's lookup at 100k cached entries: the prompt embedded, the nearest vector
searched, the answer read, through the tier's own code (``VectorTier.lookup``), with
qdrant-edge (the default) and qdrant-client's local mode side by side.

The index holds N entries of one tenant, model and system prompt (the worst case for the
tier: every entry shares the request's key, so the key filter narrows nothing; synthetic unit
vectors, as in ``benches/vectors/search.py``, whose helpers this reuses). Each query is a new
prompt (embedded: no recent vector to reuse) whose nearest entry is looked up, then the same
prompt again (its vector from the tier's recent vectors), then a new prompt under another
system prompt, whose key no entry has (a miss that cannot hit: what it costs to find that
out). Each lookup is timed on the wall clock and in CPU time (the process's, every thread of
it: the embedder's, the index's and Qdrant's own), which a shared machine disturbs less.
Also measured apart: the cache's embedder alone, and the search alone with HNSW's ``ef`` at
its default and lower, and exact (no graph).

    nice .venv/bin/python benches/cache/lookup.py --entries 100000 --queries 400 \
        --client-queries 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import qdrant_edge as qe
from qdrant_client import AsyncQdrantClient

from floopy.pipeline.cache.memory import MemoryStore
from floopy.pipeline.cache.semantic import FIELDS, SCOPE, Vectors, VectorTier
from floopy.pipeline.cache.tier import Hit, Query
from floopy.vectors import Entry, VectorIndex
from floopy.vectors.edge import EdgeIndex
from floopy.vectors.index import EXPIRES_AT, entry_id
from floopy.vectors.minilm import LocalEmbedder
from floopy.vectors.server import ServerIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
from search import PROMPTS, synthetic

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cache_lookup.json"
FAR = 4e12  # entries never expire during the bench


def query(text: str, system: str | None = None) -> Query:
    messages = [{"role": "user", "content": text}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    body = {"model": "gpt-4o-mini", "messages": messages}
    return Query(
        api="chat",
        body=msgspec.json.encode(body),
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


ANIMALS = ["cats", "dogs", "owls", "foxes", "bees", "whales", "crows", "goats", "ducks", "seals"]
COLOURS = ["red", "green", "blue", "amber", "violet", "teal", "ochre", "white", "black", "grey"]
TONES = ["formal", "casual", "terse", "warm", "playful"]


def texts(count: int) -> list[str]:
    """Distinct realistic prompts, each new to the embedder, without numbers or negations so
    that they share the stored entries' literals (the worst case: nothing filtered out)."""
    return [
        f"{PROMPTS[n % len(PROMPTS)]} Mention {ANIMALS[n % 10]} and {COLOURS[n // 10 % 10]}"
        f" in a {TONES[n // 100 % 5]} tone."
        for n in range(count)
    ]


async def load(index: VectorIndex, key_fields: dict[str, str], vectors: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(vectors), 2000):
        await index.upsert(
            [
                Entry(
                    entry_id("bench", str(i)),
                    vectors[i],
                    {**key_fields, "answer": f"semantic-{i}", "words": ["x"]},
                    FAR,
                )
                for i in range(start, min(start + 2000, len(vectors)))
            ]
        )
    if isinstance(index, EdgeIndex):
        await index.optimize()
    return time.perf_counter() - started


def quantiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return round(ordered[round(q * (len(ordered) - 1))] * 1000, 3)

    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
    }


class Timed:
    """Wall and CPU time (the process's: every thread of it) of each measured call."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def start(self) -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def stop(self, started: tuple[float, float]) -> None:
        self.wall.append(time.perf_counter() - started[0])
        self.cpu.append(time.process_time() - started[1])

    def report(self) -> dict[str, Any]:
        return {**quantiles(self.wall), "cpu": quantiles(self.cpu)}


async def tier_lookups(tier: VectorTier, prompts: list[str]) -> dict[str, Any]:
    cold, warm, elsewhere = Timed(), Timed(), Timed()
    for text in prompts:
        # A new prompt, the same again, then a new one where no entry shares its key.
        for timed, q in (
            (cold, query(text)),
            (warm, query(text)),
            (elsewhere, query(f"{text} Again.", system="Answer as a pirate.")),
        ):
            started = timed.start()
            outcome = await tier.lookup(q)
            timed.stop(started)
            assert not isinstance(outcome, Hit)  # synthetic neighbours are far
    return {
        "new prompt": cold.report(),
        "repeated prompt": warm.report(),
        "new prompt, no entry with its key": elsewhere.report(),
    }


def cache_embedder() -> LocalEmbedder:
    """The embedder the cache builds for itself with ``EMBEDDING_MODEL = "local"``."""
    return LocalEmbedder(int8_activations=True)


def embed_alone(embedder: LocalEmbedder, prompts: list[str]) -> dict[str, Any]:
    """The embedder's own work on the calling thread (no thread hand-off)."""
    timed = Timed()
    for text in prompts:
        started = timed.start()
        embedder.embed_sync([f"{text} Alone."])
        timed.stop(started)
    return timed.report()


def search_alone(
    index: EdgeIndex, where: dict[str, str], count: int, stored: np.ndarray
) -> dict[str, Any]:
    """Each probe a stored vector moved a little (cosine about 0.95 to it, as a paraphrase
    is): the search must find that entry; ``found`` is the share it did."""
    shard = index._shard
    assert shard is not None
    picks = [(n * 7919) % len(stored) for n in range(count)]
    noise = np.random.default_rng(11).standard_normal((count, stored.shape[1])) * 0.017
    moved = stored[picks] + noise.astype(np.float32)
    probes = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    # What the tier's search filters on: its scope, live entries.
    conditions: list[Any] = [
        qe.FieldCondition(SCOPE, match=qe.MatchValue(where[SCOPE])),
        qe.FieldCondition(EXPIRES_AT, range=qe.RangeFloat(gt=time.time())),
    ]
    report = {}
    for label, params in (
        ("hnsw ef 100 (the index's, Qdrant's default)", qe.SearchParams(hnsw_ef=100)),
        ("hnsw ef 64", qe.SearchParams(hnsw_ef=64)),
        ("hnsw ef 32", qe.SearchParams(hnsw_ef=32)),
        ("exact", qe.SearchParams(exact=True)),
    ):
        timed, found = Timed(), 0
        for pick, probe in zip(picks, probes, strict=True):
            request = qe.SearchRequest(
                query=qe.Query.Nearest(probe.tolist()),
                limit=4,
                filter=qe.Filter(must=conditions),
                params=params,
                with_payload=True,
                score_threshold=0.9,
            )
            started = timed.start()
            hits = shard.search(request)
            timed.stop(started)
            found += bool(hits) and str(hits[0].id) == entry_id("bench", str(pick))
        report[label] = {**timed.report(), "found": found / count}
    return report


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--client-queries", type=int, default=10, help="0: edge only")
    args = parser.parse_args()
    prompts = texts(args.queries)
    report: dict[str, Any] = {
        "entries": args.entries,
        "queries": args.queries,
        "load average at start": os.getloadavg(),
    }
    embedder = cache_embedder()
    await embedder.embed(["warm up"])
    report["embedder"] = embedder.name
    report["embed alone"] = embed_alone(embedder, prompts)
    print("embed alone", json.dumps(report["embed alone"]), flush=True)
    vectors = synthetic(args.entries, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        engines: dict[str, VectorIndex] = {
            "qdrant-edge": EdgeIndex(Path(tmp) / "edge", "bench", FIELDS, optimize_every=10**9),
            "qdrant-client local mode": ServerIndex(
                AsyncQdrantClient(location=":memory:"), "bench", FIELDS
            ),
        }
        if args.client_queries == 0:
            del engines["qdrant-client local mode"]
        for name, index in engines.items():
            store = MemoryStore(1 << 28)
            vectors_ = Vectors(embedder, index, store, threshold=0.9, timeout=60.0, max_chars=2000)
            vectors_.ready = True
            tier = VectorTier(vectors_, multi_turn=False)
            probe = query(prompts[0])
            assert tier.applies(probe)
            talk = probe.conversation
            assert talk
            where = tier._where(probe, talk)
            # Every entry shares the queries' key: the filter keeps all 100k.
            seconds = await load(index, where, vectors)
            count = args.queries if isinstance(index, EdgeIndex) else args.client_queries
            row: dict[str, Any] = {"load_s": round(seconds, 1), "queries": count}
            row.update(await tier_lookups(tier, prompts[:count]))
            if isinstance(index, EdgeIndex):
                row["search alone"] = search_alone(index, where, args.queries, vectors)
            report[name] = row
            print(name, json.dumps(row), flush=True)
            await index.close()
    await embedder.close()
    report["load average at end"] = os.getloadavg()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
