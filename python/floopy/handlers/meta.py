"""``GET /v1/models`` (the settings catalog), ``GET /v1/models/{id}`` (one entry of it) and
``GET /healthz``.

One entry answers in OpenAI's model shape, or in Anthropic's for a client that sends
``anthropic-version`` (the anthropic SDKs' ``models.retrieve``); an id the catalog does not
hold is a 404 ``model_not_found``, in the client's envelope.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import msgspec

from floopy import errors
from floopy.pipeline import respond
from floopy.pipeline.auth import authenticate

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.context import RequestContext
    from floopy.worker import Worker

MODEL_PREFIX = "/v1/models/"


async def models(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    authenticate(worker, ctx, scope)
    respond.send_json(proto, ctx, worker.models_body, routed=False)


async def model(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    authenticate(worker, ctx, scope)
    name = unquote(scope.path.rstrip("/").removeprefix(MODEL_PREFIX))
    entry = worker.settings.models.get(name)
    if entry is None:
        raise errors.ModelNotFound(f"the model '{name}' does not exist in the gateway's catalog")
    card = _card(ctx, name, entry.provider, worker.models_created)
    respond.send_json(proto, ctx, msgspec.json.encode(card), routed=False)


def _card(ctx: RequestContext, name: str, provider: str, created: int) -> dict[str, Any]:
    if ctx.api_format == "anthropic":
        when = datetime.datetime.fromtimestamp(created, datetime.UTC)
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": when.isoformat().replace("+00:00", "Z"),
        }
    return {"id": name, "object": "model", "created": created, "owned_by": provider}


async def healthz(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    respond.send_json(proto, ctx, b'{"status":"ok"}', routed=False)
