"""Embeddings from a configured provider's model (``EMBEDDING_MODEL`` naming a catalog
model), through the provider's embeddings call like a client's ``/v1/embeddings``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from floopy import errors
from floopy.providers.base import EmbeddingCall, EmbeddingsProvider
from floopy.vectors.embedder import EmbedderUnavailable, Vector, normalized

if TYPE_CHECKING:
    from floopy.providers.base import Provider


class _Item(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class _Answer(msgspec.Struct):
    data: list[_Item]


_answer = msgspec.json.Decoder(_Answer)


class ProviderEmbedder:
    def __init__(self, provider: Provider, *, model: str, upstream_model: str) -> None:
        self._provider = provider
        self._model = model
        self._upstream_model = upstream_model
        self.name = f"{provider.name}:{upstream_model}"

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        provider = self._provider
        if not isinstance(provider, EmbeddingsProvider):
            raise EmbedderUnavailable(f"provider {provider.name!r} serves no embeddings")
        body: dict[str, Any] = {"model": self._upstream_model, "input": list(texts)}
        call = EmbeddingCall(
            body=msgspec.json.encode(body),
            model=self._upstream_model,
            requested_model=self._model,
            texts=tuple(texts),
        )
        try:
            answer = _answer.decode((await provider.embed(call)).body)
        except errors.FloopyError as exc:
            raise EmbedderUnavailable(f"{self.name}: {exc.message}") from exc
        except msgspec.DecodeError as exc:
            raise EmbedderUnavailable(f"{self.name}: unreadable embeddings answer") from exc
        if len(answer.data) != len(texts):
            raise EmbedderUnavailable(f"{self.name}: {len(answer.data)} vectors for {len(texts)}")
        ordered = sorted(answer.data, key=lambda item: item.index)
        return normalized(np.array([item.embedding for item in ordered], dtype=np.float32))

    async def close(self) -> None:
        """The provider is the worker's, closed with it."""
