"""Stage: firewall. The prompt screened by the verdict cache, then a safety classifier:
block, flag or pass (DESIGN section 6).

For each request that makes a model answer (chat completions, messages, responses; not
embeddings or token counts), after the cache and before routing, so a stream is screened
before its first byte:

1. the mode: ``FIREWALL``'s for the API key, else its project, else the default (``block``,
   ``flag`` or ``off``); ``floopy-llm-security-enabled: true`` turns an ``off`` into
   ``block`` where ``client_may_enable`` allows. ``off``: nothing is screened or recorded;
2. the screened text (``screened``): the last user turn, and the turn's tool results when
   ``tool_results`` is on, in windows. None at all, or ``floopy-llm-security-enabled:
   false`` where ``client_may_disable`` allows, is the verdict ``skipped``;
3. the verdict (``screening``): the verdict cache, else the classifier backend (``llm``: a
   Llama Guard model through a provider, ``llm.py``; ``local``: an offline injection and
   jailbreak classifier, ``local.py``); ``error`` when there is none in time;
4. the outcome: ``unsafe`` in ``block`` mode answers 400 ``PROMPT_THREAT_DETECTED`` naming
   the categories (never the prompt), in the client's API's envelope; in ``flag`` mode it is
   only recorded. ``error`` in ``block`` mode with ``fail: "closed"`` answers 503
   ``FIREWALL_UNAVAILABLE``; otherwise the request goes on (fail open).

Reads the key, project, organization, ``floopy-llm-security-enabled`` and the parsed prompt;
sets ``ctx.firewall_*`` (verdict, score, categories, backend, model, from the verdict cache)
and the ``firewall`` span's attributes; counts verdicts per backend and mode in /metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from floopy import errors
from floopy.pipeline.firewall.build import build_firewall
from floopy.pipeline.firewall.screened import tool_results, windows
from floopy.pipeline.firewall.screening import Firewall
from floopy.pipeline.firewall.verdict import Verdict

if TYPE_CHECKING:
    from floopy.context import RequestContext
    from floopy.pipeline.exchange import Exchange
    from floopy.settings import FirewallConfig
    from floopy.settings.firewall import Mode

__all__ = ["Firewall", "Verdict", "build_firewall", "mode_of", "run"]


def run(exchange: Exchange) -> Awaitable[None] | None:
    firewall, ctx = exchange.worker.firewall, exchange.ctx
    config = exchange.worker.settings.firewall
    prompt = exchange.parsed().prompt
    if firewall is None or prompt is None:
        return None
    mode = mode_of(config, ctx)
    if mode == "off":
        return None
    return _screen(exchange, firewall, config, mode, prompt)


async def _screen(
    exchange: Exchange, firewall: Firewall, config: FirewallConfig, mode: Mode, prompt: str
) -> None:
    ctx = exchange.ctx
    screened = [] if _client_turned_off(config, ctx) else _windows(prompt, ctx, config, firewall)
    if screened:
        verdict = await firewall.screen(ctx, screened)
    else:
        verdict = Verdict("skipped", None, (), firewall.classifier.backend)
    _record(exchange, firewall, verdict, mode)
    if mode != "block":
        return
    if verdict.outcome == "unsafe":
        raise errors.PromptThreatDetected(
            "the prompt was blocked by the gateway's firewall: "
            + (", ".join(verdict.categories) or "unsafe content")
        )
    if verdict.outcome == "error" and config.fail == "closed":
        raise errors.FirewallUnavailable(
            "the gateway's firewall could not screen the prompt; try again later"
        )


def mode_of(config: FirewallConfig, ctx: RequestContext) -> Mode:
    """Step 1: the policy's mode, turned on by a client allowed to ask for it."""
    mode = config.mode_for(ctx.key.id if ctx.key is not None else None, ctx.project)
    if mode == "off" and _asked(ctx) is True and config.client_may_enable:
        return "block"
    return mode


def _windows(
    prompt: str, ctx: RequestContext, config: FirewallConfig, firewall: Firewall
) -> list[str]:
    """Step 2: the windows of the prompt and, by setting, of the turn's tool results."""
    texts = [prompt, *(tool_results(ctx.body, ctx.api_format) if config.tool_results else ())]
    size, limit = firewall.window_chars, config.max_windows
    return [window for text in texts for window in windows(text, size, limit)]


def _client_turned_off(config: FirewallConfig, ctx: RequestContext) -> bool:
    return _asked(ctx) is False and config.client_may_disable


def _asked(ctx: RequestContext) -> bool | None:
    """``floopy-llm-security-enabled``: True, False, or None when absent."""
    return ctx.headers.llm_security_enabled if ctx.headers is not None else None


def _record(exchange: Exchange, firewall: Firewall, verdict: Verdict, mode: str) -> None:
    ctx = exchange.ctx
    ctx.firewall_verdict = verdict.outcome
    ctx.firewall_score = verdict.score
    ctx.firewall_categories = verdict.categories
    ctx.firewall_backend = verdict.backend
    ctx.firewall_model = verdict.model
    ctx.firewall_from_cache = verdict.from_cache
    if exchange.span is not None:
        exchange.span.set(
            mode=mode,
            verdict=verdict.outcome,
            score=verdict.score,
            categories=",".join(verdict.categories),
            backend=verdict.backend,
            model=verdict.model,
            from_verdict_cache=verdict.from_cache,
        )
    firewall.counters.verdict(verdict.backend or "", mode, verdict.outcome)
