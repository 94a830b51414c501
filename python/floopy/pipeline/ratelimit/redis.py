"""Rate-limit counters shared through Redis, so several gateway instances spend one budget.

Each budget is a sorted set of uses (score: time, member: ``<request id>:<amount>``) and a
running total beside it. One Lua script checks every budget of a request and counts it, so
the check and the count are one atomic step across all instances: exact sliding windows, the
same semantics as the in-process counters. Times are the gateway's clock, so instances need
synchronised clocks (NTP). When Redis fails, requests go through and the failure is logged:
an unreachable Redis must not take the gateway down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from floopy.pipeline.ratelimit.budget import Budget, Usage, Verdict

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("floopy")

PREFIX = "floopy:ratelimit:"

# Shared by both scripts: drop the uses that left the window of budget i, return its total.
_EXPIRE = """
local function amount(member) return tonumber(string.match(member, ':(%d+)$')) end
local function expire(uses, total, horizon)
  local gone = redis.call('ZRANGEBYSCORE', uses, '-inf', horizon)
  if #gone > 0 then
    local sum = 0
    for _, member in ipairs(gone) do sum = sum + amount(member) end
    redis.call('ZREMRANGEBYSCORE', uses, '-inf', horizon)
    redis.call('DECRBY', total, sum)
  end
  local left = tonumber(redis.call('GET', total) or '0')
  if left < 0 or redis.call('ZCARD', uses) == 0 then
    redis.call('DEL', total)
    left = 0
  end
  return left
end
local function add(uses, total, now, member, value, window)
  redis.call('ZADD', uses, now, member)
  redis.call('INCRBY', total, value)
  local ttl = math.ceil(window * 1000) + 1000
  redis.call('PEXPIRE', uses, ttl)
  redis.call('PEXPIRE', total, ttl)
end
"""

# KEYS: per budget, its uses and its total. ARGV: now, request id, then per budget its
# kind ('requests' or 'tokens'), limit and window. Returns {0, budget number, seconds to wait}
# when a budget is used up, else {1, then per budget: used, seconds until its oldest use
# leaves ('' when none)}.
_ACQUIRE = (
    _EXPIRE
    + """
local now, id = tonumber(ARGV[1]), ARGV[2]
local count = #KEYS / 2
local used = {}
for i = 1, count do
  used[i] = expire(KEYS[2 * i - 1], KEYS[2 * i], now - tonumber(ARGV[3 * i + 2]))
end
for i = 1, count do
  local limit, window = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  if used[i] >= limit then
    local left = used[i]
    local uses = redis.call('ZRANGE', KEYS[2 * i - 1], 0, -1, 'WITHSCORES')
    for j = 1, #uses, 2 do
      left = left - amount(uses[j])
      if left < limit then return {0, i, tostring(tonumber(uses[j + 1]) + window - now)} end
    end
    return {0, i, '0'}
  end
end
local reply = {1}
for i = 1, count do
  local uses, window = KEYS[2 * i - 1], tonumber(ARGV[3 * i + 2])
  if ARGV[3 * i] == 'requests' then
    add(uses, KEYS[2 * i], now, id .. ':1', 1, window)
    used[i] = used[i] + 1
  end
  local oldest = redis.call('ZRANGE', uses, 0, 0, 'WITHSCORES')
  reply[#reply + 1] = used[i]
  reply[#reply + 1] = oldest[2] and tostring(tonumber(oldest[2]) + window - now) or ''
end
return reply
"""
)

# KEYS: per budget, its uses and its total. ARGV: now, request id, tokens, then the windows.
_ADD_TOKENS = (
    _EXPIRE
    + """
local now, id, tokens = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
for i = 1, #KEYS / 2 do
  local window = tonumber(ARGV[3 + i])
  expire(KEYS[2 * i - 1], KEYS[2 * i], now - window)
  add(KEYS[2 * i - 1], KEYS[2 * i], now, id .. ':' .. tokens, tokens, window)
end
return 1
"""
)


class RedisCounters:
    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._acquire: Any = redis.register_script(_ACQUIRE)
        self._add_tokens: Any = redis.register_script(_ADD_TOKENS)

    async def acquire(self, budgets: Sequence[Budget], request_id: str) -> Verdict:
        args: list[str | int] = [repr(self._clock()), request_id]
        for budget in budgets:
            args.extend((budget.kind, budget.limit, repr(budget.window)))
        try:
            reply = await self._acquire(keys=_keys(budgets), args=args)
        except Exception as exc:
            log.warning("rate limits: Redis unavailable, request let through: %s", exc)
            return Verdict(True)
        if not int(reply[0]):
            return Verdict(
                False, denied_by=budgets[int(reply[1]) - 1], retry_after=_float(reply[2])
            )
        return Verdict(True, tuple(_usages(budgets, reply[1:])))

    async def add_tokens(self, budgets: Sequence[Budget], tokens: int, request_id: str) -> None:
        args: list[str | int] = [repr(self._clock()), request_id, tokens]
        args.extend(repr(budget.window) for budget in budgets)
        try:
            await self._add_tokens(keys=_keys(budgets), args=args)
        except Exception as exc:
            log.warning("rate limits: Redis unavailable, %d tokens not counted: %s", tokens, exc)

    async def close(self) -> None:
        pass  # the connection belongs to the worker


def _keys(budgets: Sequence[Budget]) -> list[str]:
    keys: list[str] = []
    for budget in budgets:
        keys.extend((f"{PREFIX}{budget.key}", f"{PREFIX}{budget.key}:total"))
    return keys


def _usages(budgets: Sequence[Budget], pairs: list[Any]) -> list[Usage]:
    usages = []
    for index, budget in enumerate(budgets):
        used, oldest = pairs[2 * index], pairs[2 * index + 1]
        usages.append(Usage(budget, int(used), _float(oldest) if oldest else None))
    return usages


def _float(value: Any) -> float:
    text = value.decode() if isinstance(value, bytes) else str(value)
    number = float(text)
    return number if math.isfinite(number) else 0.0
