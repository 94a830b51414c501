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
    from floopy.worker import Worker


async def chat_completions(
    worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol
) -> None:
    with ctx.span("auth"):
        ctx.headers = headers = worker.parser.headers(scope.headers.items())
        ctx.key = worker.keys.authenticate(headers.api_key)
        admission.resolve_project(worker, ctx)
    with ctx.span("parse"):
        ctx.body = await read_body(scope, proto, worker.parser)
        ctx.chat = chat = worker.parser.chat(ctx.body)
    with ctx.span("rate_limit"):
        await admission.rate_limit(worker, ctx, chat.user)
    with ctx.span("routing"):
        targets = admission.route(worker, ctx, chat.model)
    if chat.stream:
        with ctx.span("dispatch", targets=len(targets)):
            stream = await worker.dispatcher.stream(ctx, targets)
        with ctx.span("respond", stream=True):
            await respond.relay(proto, ctx, stream)
        ctx.response_body = stream.summary.content.encode()
        ctx.cost_usd = worker.prices.cost(ctx.provider, ctx.model, ctx.usage)
    else:
        with ctx.span("dispatch", targets=len(targets)):
            completion = await worker.dispatcher.complete(ctx, targets)
        ctx.usage, ctx.finish_reason = completion.usage, completion.finish_reason
        ctx.cost_usd = worker.prices.cost(ctx.provider, ctx.model, ctx.usage)
        ctx.response_body = completion.body
        with ctx.span("respond", stream=False):
            respond.send_json(proto, ctx, completion.body, routed=True)
    await admission.spend_tokens(worker, ctx)
