"""The cache in Redis: two gateway processes share their answers, ``floopy cache stats`` and
``floopy cache clear`` reach them, and a Redis that dies only turns the cache off."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from floopy.pipeline.cache import build_cache
from floopy.pipeline.cache import tool as cache_tool
from floopy.pipeline.cache.semantic import FIELDS, SCOPE
from floopy.settings import load_settings
from floopy.vectors import Entry as VectorEntry
from floopy.vectors.index import entry_id
from floopy.vectors.minilm import LocalEmbedder
from floopy.vectors.server import ServerIndex

from .conftest import TEST_KEY, free_port, start_gateway, stop, write_settings
from .logstore import metrics, wait_for

pytestmark = pytest.mark.integration


def settings_for(root: Path, name: str, mock_upstream: str, redis_url: str) -> Path:
    # Same settings, own data directory: like two hosts, they share only Redis.
    return write_settings(
        root / f"{name}.py",
        mock_upstream,
        root / name,
        REDIS_URL=repr(redis_url),
        CACHE_ENABLED="True",
        LOGGING_ENABLED="False",
        ORGANIZATIONS="{'acme': {'projects': ['web', 'batch']}}",
    )


@pytest.fixture(scope="module")
def pair(
    mock_upstream: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Path]]:
    root = tmp_path_factory.mktemp("cache_shared")
    first = start_gateway(settings_for(root, "first", mock_upstream, redis_url), root / "1.log")
    try:
        second = start_gateway(
            settings_for(root, "second", mock_upstream, redis_url), root / "2.log"
        )
    except Exception:
        stop(first[1])
        raise
    try:
        for url in (first[0], second[0]):  # the semantic tier's model loads with the worker
            wait_for(lambda u=url: readiness(u)["cache"]["embedder_ready"], "the embedder")
        yield first[0], second[0], root / "first.py"
    finally:
        stop(first[1])
        stop(second[1])


def ask(url: str, text: str, **headers: str) -> httpx.Response:
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
        headers={"authorization": f"Bearer {TEST_KEY}", **headers},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


STORED = 'floopy_cache_stored_total{tier="exact"}'


def ask_and_store(url: str, text: str) -> httpx.Response:
    """``ask``, then waits until the exact tier stored the answer: the store lands just after
    the response (a Redis write), so a repeat sent the instant the first answer came back
    may still find nothing."""
    before = metrics(url).get(STORED, 0)
    response = ask(url, text)
    wait_for(lambda: metrics(url).get(STORED, 0) > before, "the answer stored", timeout=10)
    return response


def calls(mock_url: str, token: str) -> int:
    with urllib.request.urlopen(f"{mock_url}/_requests") as resp:
        return sum(1 for r in json.load(resp) if token in json.dumps(r["body"]))


def test_an_answer_one_instance_stored_is_served_by_the_other(
    pair: tuple[str, str, Path], mock_upstream: str
) -> None:
    a, b, _ = pair
    text = f"shared {uuid.uuid4().hex}"
    first = ask_and_store(a, text)
    second = ask(b, text)
    assert first.headers["floopy-cache"] == "MISS"
    assert second.headers["floopy-cache"] == "HIT; tier=exact"
    assert second.json() == first.json()
    assert calls(mock_upstream, text) == 1


def test_buckets_fill_across_instances(pair: tuple[str, str, Path]) -> None:
    a, b, _ = pair
    text = f"bucket {uuid.uuid4().hex}"
    size = {"floopy-cache-bucket-max-size": "2"}
    got = [ask(url, text, **size).headers["floopy-cache"] for url in (a, b, a, b)]
    assert got == ["MISS", "MISS", "HIT; tier=exact", "HIT; tier=exact"]


def floopy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "floopy", *args], capture_output=True, text=True, timeout=60
    )


def test_the_cli_counts_and_clears_one_tenant(pair: tuple[str, str, Path]) -> None:
    a, _, settings = pair
    web, batch = f"web {uuid.uuid4().hex}", f"batch {uuid.uuid4().hex}"
    ask(a, web, **{"floopy-project-id": "web"})
    ask(a, batch, **{"floopy-project-id": "batch"})
    stats = floopy("cache", "stats", "--settings", str(settings))
    assert stats.returncode == 0, stats.stderr
    counted = dict(line.split(": ", 1) for line in stats.stdout.splitlines())
    assert counted["store"] == "redis" and int(counted["entries"]) >= 2
    assert int(counted["bytes"]) > 0
    assert counted["vectors"].startswith("embedded, one shard per worker")  # the semantic tier
    cleared = floopy(
        "cache", "clear", "--settings", str(settings), "--organization", "acme", "--project", "web"
    )
    assert cleared.returncode == 0, cleared.stderr
    assert "cleared" in cleared.stdout
    assert ask(a, web, **{"floopy-project-id": "web"}).headers["floopy-cache"] == "MISS"
    assert ask(a, batch, **{"floopy-project-id": "batch"}).headers["floopy-cache"].startswith("HIT")
    assert floopy("cache", "clear", "--settings", str(settings)).returncode == 0
    assert ask(a, batch, **{"floopy-project-id": "batch"}).headers["floopy-cache"] == "MISS"


def test_semantic_answers_live_in_redis_and_are_cleared_with_their_tenant(
    pair: tuple[str, str, Path],
) -> None:
    a, _, settings = pair
    ref = uuid.uuid4().hex[:12]
    web = {"floopy-project-id": "web"}
    name = 'floopy_cache_stored_total{tier="semantic"}'
    before = metrics(a).get(name, 0.0)
    ask(a, f"How do I undo the last git commit? ({ref})", **web)
    wait_for(lambda: metrics(a).get(name, 0.0) > before, "the answer to be stored")
    paraphrase = f"How can I undo my last git commit? ({ref})"
    assert ask(a, paraphrase, **web).headers["floopy-cache"] == "HIT; tier=semantic"
    cleared = floopy(
        "cache", "clear", "--settings", str(settings), "--organization", "acme", "--project", "web"
    )
    assert cleared.returncode == 0, cleared.stderr
    assert ask(a, paraphrase, **web).headers["floopy-cache"] == "MISS"  # its answer is gone


def test_clear_without_redis_says_why_it_cannot(tmp_path: Path) -> None:
    settings = tmp_path / "settings.py"
    settings.write_text("CACHE_ENABLED = True\n")
    result = floopy("cache", "clear", "--settings", str(settings))
    assert result.returncode == 1
    assert "REDIS_URL is not set" in result.stderr


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is installed by `make system-deps`"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def readiness(url: str) -> dict[str, object]:
    response = httpx.get(f"{url}/readyz", headers={"authorization": f"Bearer {TEST_KEY}"})
    report: dict[str, object] = response.json()
    return report


def test_a_redis_that_dies_only_turns_the_cache_off(mock_upstream: str, tmp_path: Path) -> None:
    port = free_port()
    redis = start_redis(port, tmp_path)
    settings = settings_for(tmp_path, "alone", mock_upstream, f"redis://127.0.0.1:{port}/0")
    url, proc = start_gateway(settings, tmp_path / "gateway.log")
    try:
        text = f"doomed {uuid.uuid4().hex}"
        ask_and_store(url, text)
        assert ask(url, text).headers["floopy-cache"] == "HIT; tier=exact"
        cache = readiness(url)["cache"]
        assert (cache["status"], cache["store"]) == ("up", "redis")  # type: ignore[index]
        redis.kill()
        redis.wait()
        answer = ask(url, text)  # served by the provider, not failed
        assert answer.headers["floopy-cache"] == "MISS"
        assert answer.json()["choices"][0]["message"]["content"].endswith(text)
        report = readiness(url)
        assert report["status"] == "degraded"
        assert report["cache"]["status"] == "down"  # type: ignore[index]
        assert metrics(url)['floopy_cache_errors_total{tier="exact"}'] >= 1
        assert calls(mock_upstream, text) == 2
    finally:
        stop(proc)
        if redis.poll() is None:
            redis.kill()
            redis.wait()


def test_the_cli_counts_and_clears_vectors_on_a_qdrant_server(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With QDRANT_URL the commands count and delete the semantic tiers' vectors by tenant.
    qdrant-client's local mode (on disk, so that each command's client opens it anew)
    stands in for the server: the same client API, the same filters."""
    settings = load_settings(
        {
            "FLOOPY_REDIS_URL": redis_url,
            "FLOOPY_QDRANT_URL": "http://127.0.0.1:1",  # never reached: the stand-in answers
            "FLOOPY_DATA_DIR": str(tmp_path / "data"),
        }
    )
    where = tmp_path / "qdrant"
    monkeypatch.setattr(cache_tool, "_qdrant", lambda _settings: AsyncQdrantClient(path=str(where)))
    # The collection the gateway's semantic tiers write to (the CLI must name the same).
    index = build_cache(settings, None, LocalEmbedder()).vectors
    assert index is not None
    collection = index.index.name
    assert collection == cache_tool._collection(settings)

    async def fill() -> None:
        server = ServerIndex(AsyncQdrantClient(path=str(where)), collection, FIELDS)
        tenants = [("acme", "web"), ("acme", "web"), ("acme", "batch"), ("globex", "web")]
        try:
            await server.upsert(
                [
                    VectorEntry(
                        entry_id(str(n)),
                        np.array([1.0, float(n), 0.0], dtype=np.float32) / np.hypot(1.0, n),
                        {SCOPE: f"s{n}", "organization": org, "project": project},
                        time.time() + 600,
                    )
                    for n, (org, project) in enumerate(tenants)
                ]
            )
        finally:
            await server.close()

    def vectors() -> int:
        out, err = io.StringIO(), io.StringIO()
        assert cache_tool.stats_command(settings, out, err) == 0, err.getvalue()
        counted = dict(line.split(": ", 1) for line in out.getvalue().splitlines())
        assert counted["store"] == "redis"
        assert counted["vectors"].endswith(f"(qdrant, collection {collection})")
        return int(counted["vectors"].split()[0])

    def clear(organization: str | None, project: str | None) -> str:
        out, err = io.StringIO(), io.StringIO()
        assert cache_tool.clear_command(settings, organization, project, out, err) == 0, (
            err.getvalue()
        )
        return out.getvalue()

    assert vectors() == 0  # no collection yet
    asyncio.run(fill())
    assert vectors() == 4
    assert "deleted the semantic cache's vectors of organization 'acme', project 'web'" in clear(
        "acme", "web"
    )
    assert vectors() == 2
    clear("acme", None)
    assert vectors() == 1  # globex's
    clear(None, None)
    assert vectors() == 0
