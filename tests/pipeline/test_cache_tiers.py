"""The exact tier's keys and buckets, the policy that turns the cache on, and a cache that
fails open: a store that errs costs a request nothing but the cache."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from clocks import Clock

from floopy import _native, errors
from floopy.context import RequestContext
from floopy.pipeline.cache import Cache, Hit, Query, Slot
from floopy.pipeline.cache.answer import entry
from floopy.pipeline.cache.exact import ExactTier
from floopy.pipeline.cache.memory import MemoryStore
from floopy.pipeline.cache.policy import Policy
from floopy.settings import load_settings

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


def query(**changes: Any) -> Query:
    fields: dict[str, Any] = {
        "api": "chat",
        "body": BODY,
        "organization": "acme",
        "project": "web",
        "routing": "\0",
        "seed": None,
        "ignore_keys": [],
        "bucket_size": 1,
        "bucketed": False,
        "ttl": 60.0,
        "stream": False,
        "include_usage": False,
    }
    return Query(**{**fields, **changes})


def test_every_part_of_the_scope_changes_the_key() -> None:
    tier = ExactTier(MemoryStore(1 << 20))
    base = tier.slot(query())
    assert (
        tier.slot(query(body=b'{"messages":[{"content":"hi","role":"user"}],"model":"m"}')) == base
    )
    for change in (
        {"api": "messages"},
        {"organization": "globex"},
        {"project": "batch"},
        {"routing": "other-model\0"},
        {"seed": "s"},
        {"organization": "acme\nweb", "project": ""},  # no two scopes spell the same
    ):
        assert tier.slot(query(**change)).key != base.key, change
    assert tier.slot(query(ignore_keys=["messages"])).key != base.key


def stored(tier: ExactTier, q: Query, text: str) -> None:
    async def store() -> None:
        miss = await tier.lookup(q)
        assert not isinstance(miss, Hit)
        body = b'{"text":"' + text.encode() + b'"}'
        assert await miss.store(entry("chat", body, "p", "m", None, "stop").encode())

    asyncio.run(store())


def test_a_bucket_misses_until_full_then_serves_the_chosen_answer() -> None:
    chosen: list[int] = []

    def choose(n: int) -> int:
        chosen.append(n)
        return n - 1

    tier = ExactTier(MemoryStore(1 << 20), choose=choose)
    q = query(bucket_size=2, bucketed=True)
    stored(tier, q, "one")
    stored(tier, q, "two")
    hit = asyncio.run(tier.lookup(q))
    assert isinstance(hit, Hit) and hit.bucket_index == 1 and hit.entry.body == b'{"text":"two"}'
    assert chosen == [2]
    plain = asyncio.run(tier.lookup(query()))  # without buckets: the first answer, no index
    assert isinstance(plain, Hit) and plain.bucket_index is None
    assert plain.entry.body == b'{"text":"one"}'


class BrokenStore(MemoryStore):
    async def get(self, slot: Slot) -> list[bytes]:
        raise ConnectionError("store down")


def test_a_failing_store_is_a_miss_counted_as_an_error_and_rests() -> None:
    clock = Clock()
    store = BrokenStore(1 << 20)
    policy = Policy(load_settings({}))
    cache = Cache(store, [ExactTier(store)], policy, clock=clock)
    context = RequestContext(request_id="r", method="POST", path="/", client_ip="127.0.0.1")
    span = context.start_span("cache")
    assert asyncio.run(cache.lookup(query(), context, span)) == []
    assert cache.counters.counts["error"]["exact"] == 1
    assert cache.readiness()["status"] == "down"
    assert "store down" in cache.readiness()["error"]
    child = next(s for s in context.trace.spans if s.name == "exact")
    assert child.attributes["outcome"] == "error"
    asyncio.run(cache.lookup(query(), context, span))  # resting: not asked again
    assert cache.counters.counts["error"]["exact"] == 1
    clock.advance(1.5)
    store.get = MemoryStore.get.__get__(store)  # type: ignore[method-assign]
    assert len(asyncio.run(cache.lookup(query(), context, span))) == 1
    assert cache.readiness() == {"status": "up", "store": "memory", "tiers": ["exact"]}
    assert b'floopy_cache_errors_total{tier="exact"} 1' in cache.metrics_text()


def exchange(headers: list[tuple[str, str]], key_id: str = "k", project: str = "web") -> Any:
    parsed = _native.HeaderExtractor().extract(headers, names=[n for n, _ in headers])
    ctx = RequestContext(request_id="r", method="POST", path="/", client_ip="127.0.0.1")
    ctx.headers, ctx.organization, ctx.project = parsed, "acme", project
    ctx.key = SimpleNamespace(id=key_id)  # type: ignore[assignment]
    ctx.body = BODY
    request = SimpleNamespace(cache_api="chat", stream=False)
    return SimpleNamespace(ctx=ctx, parsed=lambda: request)


def policy(**settings: str) -> Policy:
    return Policy(load_settings({f"FLOOPY_{k}": v for k, v in settings.items()}))


def test_the_cache_is_off_unless_asked() -> None:
    off, on = policy(), policy(CACHE_ENABLED="true")
    assert off.query(exchange([])) is None
    assert on.query(exchange([])) is not None
    assert off.query(exchange([("floopy-cache-enabled", "true")])) is not None
    assert on.query(exchange([("floopy-cache-enabled", "false")])) is None
    assert on.query(exchange([("cache-control", "no-store")])) is None
    assert on.query(exchange([("cache-control", "no-cache")])) is None
    by_key = policy(CACHE_ENABLED_KEYS='["k"]')
    assert by_key.query(exchange([])) is not None
    assert by_key.query(exchange([], key_id="other")) is None
    by_project = policy(CACHE_ENABLED_PROJECTS='["web"]')
    assert by_project.query(exchange([])) is not None
    assert by_project.query(exchange([], project="batch")) is None


def test_ttl_buckets_seed_and_ignore_keys_come_from_the_request() -> None:
    on = policy(CACHE_ENABLED="true", CACHE_TTL="100", CACHE_MAX_TTL="1000")
    q = on.query(exchange([]))
    assert q is not None and q.ttl == 100 and q.bucket_size == 1 and not q.bucketed
    headers = [
        ("cache-control", "max-age=5000"),
        ("floopy-cache-bucket-max-size", "20"),
        ("floopy-cache-seed", "s1"),
        ("floopy-cache-ignore-keys", "temperature,seed"),
    ]
    q = on.query(exchange(headers))
    assert q is not None
    assert q.ttl == 1000  # capped at CACHE_MAX_TTL
    assert (q.bucket_size, q.bucketed, q.seed) == (20, True, "s1")
    assert q.ignore_keys == ["temperature", "seed"]
    q = on.query(exchange([("cache-control", "max-age=0")]))
    assert q is not None and q.ttl == 0
    with pytest.raises(errors.BadRequest, match="from 1 to 20"):
        on.query(exchange([("floopy-cache-bucket-max-size", "21")]))
