"""Vectors: text embeddings and a nearest-neighbour index over them, shared by the semantic
cache and the firewall's verdict cache.

- ``Embedder`` (``embedder``): texts to unit-length vectors. ``LocalEmbedder`` (``minilm``)
  runs all-MiniLM-L6-v2 as an int8 ONNX model from an installed package, in threads off the
  event loop (onnxruntime releases the GIL while it runs); ``ProviderEmbedder``
  (``provider``) asks a configured provider's embeddings model. ``EMBEDDING_MODEL`` chooses.
- ``VectorIndex`` (``index``): upsert entries with a payload and an expiry, and look up the
  nearest live entry whose payload matches, above a cosine threshold. ``EdgeIndex``
  (``edge``) is Qdrant's embedded engine under ``DATA_DIR``; ``ServerIndex`` (``server``) is
  a Qdrant server (``QDRANT_URL``) through qdrant-client, or qdrant-client's local mode.

Nothing here is downloaded at run time: the model and its tokenizer come from installed
packages, and a missing one is an error when the embedder is first used.
"""

from __future__ import annotations

from floopy.vectors.embedder import Embedder, EmbedderUnavailable, Vector, build_embedder
from floopy.vectors.index import Entry, Hit, IndexUnavailable, VectorIndex, build_index

__all__ = [
    "Embedder",
    "EmbedderUnavailable",
    "Entry",
    "Hit",
    "IndexUnavailable",
    "Vector",
    "VectorIndex",
    "build_embedder",
    "build_index",
]
