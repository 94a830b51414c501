"""Embedding vectors as OpenAI's ``CreateEmbeddingResponse``, for providers that make their
own vectors (Gemini, echo) rather than forward OpenAI's answer.

``encoding_format: "base64"`` is each vector's little-endian float32 bytes in base64, which
is what the openai SDK asks for by default (and decodes) to save bandwidth.
"""

from __future__ import annotations

import array
import base64
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from floopy.providers.base import Usage


def embeddings_body(
    vectors: Sequence[Sequence[float]], model: str, usage: Usage, encoding_format: str
) -> bytes:
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(vector, encoding_format)}
        for index, vector in enumerate(vectors)
    ]
    doc: dict[str, Any] = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    }
    return msgspec.json.encode(doc)


def _encoded(vector: Sequence[float], encoding_format: str) -> list[float] | str:
    if encoding_format != "base64":
        return list(vector)
    floats = array.array("f", vector)
    if sys.byteorder == "big":
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode("ascii")
