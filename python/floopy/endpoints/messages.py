"""``POST /v1/messages``: the Anthropic Messages API as an inbound format, so the anthropic
SDKs and Claude Code can use the gateway.

The native parser checks the body as it does a chat request (size, depth, model, messages,
``stream``); the end user is ``metadata.user_id``, Anthropic's spelling of OpenAI's ``user``.
Each target gets the body as the client sent it with the client's ``anthropic-version`` and
``anthropic-beta`` headers: a provider that speaks the Messages API answers it natively, any
other over chat, translated both ways (``providers.operations``). Errors keep their status and
take Anthropic's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

from floopy import errors
from floopy.endpoints.chat import ChatCalls
from floopy.providers.anthropic.provider import FORWARDED_HEADERS

if TYPE_CHECKING:
    from granian.rsgi import Scope

    from floopy.pipeline.exchange import Exchange


class _Envelope(msgspec.Struct):
    """The one field read here; the rest of the body is skipped unparsed."""

    metadata: Any = None


_envelope = msgspec.json.Decoder(_Envelope)


class MessagesEndpoint:
    api_format: Literal["openai", "anthropic"] = "anthropic"

    def parse(self, exchange: Exchange) -> ChatCalls:
        ctx = exchange.ctx
        ctx.chat = chat = exchange.worker.parser.chat(ctx.body)  # size, depth, model, messages
        return ChatCalls(
            ctx.body,
            chat,
            api="messages",
            user=metadata_user(ctx.body),
            client_headers=_client_headers(exchange.scope),
        )


class CountTokensEndpoint:
    """``POST /v1/messages/count_tokens``: the same body as a message, counted rather than
    answered, by a provider that can (Anthropic); any other target is a 400 that says
    counting is not available for the model (``providers.operations``)."""

    api_format: Literal["openai", "anthropic"] = "anthropic"

    def parse(self, exchange: Exchange) -> ChatCalls:
        ctx = exchange.ctx
        ctx.chat = chat = exchange.worker.parser.chat(ctx.body)
        return ChatCalls(
            ctx.body,
            chat,
            api="count_tokens",
            user=metadata_user(ctx.body),
            client_headers=_client_headers(exchange.scope),
            streams=False,
        )


ENDPOINT = MessagesEndpoint()
COUNT_TOKENS = CountTokensEndpoint()


def metadata_user(body: bytes) -> str | None:
    try:
        metadata = _envelope.decode(body).metadata
    except (msgspec.DecodeError, RecursionError):
        raise errors.BadRequest("the request body must be a JSON object") from None
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    return user if isinstance(user, str) else None


def _client_headers(scope: Scope) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name in FORWARDED_HEADERS if (value := scope.headers.get(name)))
