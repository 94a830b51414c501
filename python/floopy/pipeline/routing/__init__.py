"""Stage: routing. A routing rule or the model name into the ordered targets to try
(``router``; rules' strategies in ``strategies``, the latencies they read in ``latency``).

Reads the headers (``floopy-routing-rule``, ``floopy-model-override``, ``floopy-fallback``)
and the key's rule; sets ``ctx.requested_model``, ``ctx.routing_rule`` and the exchange's
targets. Answers early with 400 for an unknown model or rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy import errors
from floopy.pipeline.routing.router import Router
from floopy.pipeline.routing.target import Target

if TYPE_CHECKING:
    from floopy.pipeline.exchange import Exchange

__all__ = ["Router", "Target"]


async def run(exchange: Exchange) -> None:
    """Precedence: the ``floopy-routing-rule`` header, then the key's routing rule, then the
    model name (``floopy-model-override``, else the body's)."""
    ctx = exchange.ctx
    headers, key = ctx.headers, ctx.key
    assert headers is not None and key is not None, "runs after auth"
    ctx.requested_model = headers.model_override or exchange.parsed().model
    ctx.routing_rule = headers.routing_rule or key.routing_rule
    _check_fan_out(exchange, ctx.requested_model, len(headers.fallbacks))
    exchange.targets = exchange.worker.router.route(
        ctx.requested_model,
        headers.fallbacks,
        rule=ctx.routing_rule,
        prompt_bytes=len(ctx.body),
    )


def _check_fan_out(exchange: Exchange, model: str, fallbacks: int) -> None:
    """Refuses a request naming more models than MAX_TARGETS_PER_REQUEST, before any is
    resolved: a few KiB of header must not turn into hundreds of upstream calls."""
    named = fallbacks + (0 if exchange.ctx.routing_rule else model.count(",") + 1)
    limit = exchange.worker.settings.max_targets_per_request
    if named > limit:
        raise errors.BadRequest(
            f"the request names {named} models (`model` and floopy-fallback together); "
            f"at most {limit} are allowed (MAX_TARGETS_PER_REQUEST)",
            param="model",
        )
