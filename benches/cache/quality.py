"""Precision and recall of the semantic and advanced tiers on the labelled pairs of
``pairs.jsonl``, through the tiers' own code (the embedder, the embedded vector index, the
in-memory store, the wording check).

Each row is a prompt ``a`` answered and stored, then a prompt ``b`` asked: ``hit`` says
whether ``b`` should get ``a``'s answer (a paraphrase) or not (a near miss: another number,
a negation, another entity, unit or programming language). Advanced rows carry the earlier
turns both share; each advanced ``a`` is also asked after another row's earlier turns, which
must never hit. Each row is looked up in a project of its own, so rows never see each other.

Reported: true and false hits per tier at the threshold (``CACHE_SEMANTIC_THRESHOLD`` unless
``--threshold``), precision and recall, and a sweep of thresholds computed from the same
similarities with and without the wording check.

    nice .venv/bin/python benches/cache/quality.py [--shipped]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from floopy.pipeline.cache import answer
from floopy.pipeline.cache.memory import MemoryStore
from floopy.pipeline.cache.semantic import FIELDS, Vectors, VectorTier
from floopy.pipeline.cache.tier import Hit, Query
from floopy.pipeline.cache.wording import wording
from floopy.settings import defaults
from floopy.vectors.edge import EdgeIndex
from floopy.vectors.minilm import LocalEmbedder

PAIRS = Path(__file__).resolve().parent / "pairs.jsonl"
RESULTS = Path(__file__).resolve().parents[1] / "results" / "cache_quality.json"
SWEEP = (0.8, 0.85, 0.88, 0.9, 0.92, 0.95, 0.97, 0.99)


@dataclass
class Counts:
    true_hits: int = 0
    false_hits: int = 0
    missed: int = 0  # paraphrases that did not hit
    kept_apart: int = 0  # near misses that did not hit

    def add(self, expected: bool, got: bool) -> None:
        if got:
            self.true_hits += expected
            self.false_hits += not expected
        else:
            self.missed += expected
            self.kept_apart += not expected

    def report(self) -> dict[str, Any]:
        hits = self.true_hits + self.false_hits
        positives = self.true_hits + self.missed
        return {
            **self.__dict__,
            "precision": round(self.true_hits / hits, 4) if hits else None,
            "recall": round(self.true_hits / positives, 4) if positives else None,
        }


def load_pairs(path: Path = PAIRS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def body(history: list[dict[str, str]], text: str) -> bytes:
    messages = [*history, {"role": "user", "content": text}]
    return msgspec.json.encode({"model": "gpt-4o-mini", "messages": messages})


def query(project: str, history: list[dict[str, str]], text: str) -> Query:
    return Query(
        api="chat",
        body=body(history, text),
        organization="bench",
        project=project,
        routing="\0",
        seed=None,
        ignore_keys=[],
        bucket_size=1,
        bucketed=False,
        ttl=3600.0,
        stream=False,
        include_usage=False,
        advanced=True,
    )


async def ask(tiers: list[VectorTier], q: Query) -> Hit | None:
    """The first tier that takes the query answers it: a hit, or None (after storing an
    answer for it, so that a later paraphrase can find it)."""
    for tier in tiers:
        if tier.applies(q):
            outcome = await tier.lookup(q)
            if isinstance(outcome, Hit):
                return outcome
            entry = answer.entry("chat", b'{"stored": true}', "mock", "m", None, "stop")
            await outcome.store(entry.encode())
            return None
    raise AssertionError("no tier took the query")


def cache_embedder(shipped: bool, root: Path) -> LocalEmbedder:
    """The cache's embedder (int8 matrix products), or with ``shipped`` the model run as
    shipped (float32 matrix products: the firewall's), for comparison."""
    if shipped:
        return LocalEmbedder()
    return LocalEmbedder(int8_activations=True, directory=root / "models")


async def through_the_tiers(
    rows: list[dict[str, Any]], threshold: float, root: Path, shipped: bool
) -> dict[str, Counts]:
    embedder = cache_embedder(shipped, root)
    index = EdgeIndex(root / "vectors", "cache-quality", FIELDS)
    vectors = Vectors(
        embedder, index, MemoryStore(1 << 28), threshold=threshold, timeout=30.0, max_chars=2000
    )
    vectors.ready = True
    tiers = [VectorTier(vectors, multi_turn=False), VectorTier(vectors, multi_turn=True)]
    counts = {"semantic": Counts(), "advanced": Counts(), "advanced, other history": Counts()}
    advanced = [r for r in rows if r["tier"] == "advanced"]
    try:
        for n, row in enumerate(rows):
            history = row.get("history", [])
            assert await ask(tiers, query(f"pair-{n}", history, row["a"])) is None
            hit = await ask(tiers, query(f"pair-{n}", history, row["b"]))
            counts[row["tier"]].add(row["hit"], hit is not None)
            if row["tier"] == "advanced":
                other = advanced[(advanced.index(row) + 1) % len(advanced)]
                if other["history"] != history:
                    again = await ask(tiers, query(f"pair-{n}", other["history"], row["a"]))
                    counts["advanced, other history"].add(False, again is not None)
    finally:
        await index.close()
        await embedder.close()
    return counts


def sweep(rows: list[dict[str, Any]], root: Path, shipped: bool) -> dict[str, Any]:
    """Precision and recall over every row by threshold, from cosine similarity alone and
    with the wording check."""
    embedder = cache_embedder(shipped, root)
    first = embedder.embed_sync([r["a"] for r in rows])
    second = embedder.embed_sync([r["b"] for r in rows])
    similarity = [float(x @ y) for x, y in zip(first, second, strict=True)]
    agrees = []
    for row in rows:
        stored, asked = wording(row["a"]), wording(row["b"])
        agrees.append(stored.literals == asked.literals and asked.agrees(stored.words))
    table: dict[str, Any] = {}
    for threshold in SWEEP:
        alone, checked = Counts(), Counts()
        for row, sim, ok in zip(rows, similarity, agrees, strict=True):
            alone.add(row["hit"], sim >= threshold)
            checked.add(row["hit"], sim >= threshold and ok)
        table[str(threshold)] = {"cosine alone": alone.report(), "with wording": checked.report()}
    near_misses = [s for s, r in zip(similarity, rows, strict=True) if not r["hit"]]
    return {"by_threshold": table, "highest near-miss similarity": round(max(near_misses), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=defaults.CACHE_SEMANTIC_THRESHOLD)
    parser.add_argument(
        "--shipped", action="store_true", help="the model as shipped, not the cache's int8 run"
    )
    args = parser.parse_args()
    rows = load_pairs()
    with tempfile.TemporaryDirectory() as root:
        counts = asyncio.run(through_the_tiers(rows, args.threshold, Path(root), args.shipped))
        swept = sweep(rows, Path(root), args.shipped)
    result = {
        "threshold": args.threshold,
        "embedder": "shipped" if args.shipped else "the cache's (int8 activations)",
        "pairs": len(rows),
        "tiers": {name: c.report() for name, c in counts.items()},
        "sweep": swept,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    name = "cache_quality_shipped.json" if args.shipped else RESULTS.name
    RESULTS.with_name(name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"threshold {args.threshold}, {len(rows)} pairs, embedder: {result['embedder']}")
    print(
        "| tier | true hits | false hits | paraphrases missed | near misses kept apart |"
        " precision | recall |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, c in result["tiers"].items():
        print(
            f"| {name} | {c['true_hits']} | {c['false_hits']} | {c['missed']} | "
            f"{c['kept_apart']} | {c['precision']} | {c['recall']} |"
        )
    print("\n| threshold | cosine alone: false hits / recall | with wording: false hits / recall |")
    print("|---:|---:|---:|")
    for threshold, both in result["sweep"]["by_threshold"].items():
        alone, checked = both["cosine alone"], both["with wording"]
        print(
            f"| {threshold} | {alone['false_hits']} / {alone['recall']} | "
            f"{checked['false_hits']} / {checked['recall']} |"
        )
    print(f"\nhighest near-miss similarity: {result['sweep']['highest near-miss similarity']}")


if __name__ == "__main__":
    main()
