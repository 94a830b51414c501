"""The request pipeline of the model endpoints, written once: ``STAGES`` below, run in order
by ``serve`` for ``/v1/chat/completions``, ``/v1/responses``, ``/v1/messages`` (and its
``count_tokens``) and ``/v1/embeddings`` alike.

Each stage is one module (a package once it has helpers or backends) with one contract: it
reads and sets the exchange (``exchange.Exchange``: the request context and what only lives
while the request is served) and may answer early, by raising a ``FloopyError`` (the client
gets it in its API's envelope) or by setting ``exchange.reply`` (a cache hit: the stages marked
``until_answered`` are then skipped). Each stage runs in its own trace span, so the log has a
span and a latency per stage (a pass-through stage not yet built, and ``cache_tap``, which
only wraps the reply, have none: every span costs a row in the log). The module docstring
of each stage says what it reads and sets.

Endpoints (``floopy.endpoints``) only say how their body parses and which error envelope they
answer in; adding a stage is one module and one line here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from floopy import errors
from floopy.pipeline import auth, cache, dispatch, firewall, parse, ratelimit, respond, routing
from floopy.pipeline.exchange import Endpoint, Exchange, Stage

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.context import RequestContext
    from floopy.worker import Worker

log = logging.getLogger("floopy")

STAGES: tuple[Stage, ...] = (
    Stage("auth", auth.run),  # API key, floopy-* headers, project       401 400 403
    Stage("parse", parse.run),  # body within limits, by the endpoint      413 400
    Stage("rate_limit", ratelimit.run),  # RATE_LIMITS budgets             429
    Stage("cache", cache.run),  # a repeat answered at once, one child span per tier   400
    Stage("firewall", firewall.run, until_answered=True),  # verdict cache, classifier  400 503
    Stage("routing", routing.run, until_answered=True),  # rule or model -> targets  400
    Stage("dispatch", dispatch.run, until_answered=True),  # retry, fall back   4xx 502 504
    Stage("cache_tap", cache.tap, traced=False),  # a missed request's stream, recorded
    Stage("respond", respond.run),  # headers, then the body or the stream
)
# Once the response is complete (not for an error answer); each returns what it waits on, or
# None, as a stage's ``run`` does.
AFTER_RESPONSE: tuple[Callable[[Exchange], Awaitable[None] | None], ...] = (
    ratelimit.spend_tokens,
    cache.store,  # a missed answer stored
)
# The log (``Worker.finished``): a whole answer's row and an error's are written just before
# they are sent (``respond``), a stream's once it ended; whatever the outcome, once.

__all__ = ["AFTER_RESPONSE", "STAGES", "Endpoint", "serve"]


async def serve(
    endpoint: Endpoint, worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol
) -> None:
    """Runs the stages for one request; an error becomes the answer, with the routing
    headers of the last target tried."""
    ctx.api_format = endpoint.api_format
    exchange = Exchange(worker, endpoint, ctx, scope, proto)
    try:
        await _run_stages(exchange)
    except errors.FloopyError as exc:
        exc.message = worker.secrets.scrub(exc.message)
        respond.send_error(proto, ctx, exc, routed=True, write_row=worker.finished)
        return
    except Exception:
        log.exception("unhandled error on %s %s (%s)", ctx.method, ctx.path, ctx.request_id)
        internal = errors.InternalError("internal error; see the log")
        respond.send_error(proto, ctx, internal, routed=True, write_row=worker.finished)
        return
    for step in AFTER_RESPONSE:
        waiting = step(exchange)
        if waiting is not None:
            await waiting


async def _run_stages(exchange: Exchange, stages: tuple[Stage, ...] = STAGES) -> None:
    ctx = exchange.ctx
    trace, stages_ms = ctx.trace, ctx.stages_ms
    for stage in stages:
        if stage.until_answered and exchange.reply is not None:
            continue
        if not stage.traced:
            exchange.span = None
            waiting = stage.run(exchange)
            if waiting is not None:
                await waiting
            continue
        # ctx.span's work without a context manager's: this runs for every stage.
        exchange.span = span = trace.start(stage.name, None, {})
        try:
            waiting = stage.run(exchange)
            if waiting is not None:
                await waiting
        except BaseException as exc:
            span.fail(exc)
            raise
        finally:
            trace.end(span, stages_ms)
