"""The firewall of a worker, built from ``FIREWALL``: its classifier backend and its verdict
cache. Nothing heavy happens here: models load and the index opens on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.pipeline.firewall.screening import Firewall
from floopy.pipeline.firewall.verdict_cache import VerdictCache
from floopy.vectors import build_index
from floopy.vectors.index import collection_name
from floopy.vectors.minilm import LocalEmbedder

if TYPE_CHECKING:
    from floopy.pipeline.firewall.verdict import Classifier
    from floopy.providers.base import Provider
    from floopy.settings import Settings
    from floopy.vectors import Embedder

VERDICTS = "firewall-verdicts"


def build_firewall(
    settings: Settings, providers: dict[str, Provider], embedder: Embedder
) -> Firewall | None:
    """None when no request can be screened (every mode off, no client may turn it on)."""
    config = settings.firewall
    if not config.can_screen:
        return None
    cache = None
    if config.verdict_cache:
        index = build_index(settings, collection_name(VERDICTS, embedder.name), ["organization"])
        cache = VerdictCache(
            embedder,
            index,
            similarity=config.verdict_cache_similarity,
            ttl=config.verdict_cache_ttl,
            shared=config.verdict_cache_shared,
        )
    return Firewall(
        _classifier(settings, providers, embedder),
        cache,
        timeout=config.timeout,
        window_chars=config.window_chars,
    )


def _classifier(
    settings: Settings, providers: dict[str, Provider], embedder: Embedder
) -> Classifier:
    config = settings.firewall
    if config.backend == "llm":
        from floopy.pipeline.firewall.llm import LlmClassifier

        assert config.model is not None, "checked by the settings"
        model = settings.models[config.model]
        return LlmClassifier(
            providers[settings.effective_provider(config.model)],
            model=config.model,
            upstream_model=model.upstream_model or config.model,
        )
    from floopy.pipeline.firewall.local import LocalClassifier

    if isinstance(embedder, LocalEmbedder):
        return LocalClassifier(embedder, threshold=config.threshold)
    own = LocalEmbedder(threads=settings.embedding_threads)
    return LocalClassifier(own, threshold=config.threshold, owns_embedder=True)
