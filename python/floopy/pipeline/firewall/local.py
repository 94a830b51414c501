"""The ``local`` backend: an offline prompt-injection and jailbreak classifier.

A logistic-regression head over the local embedder's vectors (all-MiniLM-L6-v2, int8 ONNX;
``floopy.vectors.minilm``): the head is 385 numbers in ``injection_head.json``, trained by
``scripts/train_injection_head.py`` on a public labelled set shipped in a PyPI package, never
on the project's own quality set. Nothing is downloaded and no torch is needed.

The model runs in the embedder's threads: onnxruntime releases the GIL while it runs (only
tokenizing holds it, for well under a millisecond a window), so the classifier stays in the
event loop's process without stalling it; ``benches/RESULTS.md`` measures the longest stall.
Windows are about the model's 256 tokens, so a long text is screened whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from floopy.pipeline.firewall.verdict import ClassifierError, Verdict
from floopy.vectors import EmbedderUnavailable

if TYPE_CHECKING:
    from floopy.vectors import Vector
    from floopy.vectors.minilm import LocalEmbedder

HEAD = Path(__file__).with_name("injection_head.json")
CATEGORY = "Prompt Injection"
WINDOW_CHARS = 1000  # about 256 MiniLM tokens of English


class LocalClassifier:
    backend = "local"
    window_chars: int | None = WINDOW_CHARS

    def __init__(
        self,
        embedder: LocalEmbedder,
        *,
        threshold: float,
        head: Path = HEAD,
        owns_embedder: bool = False,
    ) -> None:
        self.embedder = embedder
        self.embedder_name: str | None = embedder.name
        self._owns_embedder = owns_embedder
        self._threshold = threshold
        document = json.loads(head.read_text())
        if document["embedder"] != embedder.name:
            raise ValueError(f"{head.name} was trained on {document['embedder']!r}")
        self._weights = np.array(document["weights"], dtype=np.float32)
        self._bias = float(document["bias"])
        self.model = f"{embedder.name}+{head.stem}"

    def scores(self, vectors: Sequence[Vector]) -> list[float]:
        logits = np.stack(vectors) @ self._weights + self._bias
        return [float(p) for p in 1.0 / (1.0 + np.exp(-logits))]

    async def classify(
        self, windows: Sequence[str], vectors: Sequence[Vector] | None
    ) -> list[Verdict]:
        if vectors is None:
            try:
                vectors = await self.embedder.embed(windows)
            except EmbedderUnavailable as exc:
                raise ClassifierError(str(exc)) from exc
        return [self._verdict(score) for score in self.scores(vectors)]

    def _verdict(self, score: float) -> Verdict:
        unsafe = score >= self._threshold
        return Verdict(
            "unsafe" if unsafe else "safe",
            round(score, 4),
            (CATEGORY,) if unsafe else (),
            self.backend,
            self.model,
        )

    async def warm_up(self) -> None:
        await self.embedder.embed(["warm up"])

    async def close(self) -> None:
        if self._owns_embedder:  # else the worker's shared embedder, closed by the worker
            await self.embedder.close()
