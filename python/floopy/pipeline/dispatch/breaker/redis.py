"""Circuit breakers shared through Redis, so every gateway instance skips the same broken
target. Each target is one hash, changed only by the two Lua scripts below, so concurrent
instances never interleave a read and a write; the instance whose call changes the state
reports the event, so each change is reported once.

The scripts mirror ``state.Circuit`` exactly (same buckets, same thresholds); the times are
the gateway's clock, so instances need synchronised clocks (NTP), as for rate limits. When
Redis fails, calls go through (a broken Redis must not take every target down) and the
failure is logged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from floopy.pipeline.dispatch.breaker.state import (
    BUCKETS,
    BreakerEvent,
    Change,
    opened_by_failures,
    opened_by_ratio,
    probe_outcome,
    probing,
)
from floopy.settings import CircuitBreakerConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("floopy")

PREFIX = "floopy:breaker:"

# KEYS[1] the target's hash; ARGV: now, cooldown, ttl.
# Returns {allowed (0/1), 1 when this call turned open into half_open}.
_ALLOW = """
local now, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
local fields = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'probe_until')
local state, opened, probe = fields[1], fields[2], fields[3]
if not state or state == 'closed' then return {1, 0} end
if state == 'open' then
  if now < tonumber(opened) + cooldown then return {0, 0} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + cooldown))
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {1, 1}
end
if now >= tonumber(probe) then
  redis.call('HSET', KEYS[1], 'probe_until', tostring(now + cooldown))
  return {1, 0}
end
return {0, 0}
"""

# KEYS[1] the target's hash; ARGV: now, ok (1/0), failures, failure_ratio, min_requests,
# bucket width, ttl, buckets. Returns {} or {change, count, calls} with change one of 'probe',
# 'failures', 'ratio'.
_RECORD = """
local key, now, ok = KEYS[1], tonumber(ARGV[1]), ARGV[2] == '1'
local buckets = tonumber(ARGV[8])
local state = redis.call('HGET', key, 'state')
local function open()
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'open', 'opened_at', ARGV[1])
  redis.call('EXPIRE', key, ARGV[7])
end
if state == 'half_open' then
  if ok then redis.call('DEL', key) else open() end
  return {'probe', 0, 0}
end
if state == 'open' then return {} end
local current = math.floor(now / tonumber(ARGV[6]))
local slot = current % (buckets + 1)
if tonumber(redis.call('HGET', key, 'b' .. slot)) ~= current then
  redis.call('HSET', key, 'b' .. slot, current, 'c' .. slot, 0, 'f' .. slot, 0)
end
redis.call('HINCRBY', key, 'c' .. slot, 1)
redis.call('EXPIRE', key, ARGV[7])
if ok then
  redis.call('HSET', key, 'consecutive', 0)
  return {}
end
redis.call('HINCRBY', key, 'f' .. slot, 1)
local consecutive = redis.call('HINCRBY', key, 'consecutive', 1)
if consecutive >= tonumber(ARGV[3]) then
  open()
  return {'failures', consecutive, 0}
end
local calls, failed = 0, 0
for s = 0, buckets do
  local b, c, f = unpack(redis.call('HMGET', key, 'b' .. s, 'c' .. s, 'f' .. s))
  if b and tonumber(b) >= current - buckets then
    calls, failed = calls + tonumber(c), failed + tonumber(f)
  end
end
if calls >= tonumber(ARGV[5]) and failed / calls >= tonumber(ARGV[4]) then
  open()
  return {'ratio', failed, calls}
end
return {}
"""


class RedisBreakers:
    def __init__(
        self,
        redis: Redis,
        config: CircuitBreakerConfig,
        on_event: Callable[[BreakerEvent], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._clock = clock
        self._allow: Any = redis.register_script(_ALLOW)
        self._record: Any = redis.register_script(_RECORD)
        # Long enough that no state is lost while it matters; then Redis forgets idle targets.
        self._ttl = math.ceil(config.window + config.cooldown) * 2

    async def allow(self, provider: str, model: str) -> bool:
        now = self._clock()
        try:
            allowed, probing_now = await self._allow(
                keys=[_key(provider, model)], args=[repr(now), self._config.cooldown, self._ttl]
            )
        except Exception as exc:  # any Redis failure: fail open, say so
            log.warning(
                "circuit breaker: Redis unavailable, %s/%s let through: %s", provider, model, exc
            )
            return True
        if probing_now:
            self._emit(provider, model, probing(self._config.cooldown), now)
        return bool(allowed)

    async def record(
        self, provider: str, model: str, *, ok: bool, error: str | None = None
    ) -> None:
        config, now = self._config, self._clock()
        args = [
            repr(now),
            1 if ok else 0,
            config.failures,
            repr(config.failure_ratio),
            config.min_requests,
            repr(config.window / BUCKETS),
            self._ttl,
            BUCKETS,
        ]
        try:
            result = await self._record(keys=[_key(provider, model)], args=args)
        except Exception as exc:
            log.warning(
                "circuit breaker: Redis unavailable, %s/%s not counted: %s", provider, model, exc
            )
            return
        self._emit(provider, model, _change(result, ok, error, config), now)

    async def close(self) -> None:
        pass  # the connection belongs to the worker

    def _emit(self, provider: str, model: str, change: Change | None, now: float) -> None:
        if change is not None:
            self._on_event(change.event(provider, model, now))


def _key(provider: str, model: str) -> str:
    # Provider names never hold "/" (clients name models as provider/model).
    return f"{PREFIX}{provider}/{model}"


def _change(
    result: list[Any], ok: bool, error: str | None, config: CircuitBreakerConfig
) -> Change | None:
    if not result:
        return None
    kind = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
    count, calls = int(result[1]), int(result[2])
    if kind == "probe":
        return probe_outcome(ok, error)
    if kind == "failures":
        return opened_by_failures(count, error)
    return opened_by_ratio(count, calls, config.window, error)
