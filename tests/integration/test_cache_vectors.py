"""The semantic tier when its parts fail: an embedder that errs or is slower than
CACHE_SEMANTIC_TIMEOUT, a Qdrant server that is not there. Each only turns the semantic
tier off for the request: the answer comes from the provider (or the exact tier), the
failure is counted in /metrics and shown by /readyz. The embedder here is the mock
provider's embeddings model, so no local model loads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .conftest import TEST_KEY, free_port, start_gateway, stop, write_settings
from .logstore import metrics, readiness

pytestmark = pytest.mark.integration


def settings_for(tmp_path: Path, mock_upstream: str, upstream_model: str, **extra: str) -> Path:
    return write_settings(
        tmp_path / "settings.py",
        mock_upstream,
        tmp_path / "data",
        CACHE_ENABLED="True",
        LOGGING_ENABLED="False",
        EMBEDDING_MODEL="'embedder'",
        CACHE_SEMANTIC_TIMEOUT="0.3",
        MODELS=(
            "{'gpt-4o-mini': {'provider': 'mock'}, "
            f"'embedder': {{'provider': 'mock', 'upstream_model': {upstream_model!r}}}}}"
        ),
        **extra,
    )


def ask(url: str, text: str) -> httpx.Response:
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
        headers={"authorization": f"Bearer {TEST_KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize(
    ("upstream_model", "extra"),
    [
        pytest.param("error-500", {}, id="embedder-fails"),
        pytest.param("slow-3000", {}, id="embedder-too-slow"),
        pytest.param(
            "text-embedding-3-small",
            {"QDRANT_URL": "'http://127.0.0.1:{port}'"},
            id="qdrant-server-down",
        ),
    ],
)
def test_a_failing_semantic_tier_only_turns_itself_off(
    mock_upstream: str, tmp_path: Path, upstream_model: str, extra: dict[str, str]
) -> None:
    extra = {name: value.format(port=free_port()) for name, value in extra.items()}
    settings = settings_for(tmp_path, mock_upstream, upstream_model, **extra)
    url, proc = start_gateway(settings, tmp_path / "gateway.log")
    try:
        first = ask(url, "What is the capital of France?")
        assert first.headers["floopy-cache"] == "MISS"
        again = ask(url, "What is the capital of France?")
        assert again.headers["floopy-cache"] == "HIT; tier=exact"  # the exact tier is unharmed
        assert again.json() == first.json()
        counted = metrics(url)
        assert counted['floopy_cache_errors_total{tier="semantic"}'] >= 1
        assert counted['floopy_cache_hits_total{tier="exact"}'] == 1
        cache = readiness(url, TEST_KEY)["cache"]
        assert cache["status"] == "down" and "semantic" in cache["error"]
    finally:
        stop(proc)
