"""Stage: firewall. The prompt screened by the verdict cache, then a safety classifier:
block, flag or pass.

Not built yet: every request passes through unscreened (``ctx.firewall_verdict`` stays
empty). A block will raise ``PROMPT_THREAT_DETECTED`` before any provider is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floopy.pipeline.exchange import Exchange


async def run(exchange: Exchange) -> None:
    """Passes every request on."""
