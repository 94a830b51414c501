"""The embeddings endpoint's request reading and the OpenAI response shape."""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import pytest

from floopy import errors
from floopy.endpoints.embeddings import input_texts, parse_embedding_request
from floopy.providers.base import EmbeddingCall, Usage
from floopy.providers.echo import EchoProvider
from floopy.providers.embeddings import embeddings_body


@pytest.mark.parametrize(
    ("value", "texts"),
    [
        ("one", ("one",)),
        (["a", "b"], ("a", "b")),
        ([1, 2, 3], None),
        ([[1, 2], [3]], None),
    ],
)
def test_inputs(value: object, texts: tuple[str, ...] | None) -> None:
    assert input_texts(value) == texts


@pytest.mark.parametrize("value", [[], [[]], ["a", 1], [True], {"a": 1}, None, 3, [["a"]]])
def test_bad_inputs(value: object) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        input_texts(value)
    assert caught.value.param == "input"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"input": "x"}', None),
        (b'{"model": "", "input": "x"}', "model"),
        (b'{"model": "m", "input": "x", "dimensions": -1}', "dimensions"),
        (b'{"model": "m", "input": "x", "encoding_format": "int8"}', "encoding_format"),
        (b"[1]", None),
        (b"{", None),
    ],
)
def test_bad_bodies(body: bytes, param: str | None) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        parse_embedding_request(body)
    assert caught.value.param == param


def test_base64_is_little_endian_float32() -> None:
    doc = json.loads(embeddings_body([[0.5, -1.0]], "m", Usage(3, 0, 3), "base64"))
    raw = base64.b64decode(doc["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.5, -1.0)
    assert doc["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert doc["object"] == "list" and doc["data"][0]["object"] == "embedding"


def test_echo_embeddings() -> None:
    def embed(texts: tuple[str, ...] | None, dimensions: int | None = None) -> dict[str, object]:
        call = EmbeddingCall(b"{}", "echo", "echo", texts, "float", dimensions)
        return dict(json.loads(asyncio.run(EchoProvider().embed(call)).body))

    first = embed(("same", "other words"), dimensions=3)
    again = embed(("same",), dimensions=3)
    assert first["data"][0]["embedding"] == again["data"][0]["embedding"]  # type: ignore[index]
    assert len(first["data"][1]["embedding"]) == 3  # type: ignore[index]
    assert first["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    with pytest.raises(errors.BadRequest):
        embed(None)
    with pytest.raises(errors.BadRequest):
        embed(("x",), dimensions=100_000)
