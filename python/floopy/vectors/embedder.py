"""The embedder protocol and the choice of embedder by setting (``EMBEDDING_MODEL``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from floopy.providers.base import Provider
    from floopy.settings import Settings

Vector = NDArray[np.float32]  # one embedding, unit length

LOCAL = "local"


class EmbedderUnavailable(Exception):
    """The embedder could not embed: its model is missing, the provider failed or timed out.
    Callers turn their feature off for the request (the cache) or fail open (the firewall)."""


class Embedder(Protocol):
    """Texts to unit-length vectors, so that a dot product is the cosine similarity."""

    name: str  # the model_ref recorded beside each vector: "local:all-MiniLM-L6-v2-int8"

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text, in order. Raises EmbedderUnavailable."""
        ...

    async def close(self) -> None: ...


def normalized(vectors: NDArray[np.float32]) -> list[Vector]:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled = vectors / np.maximum(norms, 1e-12)
    return [row.astype(np.float32, copy=False) for row in scaled]


def embedder_name(settings: Settings) -> str:
    """The name the embedder ``EMBEDDING_MODEL`` names goes by (its collections are named
    after it), without building it: for the command line."""
    from floopy.vectors.minilm import MODEL_NAME

    if settings.embedding_model == LOCAL:
        return MODEL_NAME
    model = settings.models[settings.embedding_model]
    return f"{model.provider}:{model.upstream_model or settings.embedding_model}"


def build_embedder(settings: Settings, providers: dict[str, Provider]) -> Embedder:
    """The embedder ``EMBEDDING_MODEL`` names: the local model, or a catalog model served by
    its provider. Builds nothing heavy: the local model loads on first use."""
    from floopy.vectors.minilm import LocalEmbedder
    from floopy.vectors.provider import ProviderEmbedder

    if settings.embedding_model == LOCAL:
        return LocalEmbedder(threads=settings.embedding_threads)
    model = settings.models[settings.embedding_model]
    provider = providers[settings.effective_provider(settings.embedding_model)]
    return ProviderEmbedder(
        provider,
        model=settings.embedding_model,
        upstream_model=model.upstream_model or settings.embedding_model,
    )
