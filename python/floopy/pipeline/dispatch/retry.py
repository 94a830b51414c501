"""Which failures dispatch retries, which it falls back on, and how long it waits in between.

Retriable: the provider may well answer next time (it was unreachable, timed out, rate
limited us, or failed on its side): connection errors, timeouts, HTTP 408, 409, 429, 5xx
and 529. Such a target is retried with exponential backoff and jitter, or after the
provider's Retry-After when it sent one, within the request's deadline; then the next target.

Not retriable but worth another target: the provider rejected the gateway's own credentials
(401, 403), which another provider will not. Neither: the client's own mistakes (other 4xx),
which every provider would reject alike, so they go straight back to the client.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from floopy import errors

_RETRIABLE_STATUSES = frozenset({408, 409, 429, 529})


def falls_back(exc: errors.FloopyError) -> bool:
    """Whether another target might answer where this one failed."""
    return isinstance(exc, (errors.ProviderError, errors.GatewayTimeout, errors.RateLimitExceeded))


def is_retriable(exc: errors.FloopyError) -> bool:
    """Whether the same target is worth another attempt."""
    if isinstance(exc, (errors.GatewayTimeout, errors.RateLimitExceeded)):
        return True
    if not isinstance(exc, errors.ProviderError):
        return False
    status = exc.upstream_status
    # No status: the connection failed or broke before a whole answer arrived.
    return status is None or status >= 500 or status in _RETRIABLE_STATUSES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int  # retries after the first attempt
    backoff: float  # seconds before the first retry, doubled for each one after
    backoff_max: float  # longest wait; also the longest Retry-After honoured
    random: Callable[[], float] = random.random

    def delay(self, retry: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number ``retry`` (0 for the first), or None when the
        provider asks for a longer wait than ``backoff_max``: the next target is better."""
        if retry_after is not None:
            return retry_after if retry_after <= self.backoff_max else None
        ceiling = min(self.backoff_max, self.backoff * 2.0**retry)
        # "Equal jitter": at least half the backoff, so retries still back off, spread over
        # the other half, so clients that failed together do not retry together.
        return ceiling / 2 + ceiling / 2 * self.random()


class Deadline:
    """The time one request may spend on upstream attempts, retries and fallbacks included."""

    __slots__ = ("_clock", "_end")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def allows(self, wait: float) -> bool:
        """Whether an attempt could still start after waiting ``wait`` seconds."""
        return self._clock() + wait < self._end


class Expiry:
    """``asyncio.timeout(seconds)`` for one attempt, as a plain ``with`` block: one loop timer
    that cancels the running task, and a ``TimeoutError`` out of the block when it did (and
    no other cancellation is pending), as ``asyncio.timeout`` does. A third of its calls: this
    runs for every attempt."""

    __slots__ = ("_cancelling", "_expired", "_handle", "_task")

    def __init__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None, "runs in a task"
        self._task = task
        self._cancelling = task.cancelling()
        self._expired = False
        self._handle: asyncio.Handle = (
            loop.call_at(loop.time() + seconds, self._expire)
            if seconds > 0
            else loop.call_soon(self._expire)
        )

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    def __enter__(self) -> Expiry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._handle.cancel()
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc


class Attempts:
    """The upstream calls one request may still make, retries and fallbacks included
    (``MAX_ATTEMPTS_PER_REQUEST``)."""

    __slots__ = ("left",)

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self) -> None:
        self.left -= 1
