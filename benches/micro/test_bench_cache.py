"""The exact cache's own work on a hit, per request, in process: the key, the lookup in the
in-memory store (key and decode included), and the answer replayed whole or as a stream;
and on a miss, a finished stream put back together. Each bench checks its result.

Groups: ``cache_hit-<size>`` (key + lookup), ``cache_replay``, ``cache_rebuild-<size>``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from floopy.pipeline.cache import Hit, Query, replay
from floopy.pipeline.cache.answer import entry, from_chat_stream
from floopy.pipeline.cache.exact import ExactTier
from floopy.pipeline.cache.memory import MemoryStore

from conftest import SIZES, chat_body, chat_stream

Bench = Any  # pytest-benchmark's fixture

ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * 60},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 60, "total_tokens": 90},
    }
).encode()


def query(body: bytes) -> Query:
    return Query("chat", body, "acme", "web", "\0", None, [], 1, False, 60.0, False, False)


@pytest.mark.parametrize("size", SIZES)
def test_exact_hit(benchmark: Bench, size: str) -> None:
    benchmark.group = f"cache_hit-{size}"
    tier = ExactTier(MemoryStore(1 << 30))
    q = query(chat_body(size))
    loop = asyncio.new_event_loop()

    async def fill() -> None:
        miss = await tier.lookup(q)
        assert not isinstance(miss, Hit)
        await miss.store(entry("chat", ANSWER, "mock", "gpt-4o-mini", None, "stop").encode())

    loop.run_until_complete(fill())

    def lookup() -> Any:
        coro = tier.lookup(q)
        try:
            coro.send(None)  # the in-memory store never waits: done in one step
        except StopIteration as done:
            return done.value
        raise AssertionError("the lookup waited")

    hit = benchmark(lookup)
    loop.close()
    assert isinstance(hit, Hit) and hit.entry.body == ANSWER


@pytest.mark.parametrize("shape", ["whole", "stream"])
def test_replay(benchmark: Bench, shape: str) -> None:
    benchmark.group = "cache_replay"
    cached = entry("chat", ANSWER, "mock", "gpt-4o-mini", None, "stop")
    if shape == "whole":
        reply: Any = benchmark(replay.whole, cached)
        assert reply.body == ANSWER
    else:
        stream = benchmark(replay.stream, cached, True)
        assert stream.first.startswith(b"data: ")


@pytest.mark.parametrize("size", SIZES)
def test_rebuild_from_stream(benchmark: Bench, size: str) -> None:
    benchmark.group = f"cache_rebuild-{size}"
    body = benchmark(from_chat_stream, chat_stream(size), None)
    assert body is not None and json.loads(body)["object"] == "chat.completion"
