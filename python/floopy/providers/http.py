"""Calling a provider over HTTP: the timeouts and transport failures every provider shares.

A provider that cannot be reached, or does not answer in time, becomes the gateway's
ProviderError or GatewayTimeout (which the dispatcher may fall back from); reading what an
answer means, and mapping an upstream error body, is each provider's own business.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from floopy import errors


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def post(
    session: aiohttp.ClientSession,
    provider: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    time_limit: float,
) -> Answer:
    """POSTs ``body`` and reads the whole answer, whatever its status."""
    try:
        async with asyncio.timeout(time_limit):
            async with session.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
                return Answer(resp.status, dict(resp.headers), data)
    except TimeoutError:
        raise errors.GatewayTimeout(f"{provider} did not answer in time") from None
    except aiohttp.ClientError as exc:
        raise errors.ProviderError(f"{provider} is unreachable: {exc}") from exc


async def open_stream(
    session: aiohttp.ClientSession,
    provider: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    time_limit: float,
) -> aiohttp.ClientResponse | Answer:
    """POSTs ``body`` and returns the open response once its status is 200 (the caller
    reads and closes it), or the whole answer of any other status."""
    try:
        async with asyncio.timeout(time_limit):
            resp = await session.post(url, data=body, headers=headers)
            if resp.status == 200:
                return resp
            try:
                return Answer(resp.status, dict(resp.headers), await resp.read())
            finally:
                resp.release()
    except TimeoutError:
        raise errors.GatewayTimeout(f"{provider} did not answer in time") from None
    except aiohttp.ClientError as exc:
        raise errors.ProviderError(f"{provider} is unreachable: {exc}") from exc
