"""``POST /v1/chat/completions``: the pipeline of DESIGN section 1, stage by stage.

stage       by                          sets on ctx                answers early with
auth        HeaderExtractor, KeyStore,  headers, key,              400 bad header, 401,
            Projects                    organization, project      403 foreign project
parse       native RequestParser        body, chat                 413, 400
rate_limit  RateLimiter                 user_id, rate_limit_*      429
routing     Router (rule or model)      requested_model, rule      400 unknown model/rule
dispatch    Dispatcher + providers      provider, model, ...       502, 504, 429
respond     respond.send_json/relay     usage, finish_reason, cost_usd, response_body

After the response, the request's tokens go to its token budgets (``admission``).

Each stage is a trace span (``ctx.span``), so the log has its latency and a span per stage;
dispatch adds one child span per provider attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.handlers import admission, respond
from floopy.handlers.body import read_body

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.pipeline.context import RequestContext
    from floopy.pipeline.dispatch import Attempt
    from floopy.pipeline.routing import Target
    from floopy.providers.base import Call, Completion, Provider, Stream
    from floopy.worker import Worker


async def chat_completions(
    worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol
) -> None:
    with ctx.span("auth"):
        admission.authenticate(worker, ctx, scope)
    with ctx.span("parse"):
        ctx.body = await read_body(scope, proto, worker.parser)
        ctx.chat = chat = worker.parser.chat(ctx.body)
    with ctx.span("rate_limit"):
        await admission.rate_limit(worker, ctx, chat.user)
    with ctx.span("routing"):
        targets = admission.route(worker, ctx, chat.model)
    await answer(worker, ctx, proto, targets, stream=chat.stream)


async def _complete(provider: Provider, call: Call) -> Completion:
    return await provider.complete(call)


async def answer(
    worker: Worker,
    ctx: RequestContext,
    proto: HTTPProtocol,
    targets: list[Target],
    *,
    stream: bool,
    complete: Attempt[Completion] = _complete,
    open_stream: Attempt[Stream] | None = None,
) -> None:
    """Dispatch and respond, whole or streamed, then the token budgets. ``complete`` and
    ``open_stream`` call each provider; ``provider.complete`` and ``provider.stream`` unless
    the endpoint speaks another API (``/v1/messages``)."""
    if stream:
        with ctx.span("dispatch", targets=len(targets)):
            relayed = await worker.dispatcher.stream(ctx, targets, open_stream)
        with ctx.span("respond", stream=True):
            await respond.relay(proto, ctx, relayed)
        ctx.response_body = relayed.summary.content.encode()
        ctx.cost_usd = worker.prices.cost(ctx.provider, ctx.model, ctx.usage)
    else:
        with ctx.span("dispatch", targets=len(targets)):
            completion = await worker.dispatcher.attempt(ctx, targets, complete)
        ctx.usage, ctx.finish_reason = completion.usage, completion.finish_reason
        ctx.cost_usd = worker.prices.cost(ctx.provider, ctx.model, ctx.usage)
        ctx.response_body = completion.body
        with ctx.span("respond", stream=False):
            respond.send_json(proto, ctx, completion.body, routed=True)
    await admission.spend_tokens(worker, ctx)
