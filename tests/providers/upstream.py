"""Stream objects over a fake aiohttp response, for tests without a network: the fake needs
only ``content.iter_any()`` and ``close()``; the aiohttp client's adapter makes it the
upstream seam's ``Response``."""

from __future__ import annotations

import asyncio
from typing import Any

from floopy.providers.http import Timeouts, UpstreamBody
from floopy.upstream.aiohttp_client import AiohttpResponse

PATIENT = Timeouts(connect=5, first_byte=5, total=5)


def upstream_body(provider: str, response: Any, timeouts: Timeouts = PATIENT) -> UpstreamBody:
    """Call inside the event loop: the upstream call's clock starts here."""
    started = asyncio.get_running_loop().time()
    return UpstreamBody(provider, AiohttpResponse(response), timeouts, started)
