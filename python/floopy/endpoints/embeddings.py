"""``POST /v1/embeddings``: routed like a chat request, to providers that serve embeddings.

OpenAI-compatible providers get the client's body as is; the others (Gemini, echo) answer
in OpenAI's format. A provider without embeddings (Anthropic) is a 400 naming it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from floopy import errors
from floopy.providers.base import EmbeddingCall

if TYPE_CHECKING:
    from floopy.pipeline.exchange import Exchange
    from floopy.pipeline.routing import Target


class EmbeddingRequest(msgspec.Struct, frozen=True):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    input: Any
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: str | None = None


_decoder = msgspec.json.Decoder(EmbeddingRequest)
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


class EmbeddingCalls:
    """A parsed embeddings request, ready for any target."""

    __slots__ = ("_body", "_request", "_texts", "model", "user")
    cache_api: str | None = None  # embeddings are not cached
    stream = False
    prompt = None  # embeddings are not screened: the model says nothing back

    def __init__(self, body: bytes, request: EmbeddingRequest) -> None:
        self._body = body
        self._request = request
        self._texts = input_texts(request.input)
        self.model = request.model
        self.user = request.user

    def call(self, target: Target) -> EmbeddingCall:
        request = self._request
        return EmbeddingCall(
            body=self._body,
            model=target.model,
            requested_model=request.model,
            texts=self._texts,
            encoding_format=request.encoding_format,
            dimensions=request.dimensions,
        )


class EmbeddingsEndpoint:
    api_format: Literal["openai", "anthropic"] = "openai"

    def parse(self, exchange: Exchange) -> EmbeddingCalls:
        body = exchange.ctx.body
        exchange.worker.parser.check_json(body)  # depth and syntax, natively
        return EmbeddingCalls(body, parse_embedding_request(body))


ENDPOINT = EmbeddingsEndpoint()


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
