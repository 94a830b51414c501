"""``POST /v1/embeddings`` on Gemini: ``embedContent`` for one text, ``batchEmbedContents``
for several, answered in OpenAI's format. ``dimensions`` becomes ``outputDimensionality``.

Gemini's embedding answers carry no token counts, so the client's usage reads 0 tokens and
the log's usage (and cost) is unknown.
"""

from __future__ import annotations

from typing import Any

import msgspec

from floopy import errors
from floopy.providers.base import EmbeddingCall
from floopy.providers.gemini.wire import batch_embed_decoder, embed_decoder


def embed_request(call: EmbeddingCall, model_path: str) -> tuple[str, dict[str, Any]]:
    """(method, body) for the call's texts: one text embeds alone, several in a batch."""
    texts = call.texts
    if texts is None:
        raise errors.BadRequest("gemini embeds text only, not token ids", param="input")
    if len(texts) == 1:
        return "embedContent", _content_request(texts[0], call.dimensions)
    requests = [{"model": model_path, **_content_request(text, call.dimensions)} for text in texts]
    return "batchEmbedContents", {"requests": requests}


def _content_request(text: str, dimensions: int | None) -> dict[str, Any]:
    request: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if dimensions is not None:
        request["outputDimensionality"] = dimensions
    return request


def embed_vectors(method: str, data: bytes) -> list[list[float]]:
    try:
        if method == "embedContent":
            single = embed_decoder.decode(data).embedding
            return [single.values] if single is not None else []
        return [embedding.values for embedding in batch_embed_decoder.decode(data).embeddings]
    except msgspec.DecodeError as exc:
        raise errors.ProviderError(f"gemini sent unreadable embeddings: {exc}") from exc
