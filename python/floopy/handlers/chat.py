"""``POST /v1/chat/completions``: the pipeline of DESIGN section 1, stage by stage.

stage      by                        sets on ctx            answers early with
headers    native HeaderExtractor    headers                400 bad header
auth       KeyStore                  key                    401
parse      native RequestParser      body, chat             413, 400
routing    Router                    requested_model        400 unknown model
dispatch   Dispatcher + providers    provider, model, ...   502, 504, 429
respond    respond.send_json/relay   usage, finish_reason
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.handlers import respond
from floopy.handlers.body import read_body

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.pipeline.context import RequestContext
    from floopy.worker import Worker


async def chat_completions(
    worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol
) -> None:
    t = ctx.started
    ctx.headers = headers = worker.parser.headers(scope.headers.items())
    ctx.key = worker.keys.authenticate(headers.api_key)
    t = ctx.mark("auth", t)
    ctx.body = await read_body(scope, proto, worker.parser)
    ctx.chat = chat = worker.parser.chat(ctx.body)
    t = ctx.mark("parse", t)
    ctx.requested_model = headers.model_override or chat.model
    targets = worker.router.targets(ctx.requested_model, headers.fallbacks)
    t = ctx.mark("routing", t)
    if chat.stream:
        stream = await worker.dispatcher.stream(ctx, targets)
        ctx.mark("first_event", t)
        await respond.relay(proto, ctx, stream)
    else:
        completion = await worker.dispatcher.complete(ctx, targets)
        ctx.mark("upstream", t)
        ctx.usage, ctx.finish_reason = completion.usage, completion.finish_reason
        respond.send_json(proto, ctx, completion.body, routed=True)
