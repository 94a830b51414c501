"""Native hot path against pure-Python equivalents, each pair checked to agree.

Groups pair the implementations: ``parse-<size>``, ``headers``, ``cache_key-<size>``,
``sse-<size>``. ``make bench`` runs them; benches/report_micro.py turns the JSON into the
table and chart of benches/RESULTS.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from floopy import _native

from conftest import HEADERS, chat_body, chat_stream, network_pieces
from reference import (
    PythonStreamRelay,
    cache_key,
    canonical_json,
    canonical_orjson,
    extract_headers,
    parse_chat,
    parse_chat_orjson,
)

Bench = Any  # pytest-benchmark's fixture


# --- parse --------------------------------------------------------------------------------

PARSER = _native.RequestParser()


def _native_parse(body: bytes) -> dict[str, Any]:
    req = PARSER.parse(body)
    return {
        "model": req.model,
        "stream": req.stream,
        "include_usage": req.include_usage,
        "message_count": req.message_count,
        "last_user_text": req.last_user_text,
        "user": req.user,
        "has_tools": req.has_tools,
    }


@pytest.mark.parametrize("impl", ["native", "json", "orjson"])
def test_parse(benchmark: Bench, size: str, impl: str) -> None:
    benchmark.group = f"parse-{size}"
    body = chat_body(size)
    fn = {"native": PARSER.parse, "json": parse_chat, "orjson": parse_chat_orjson}[impl]
    benchmark(fn, body)
    assert parse_chat(body) == _native_parse(body)


# --- headers ------------------------------------------------------------------------------

EXTRACTOR = _native.HeaderExtractor()


@pytest.mark.parametrize("impl", ["native", "python"])
def test_headers(benchmark: Bench, impl: str) -> None:
    benchmark.group = "headers"
    fn = EXTRACTOR.extract if impl == "native" else extract_headers
    benchmark(fn, HEADERS)
    native, python = EXTRACTOR.extract(HEADERS), extract_headers(HEADERS)
    assert native.properties == python["properties"]
    assert native.fallbacks == python["fallbacks"]
    assert native.cache_max_age == python["cache_max_age"] == 3600
    assert native.api_key == python["api_key"]


# --- cache key ----------------------------------------------------------------------------

KEYER = _native.CacheKeyer()


@pytest.mark.parametrize("impl", ["native", "json+xxhash", "orjson+xxhash"])
def test_cache_key(benchmark: Bench, size: str, impl: str) -> None:
    benchmark.group = f"cache_key-{size}"
    body = chat_body(size)
    if impl == "native":
        benchmark(KEYER.key, body, "acme/web")
    else:
        canonical = canonical_json if impl == "json+xxhash" else canonical_orjson
        benchmark(cache_key, body, "acme/web", canonical)
    assert KEYER.canonical(body) == canonical_json(body)
    assert KEYER.key(body, "acme/web") == cache_key(body, "acme/web", canonical_json)


# --- sse ----------------------------------------------------------------------------------


def _relay_native(pieces: list[bytes]) -> _native.OpenAIStreamRelay:
    relay = _native.OpenAIStreamRelay()
    for piece in pieces:
        relay.feed(piece)
    relay.finish()
    return relay


def _relay_python(pieces: list[bytes]) -> PythonStreamRelay:
    relay = PythonStreamRelay()
    for piece in pieces:
        relay.feed(piece)
    return relay


@pytest.mark.parametrize("impl", ["native", "python"])
def test_sse(benchmark: Bench, size: str, impl: str) -> None:
    benchmark.group = f"sse-{size}"
    pieces = network_pieces(chat_stream(size))
    benchmark(_relay_native if impl == "native" else _relay_python, pieces)
    native, python = _relay_native(pieces), _relay_python(pieces)
    assert native.content == "".join(python.content)
    assert native.finish_reason == python.finish_reason == "stop"
    assert native.usage is not None and python.usage is not None
    assert native.usage.total_tokens == python.usage["total_tokens"]
