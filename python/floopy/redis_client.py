"""The Redis connection pool of one worker process, when ``REDIS_URL`` is set: shared
rate-limit counters and circuit-breaker state across gateway instances.

Opened inside the worker (granian forks workers, and a pool must not cross a fork). Short
socket timeouts, because every user of it fails open: a slow or absent Redis costs a
request at most this long, never its answer.
"""

from __future__ import annotations

from redis.asyncio import Redis

SOCKET_TIMEOUT = 1.0  # seconds


def open_redis(url: str) -> Redis:
    client: Redis = Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
    )
    return client
