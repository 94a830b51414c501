"""The cache stores, in memory and in Redis, held to one contract: buckets of up to N
answers, each expiring on its own, cleared by tenant; memory bounded by bytes (LRU)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from clocks import Clock
from redis.asyncio import Redis

from floopy.pipeline.cache.memory import OVERHEAD_BYTES, MemoryStore
from floopy.pipeline.cache.redis import RedisStore, key_of, pattern_of
from floopy.pipeline.cache.store import CacheStore, Slot

Scenario = Callable[[CacheStore, Clock, str], Awaitable[None]]
Drive = Callable[[Scenario], None]


@pytest.fixture(params=["memory", "redis"])
def drive(request: pytest.FixtureRequest) -> Drive:
    """Runs a scenario on one store with a clock of its own and an organization no other
    test uses (the Redis is shared)."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            clock = Clock()
            redis = Redis.from_url(url) if url is not None else None
            store: CacheStore = (
                RedisStore(redis, timeout=5.0, clock=clock)
                if redis is not None
                else MemoryStore(1 << 20, clock=clock)
            )
            try:
                await scenario(store, clock, f"org-{uuid.uuid4().hex}")
            finally:
                if redis is not None:
                    await redis.aclose()

        asyncio.run(main())

    return run


def test_a_bucket_keeps_up_to_its_limit(drive: Drive) -> None:
    async def scenario(store: CacheStore, clock: Clock, org: str) -> None:
        slot = Slot(org, "web", "k1")
        assert await store.get(slot) == []
        assert [await store.add(slot, f"a{i}".encode(), 60, 2) for i in range(3)] == [
            True,
            True,
            False,
        ]
        assert await store.get(slot) == [b"a0", b"a1"]
        assert await store.add(slot, b"b", 60, 3)  # a larger bucket takes one more
        assert await store.get(slot) == [b"a0", b"a1", b"b"]

    drive(scenario)


def test_each_answer_expires_on_its_own(drive: Drive) -> None:
    async def scenario(store: CacheStore, clock: Clock, org: str) -> None:
        slot = Slot(org, "web", "k1")
        await store.add(slot, b"short", 10, 5)
        await store.add(slot, b"long", 100, 5)
        clock.advance(10.5)
        assert await store.get(slot) == [b"long"]
        assert await store.add(slot, b"again", 10, 2)  # the expired one left room
        clock.advance(90)
        assert await store.get(slot) == []
        assert not await store.add(slot, b"never", 0, 2)  # max-age=0: nothing stored

    drive(scenario)


def test_clear_takes_one_project_one_organization_or_all(drive: Drive) -> None:
    async def scenario(store: CacheStore, clock: Clock, org: str) -> None:
        other = f"{org}-other"
        slots = [Slot(org, "web", "k"), Slot(org, "batch", "k"), Slot(other, "web", "k")]
        for slot in slots:
            await store.add(slot, b"x", 60, 1)
        assert await store.clear(org, "web") == 1
        assert [bool(await store.get(s)) for s in slots] == [False, True, True]
        assert await store.clear(org) == 1
        assert [bool(await store.get(s)) for s in slots] == [False, False, True]

    drive(scenario)


def test_names_that_look_like_patterns_stay_names(drive: Drive) -> None:
    async def scenario(store: CacheStore, clock: Clock, org: str) -> None:
        tricky = Slot(f"{org}:*", "p?[x]", "k")
        plain = Slot(org, "p", "k")
        await store.add(tricky, b"t", 60, 1)
        await store.add(plain, b"p", 60, 1)
        assert await store.clear(f"{org}:*") == 1
        assert await store.get(plain) == [b"p"]

    drive(scenario)


def test_stats_count_answers_and_bytes(drive: Drive) -> None:
    async def scenario(store: CacheStore, clock: Clock, org: str) -> None:
        before = await store.stats()
        await store.add(Slot(org, "web", "k1"), b"x" * 100, 60, 3)
        await store.add(Slot(org, "web", "k1"), b"y" * 100, 60, 3)
        after = await store.stats()
        assert after.entries == before.entries + 2
        assert after.bytes >= before.bytes + 200
        assert store.gauges() == after

    drive(scenario)


def test_memory_evicts_the_least_recently_used_past_its_bytes() -> None:
    async def main() -> None:
        size = 100 + OVERHEAD_BYTES
        store = MemoryStore(3 * size)
        a, b, c, d = (Slot("o", "p", key) for key in "abcd")
        for slot in (a, b, c):
            await store.add(slot, b"x" * 100, 60, 1)
        await store.get(a)  # a is now the most recently used
        await store.add(d, b"x" * 100, 60, 1)
        assert [bool(await store.get(s)) for s in (a, b, c, d)] == [True, False, True, True]
        assert (await store.stats()).bytes == 3 * size
        assert not await store.add(Slot("o", "p", "huge"), b"x" * 4 * size, 60, 1)

    asyncio.run(main())


def test_redis_keys_name_the_tenant_percent_encoded() -> None:
    slot = Slot("ac:me*", "we b", "ff00")
    assert key_of(slot) == "floopy:cache:ac%3Ame%2A:we%20b:ff00"
    assert pattern_of("ac:me*", None) == "floopy:cache:ac%3Ame%2A:*"
    assert pattern_of(None, None) == "floopy:cache:*"


def test_a_redis_that_does_not_answer_in_time_raises() -> None:
    async def main() -> None:
        writers: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await reader.read(1 << 16)  # takes the command, never answers

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
        try:
            store = RedisStore(redis, timeout=0.05)
            with pytest.raises(TimeoutError):
                await store.get(Slot("o", "p", "k"))
            with pytest.raises(TimeoutError):
                await store.add(Slot("o", "p", "k"), b"x", 60, 1)
        finally:
            await redis.aclose()
            for writer in writers:
                writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
