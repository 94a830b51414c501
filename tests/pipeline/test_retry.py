"""Retry decisions: which failures are retried, backoff and jitter bounds, Retry-After, the
request's deadline; and reading Retry-After from a provider's answer."""

from __future__ import annotations

import email.utils
import time

import pytest
from clocks import Clock

from floopy import errors
from floopy.pipeline.dispatch.retry import Deadline, RetryPolicy, falls_back, is_retriable
from floopy.providers.base import retry_after_seconds, upstream_error


@pytest.mark.parametrize(
    ("status", "retried", "next_target"),
    [
        (400, False, False),
        (401, False, True),  # our credentials: another provider may take them
        (403, False, True),
        (404, False, False),
        (408, True, True),
        (409, True, True),
        (413, False, False),
        (422, False, False),
        (429, True, True),
        (500, True, True),
        (502, True, True),
        (503, True, True),
        (529, True, True),
    ],
)
def test_upstream_statuses(status: int, retried: bool, next_target: bool) -> None:
    error = upstream_error("mock", status, "nope")
    assert error.upstream_status == status
    assert is_retriable(error) is retried
    assert falls_back(error) is next_target


def test_transport_failures_are_retried() -> None:
    assert is_retriable(errors.ProviderError("mock is unreachable: connection reset"))
    assert is_retriable(errors.GatewayTimeout("mock did not answer in time"))
    assert not is_retriable(errors.BadRequest("bad body"))
    assert not falls_back(errors.BadRequest("bad body"))


def policy(*randoms: float, attempts: int = 5) -> RetryPolicy:
    values = iter(randoms)
    return RetryPolicy(
        attempts=attempts, backoff=0.25, backoff_max=4.0, random=lambda: next(values)
    )


def test_backoff_doubles_with_jitter_between_half_and_all_of_it() -> None:
    low = [policy(0.0).delay(n, None) for n in range(6)]
    high = [policy(0.999999).delay(n, None) for n in range(6)]
    assert low == [0.125, 0.25, 0.5, 1.0, 2.0, 2.0]
    assert high == pytest.approx([0.25, 0.5, 1.0, 2.0, 4.0, 4.0], rel=1e-5)


def test_jitter_spreads_retries() -> None:
    real = RetryPolicy(attempts=3, backoff=1.0, backoff_max=8.0)
    delays = {real.delay(2, None) for _ in range(50)}
    assert len(delays) > 40
    assert all(2.0 <= d <= 4.0 for d in delays if d is not None)


def test_retry_after_is_honoured_up_to_the_longest_backoff() -> None:
    assert policy().delay(0, 1.5) == 1.5
    assert policy().delay(3, 0.0) == 0.0
    assert policy().delay(0, 4.0) == 4.0
    assert policy().delay(0, 7.0) is None, "a long Retry-After: better try the next target"


def test_deadline() -> None:
    clock = Clock()
    deadline = Deadline(10.0, clock)
    assert deadline.remaining() == 10.0
    clock.advance(7.5)
    assert deadline.allows(2.0)
    assert not deadline.allows(2.5)
    clock.advance(5)
    assert deadline.remaining() == 0.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_header(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers) == seconds


def test_retry_after_as_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after_seconds({"retry-after": when})
    assert seconds is not None and 28 <= seconds <= 30


def test_upstream_429_keeps_retry_after_for_the_client_and_for_dispatch() -> None:
    error = upstream_error("mock", 429, "slow down", headers={"retry-after-ms": "1500"})
    assert isinstance(error, errors.RateLimitExceeded)
    assert error.retry_after == 1.5
    assert error.headers["Retry-After"] == "2"
    bare = upstream_error("mock", 429, "slow down")
    assert bare.retry_after is None and bare.headers["Retry-After"] == "1"
