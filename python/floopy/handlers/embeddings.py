"""``POST /v1/embeddings``: routed like a chat request, to providers that serve embeddings.

stage       by                        sets on ctx              answers early with
auth        HeaderExtractor, KeyStore headers, key, project  400 bad header, 401, 403
parse       EmbeddingRequest          body                     413, 400
rate_limit  admission                 user_id                  429
routing     admission, Router         requested_model          400 unknown model
dispatch    Dispatcher + providers    provider, model          400 no embeddings, 502, 504
respond     respond.send_json         usage, cost_usd

OpenAI-compatible providers get the client's body as is; the others (Gemini, echo) answer
in OpenAI's format. A provider without embeddings (Anthropic) is a 400 naming it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from floopy import errors
from floopy.handlers import admission, respond
from floopy.handlers.body import read_body
from floopy.providers.base import EmbeddingCall, EmbeddingProvider, Embeddings

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.pipeline.context import RequestContext
    from floopy.providers.base import Call, Provider
    from floopy.worker import Worker


class EmbeddingRequest(msgspec.Struct, frozen=True):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    input: Any
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: str | None = None


_decoder = msgspec.json.Decoder(EmbeddingRequest)
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


async def embeddings(
    worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol
) -> None:
    with ctx.span("auth"):
        admission.authenticate(worker, ctx, scope)
    with ctx.span("parse"):
        ctx.body = await read_body(scope, proto, worker.parser)
        request = parse_embedding_request(ctx.body)
        texts = input_texts(request.input)
    with ctx.span("rate_limit"):
        await admission.rate_limit(worker, ctx, request.user)
    with ctx.span("routing"):
        targets = admission.route(worker, ctx, request.model)

    async def embed(provider: Provider, call: Call) -> Embeddings:
        if not isinstance(provider, EmbeddingProvider):
            raise errors.BadRequest(
                f"provider '{provider.name}' ({provider.kind}) has no embeddings; "
                "use a model of an OpenAI-compatible or Gemini provider",
                param="model",
            )
        return await provider.embed(
            EmbeddingCall(
                body=ctx.body,
                model=call.model,
                requested_model=request.model,
                texts=texts,
                encoding_format=request.encoding_format,
                dimensions=request.dimensions,
            )
        )

    with ctx.span("dispatch", targets=len(targets)):
        answer = await worker.dispatcher.attempt(ctx, targets, embed)
    ctx.usage = answer.usage
    ctx.cost_usd = worker.prices.cost(ctx.provider, ctx.model, ctx.usage)
    with ctx.span("respond", stream=False):
        respond.send_json(proto, ctx, answer.body, routed=True)
    await admission.spend_tokens(worker, ctx)


def parse_embedding_request(body: bytes) -> EmbeddingRequest:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        match = _PATH.search(str(exc))
        raise errors.BadRequest(
            f"invalid request body: {exc}", param=match["path"] if match else None
        ) from None
    except msgspec.DecodeError as exc:
        raise errors.BadRequest(f"request body is not valid JSON: {exc}") from None


def input_texts(value: Any) -> tuple[str, ...] | None:
    """The inputs as texts; None when they are token ids (one list of ints, or several)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return tuple(value)
        if all(_is_int(item) for item in value) or all(_is_token_list(item) for item in value):
            return None
    raise errors.BadRequest(
        "input must be a string, an array of strings, an array of token ids, or an array of "
        "arrays of token ids, and not empty",
        param="input",
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_token_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_int(item) for item in value)
