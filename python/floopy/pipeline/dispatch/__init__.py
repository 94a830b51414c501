"""Stage: dispatch. The targets called in order until one answers (``dispatcher``), with
retries (``retry``) and a circuit breaker per target (``breaker``).

Reads the targets and the parsed request; sets ``ctx.provider``, ``ctx.model`` and
``ctx.fallback_used`` (of the last target tried) and the exchange's reply: a whole answer, or
a stream whose first event has arrived. Answers early with the provider's 4xx, 429, or 502 /
504 once every target failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.pipeline.dispatch.dispatcher import Dispatcher, SettledStream

if TYPE_CHECKING:
    from floopy.pipeline.exchange import Exchange

__all__ = ["Dispatcher", "SettledStream"]


async def run(exchange: Exchange) -> None:
    targets = exchange.targets
    if exchange.span is not None:
        exchange.span.attributes["targets"] = len(targets)
    exchange.reply = await exchange.worker.dispatcher.dispatch(
        exchange.ctx, targets, exchange.parsed()
    )
