"""The labelled pairs of ``benches/cache/pairs.jsonl`` are well formed, and at the default
CACHE_SEMANTIC_THRESHOLD the semantic and advanced tiers' decision (similarity from the real
local embedder, then the wording check) serves no near miss and most paraphrases.
``benches/cache/quality.py`` measures the same through the tiers and reports the numbers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from floopy.pipeline.cache.wording import wording
from floopy.settings import defaults
from floopy.vectors.minilm import LocalEmbedder

PAIRS = Path(__file__).resolve().parents[2] / "benches" / "cache" / "pairs.jsonl"
NEAR_MISSES = {"number", "negation", "entity", "unit", "language"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAIRS.read_text().splitlines()]


def test_the_pairs_are_well_formed(rows: list[dict[str, Any]]) -> None:
    assert len(rows) >= 200
    for row in rows:
        assert set(row) - {"history"} == {"tier", "kind", "hit", "a", "b"}, row
        assert row["tier"] in ("semantic", "advanced")
        assert row["kind"] in NEAR_MISSES | {"paraphrase"}
        assert row["hit"] is (row["kind"] == "paraphrase")
        assert row["a"].strip() and row["b"].strip() and row["a"] != row["b"]
        assert ("history" in row) is (row["tier"] == "advanced")
        for turn in row.get("history", []):
            assert turn["role"] in ("user", "assistant") and turn["content"].strip()
    assert len({(r["a"], r["b"]) for r in rows}) == len(rows)  # no row twice
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["paraphrase"] >= 100
    assert all(kinds[kind] >= 15 for kind in NEAR_MISSES), kinds


def test_the_default_threshold_serves_no_near_miss(
    rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    # The cache's own embedder: the model with int8 matrix products.
    embedder = LocalEmbedder(int8_activations=True, directory=tmp_path)
    first = embedder.embed_sync([r["a"] for r in rows])
    second = embedder.embed_sync([r["b"] for r in rows])
    threshold = defaults.CACHE_SEMANTIC_THRESHOLD
    served = []
    for row, x, y in zip(rows, first, second, strict=True):
        stored, asked = wording(row["a"]), wording(row["b"])
        agrees = stored.literals == asked.literals and asked.agrees(stored.words)
        served.append(float(x @ y) >= threshold and agrees)
    false_hits = [r["b"] for r, s in zip(rows, served, strict=True) if s and not r["hit"]]
    assert false_hits == []
    paraphrases = [s for r, s in zip(rows, served, strict=True) if r["hit"]]
    assert sum(paraphrases) / len(paraphrases) >= 0.7  # the tier is worth having
