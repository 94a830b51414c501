"""The embedders: the local MiniLM model from its installed package, run off the event loop,
and a provider's embeddings model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
import pytest

from floopy import errors
from floopy.providers.base import EmbeddingCall, Embeddings
from floopy.vectors import EmbedderUnavailable
from floopy.vectors import minilm as minilm_module
from floopy.vectors.minilm import (
    DIMENSIONS,
    INT8_MODEL_NAME,
    MODEL_NAME,
    LocalEmbedder,
    int8_model,
    packaged_file,
)
from floopy.vectors.provider import ProviderEmbedder


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def int8(models: Path) -> LocalEmbedder:
    return LocalEmbedder(int8_activations=True, directory=models)


def embed(embedder: LocalEmbedder | ProviderEmbedder, texts: Sequence[str]) -> list[np.ndarray]:
    return asyncio.run(embedder.embed(texts))


def test_the_local_model_gives_unit_vectors_that_place_paraphrases_close(
    local: LocalEmbedder,
) -> None:
    bread, recipe, other = embed(
        local,
        [
            "How do I bake bread at home?",
            "What's a good recipe for home-made bread?",
            "Quarterly revenue grew by four percent in Europe.",
        ],
    )
    for vector in (bread, recipe, other):
        assert vector.shape == (DIMENSIONS,)
        assert vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert float(bread @ recipe) > 0.6
    assert float(bread @ other) < 0.3


def test_a_batch_embeds_as_its_texts_do_alone(local: LocalEmbedder) -> None:
    texts = ["short", "a much longer sentence that pads the other one in its batch"]
    together = embed(local, texts)
    alone = [embed(local, [text])[0] for text in texts]
    for a, b in zip(together, alone, strict=True):
        assert float(a @ b) > 0.999


def test_a_text_longer_than_the_model_reads_is_not_embedded_whole(local: LocalEmbedder) -> None:
    short = "How do I reverse a list in Python?"
    long = " ".join(["word"] * 300) + " and then the question that matters"
    whole = asyncio.run(local.embed_whole([short]))
    assert whole is not None
    assert float(whole[0] @ local.embed_sync([short])[0]) == pytest.approx(1.0, abs=1e-5)
    assert asyncio.run(local.embed_whole([short, long])) is None
    assert len(local.embed_sync([long])) == 1  # cut short, where that is wanted


def test_nothing_to_embed_is_no_vectors(local: LocalEmbedder) -> None:
    assert embed(local, []) == []


def test_the_model_runs_on_the_embedder_threads_not_the_event_loop(
    local: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = local.embed_sync

    def recording(texts: Sequence[str]) -> list[np.ndarray]:
        threads.append(threading.current_thread().name)
        return real(texts)

    monkeypatch.setattr(local, "embed_sync", recording)

    async def main() -> str:
        await local.embed(["hello"])
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert threads and threads[0].startswith("floopy-embed")
    assert threads[0] != loop_thread


def test_work_no_request_waits_for_runs_beside_the_lookups(local: LocalEmbedder) -> None:
    async def main() -> tuple[list[np.ndarray] | None, list[np.ndarray] | None]:
        return await asyncio.gather(
            local.embed_whole(["stored after the response"], waited_for=False),
            local.embed_whole(["looked up now"]),
        )

    threads: list[str] = []
    real = local.embed_whole_sync

    def recording(texts: Sequence[str]) -> list[np.ndarray] | None:
        threads.append(threading.current_thread().name)
        return real(texts)

    local.embed_whole_sync = recording  # type: ignore[method-assign]
    try:
        later, now = asyncio.run(main())
    finally:
        del local.embed_whole_sync
    assert later is not None and now is not None
    assert sorted(name.rsplit("_", 1)[0] for name in threads) == [
        "floopy-embed",
        "floopy-embed-later",
    ]


def test_a_missing_model_package_is_unavailable_never_fetched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(EmbedderUnavailable, match="no-such-model-package"):
        packaged_file("no-such-model-package", "model.onnx")
    monkeypatch.setattr(minilm_module, "_MODEL_FILE", ("no-such-model-package", "model.onnx"))
    with pytest.raises(EmbedderUnavailable, match="pip install no-such-model-package"):
        embed(LocalEmbedder(), ["hello"])


def test_int8_activations_embed_nearly_as_the_shipped_run_under_another_name(
    local: LocalEmbedder, int8: LocalEmbedder
) -> None:
    texts = [
        "How do I bake bread at home?",
        "What's a good recipe for home-made bread?",
        "Quarterly revenue grew by four percent in Europe.",
    ]
    shipped, fast = embed(local, texts), embed(int8, texts)
    for a, b in zip(shipped, fast, strict=True):
        assert b.shape == (DIMENSIONS,) and b.dtype == np.float32
        assert abs(float(np.linalg.norm(b)) - 1.0) < 1e-4
        assert float(a @ b) > 0.97  # the same model, computed in int8
        assert float(a @ b) < 0.99999  # yet not the same vectors: hence another name
    bread, recipe, other = fast
    assert float(bread @ recipe) > 0.6 and float(bread @ other) < 0.3
    assert (local.name, int8.name) == (MODEL_NAME, INT8_MODEL_NAME)


def test_the_int8_model_is_derived_once_and_kept_whole(
    int8: LocalEmbedder, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embed(int8, ["derive it"])
    kept = int8_model(models)
    assert [p.name for p in models.iterdir()] == [kept.name]  # no half-written leftovers

    def derive(*args: object) -> Path:
        raise AssertionError("derived again")

    monkeypatch.setattr(minilm_module, "_derive", derive)
    assert int8_model(models) == kept
    assert embed(LocalEmbedder(int8_activations=True, directory=models), ["kept"])


def test_a_directory_that_cannot_be_written_derives_for_the_process(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    derived = int8_model(blocked / "models")
    assert derived.is_file() and not derived.is_relative_to(tmp_path)
    derived.unlink()
    derived.parent.rmdir()


class FakeEmbeddings:
    name, kind = "fake", "openai_compatible"

    def __init__(self, answer: bytes | errors.FloopyError) -> None:
        self.answer = answer
        self.calls: list[EmbeddingCall] = []

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        self.calls.append(call)
        if isinstance(self.answer, errors.FloopyError):
            raise self.answer
        return Embeddings(body=self.answer)


def answer(*items: tuple[int, list[float]]) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in items]
    return msgspec.json.encode({"object": "list", "data": data})


def test_a_provider_model_embeds_in_order_and_normalized() -> None:
    provider = FakeEmbeddings(answer((1, [0.0, 2.0]), (0, [3.0, 4.0])))
    embedder = ProviderEmbedder(provider, model="small", upstream_model="text-small")  # type: ignore[arg-type]
    first, second = embed(embedder, ["a", "b"])
    assert np.allclose(first, [0.6, 0.8]) and np.allclose(second, [0.0, 1.0])
    assert embedder.name == "fake:text-small"
    sent = msgspec.json.decode(provider.calls[0].body)
    assert sent == {"model": "text-small", "input": ["a", "b"]}


@pytest.mark.parametrize(
    "reply",
    [errors.ProviderError("down"), b"not json", answer((0, [1.0, 0.0]))],
    ids=["provider-error", "garbage", "too-few-vectors"],
)
def test_a_provider_failure_is_unavailable(reply: bytes | errors.FloopyError) -> None:
    embedder = ProviderEmbedder(FakeEmbeddings(reply), model="m", upstream_model="m")  # type: ignore[arg-type]
    with pytest.raises(EmbedderUnavailable):
        embed(embedder, ["a", "b"])


def test_a_provider_without_embeddings_is_unavailable() -> None:
    class ChatOnly:
        name, kind = "chat-only", "anthropic"

    embedder = ProviderEmbedder(ChatOnly(), model="m", upstream_model="m")  # type: ignore[arg-type]
    with pytest.raises(EmbedderUnavailable, match="serves no embeddings"):
        embed(embedder, ["a"])
