"""Stage: cache. Exact, then semantic, then advanced lookups, answering a repeat at once.

Not built yet: every request passes through untouched (``ctx.cache_status`` stays empty, so
the log tells a request the cache never saw from a miss). A hit will set ``exchange.reply``,
which skips the firewall, routing and dispatch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floopy.pipeline.exchange import Exchange


async def run(exchange: Exchange) -> None:
    """Passes every request on."""
