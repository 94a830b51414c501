"""``GET /v1/models`` (the settings catalog), ``GET /v1/models/{id}`` (one entry of it) and
``GET /healthz``.

Both answer in OpenAI's shapes, or in Anthropic's for a client that sends
``anthropic-version`` (the anthropic SDKs' ``models.list`` and ``models.retrieve``); an id
the catalog does not hold is a 404 ``model_not_found``, in the client's envelope.
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
    body = worker.models_body
    if ctx.api_format == "anthropic":  # the anthropic SDKs' models.list: one page, all of it
        body = msgspec.json.encode(_anthropic_page(worker))
    respond.send_json(proto, ctx, body, routed=False)


async def model(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    authenticate(worker, ctx, scope)
    name = unquote(scope.path.rstrip("/").removeprefix(MODEL_PREFIX))
    entry = worker.settings.models.get(name)
    if entry is None:
        raise errors.ModelNotFound(f"the model '{name}' does not exist in the gateway's catalog")
    card = _card(ctx, name, entry.provider, worker.models_created)
    respond.send_json(proto, ctx, msgspec.json.encode(card), routed=False)


def _anthropic_page(worker: Worker) -> dict[str, Any]:
    cards = [
        _anthropic_card(name, worker.models_created) for name in sorted(worker.settings.models)
    ]
    first, last = (cards[0]["id"], cards[-1]["id"]) if cards else (None, None)
    return {"data": cards, "has_more": False, "first_id": first, "last_id": last}


def _anthropic_card(name: str, created: int) -> dict[str, Any]:
    when = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": when.isoformat().replace("+00:00", "Z"),
    }


def _card(ctx: RequestContext, name: str, provider: str, created: int) -> dict[str, Any]:
    if ctx.api_format == "anthropic":
        return _anthropic_card(name, created)
    return {"id": name, "object": "model", "created": created, "owned_by": provider}


async def healthz(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    respond.send_json(proto, ctx, b'{"status":"ok"}', routed=False)
