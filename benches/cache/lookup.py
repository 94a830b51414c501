"""The semantic tier's lookup at 100k cached entries: the prompt embedded, the nearest vector
searched, the answer read, through the tier's own code (``VectorTier.lookup``), with
qdrant-edge (the default) and qdrant-client's local mode side by side.

The index holds N entries of one tenant, model and system prompt (the worst case for the
tier: every entry shares the request's key, so the key filter narrows nothing; synthetic unit
vectors, as in ``benches/vectors/search.py``, whose helpers this reuses). Each query is a new
prompt (embedded: no recent vector to reuse) whose nearest entry is looked up, then the same
prompt again (its vector from the tier's recent vectors). Also measured apart: the embedder
alone with one and two onnxruntime threads, and the search alone with HNSW's ``ef`` at its
default and lower, and exact (no graph).

    nice .venv/bin/python benches/cache/lookup.py --entries 100000 --queries 200 \
        --client-queries 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from floopy.pipeline.cache.semantic import FIELDS, Vectors, VectorTier
from floopy.pipeline.cache.tier import Hit, Query
from floopy.vectors import Entry, VectorIndex
from floopy.vectors.edge import EdgeIndex
from floopy.vectors.index import entry_id
from floopy.vectors.minilm import LocalEmbedder
from floopy.vectors.server import ServerIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
from search import PROMPTS, synthetic

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cache_lookup.json"
FAR = 4e12  # entries never expire during the bench


def query(text: str) -> Query:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
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


def ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
    }


async def tier_lookups(tier: VectorTier, prompts: list[str]) -> dict[str, Any]:
    cold, warm = [], []
    for text in prompts:
        for times in (cold, warm):  # a new prompt, then the same again
            started = time.perf_counter()
            outcome = await tier.lookup(query(text))
            times.append(time.perf_counter() - started)
            assert not isinstance(outcome, Hit)  # synthetic neighbours are far
    return {"new prompt": ms(cold), "repeated prompt": ms(warm)}


def embed_alone(prompts: list[str]) -> dict[str, Any]:
    import onnxruntime

    from floopy.vectors import minilm

    report = {}
    for threads in (1, 2):
        model = minilm._Model()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        model.session = onnxruntime.InferenceSession(
            str(minilm.packaged_file(*minilm._MODEL_FILE)),
            options,
            providers=["CPUExecutionProvider"],
        )
        model.run(["warm up"])
        times = []
        for text in prompts:
            started = time.perf_counter()
            model.run([text])
            times.append(time.perf_counter() - started)
        report[f"{threads} thread(s)"] = ms(times)
    return report


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
    conditions: list[Any] = [qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in where.items()]
    report = {}
    for label, params in (
        ("hnsw ef 100 (the index's, Qdrant's default)", qe.SearchParams(hnsw_ef=100)),
        ("hnsw ef 64", qe.SearchParams(hnsw_ef=64)),
        ("hnsw ef 32", qe.SearchParams(hnsw_ef=32)),
        ("exact", qe.SearchParams(exact=True)),
    ):
        times, found = [], 0
        for pick, probe in zip(picks, probes, strict=True):
            request = qe.SearchRequest(
                query=qe.Query.Nearest(probe.tolist()),
                limit=4,
                filter=qe.Filter(must=conditions),
                params=params,
                with_payload=True,
                score_threshold=0.9,
            )
            started = time.perf_counter()
            hits = shard.search(request)
            times.append(time.perf_counter() - started)
            found += bool(hits) and str(hits[0].id) == entry_id("bench", str(pick))
        report[label] = {**ms(times), "found": found / count}
    return report


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--client-queries", type=int, default=10, help="0: edge only")
    args = parser.parse_args()
    prompts = texts(args.queries)
    report: dict[str, Any] = {"entries": args.entries, "queries": args.queries}
    report["embed alone"] = embed_alone(prompts)
    print("embed alone", json.dumps(report["embed alone"]), flush=True)
    vectors = synthetic(args.entries, seed=7)
    embedder = LocalEmbedder()
    await embedder.embed(["warm up"])
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
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
