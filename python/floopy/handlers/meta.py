"""``GET /v1/models`` (the settings catalog) and ``GET /healthz``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.handlers import respond

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.pipeline.context import RequestContext
    from floopy.worker import Worker


async def models(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    ctx.headers = worker.parser.headers(scope.headers)
    ctx.key = worker.keys.authenticate(ctx.headers.api_key)
    respond.send_json(proto, ctx, worker.models_body, routed=False)


async def healthz(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    respond.send_json(proto, ctx, b'{"status":"ok"}', routed=False)
