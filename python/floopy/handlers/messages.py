"""``POST /v1/messages``: the Anthropic Messages API as an inbound format, so the anthropic
SDKs and Claude Code can use the gateway. The stages are those of ``chat.py``; dispatch
differs per target:

- an Anthropic provider gets the body as the client sent it (only the model replaced, the
  client's ``anthropic-version`` and ``anthropic-beta`` forwarded), and its answer or event
  stream goes back as it is: nothing is lost in translation;
- any other provider gets the request translated to OpenAI's format (``translate``), and
  its answer, whole or streamed, is translated back into an Anthropic message or events.

Errors keep their status and take Anthropic's shape (``ctx.api_format``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import msgspec

from floopy import errors
from floopy.handlers import admission
from floopy.handlers.body import read_body
from floopy.handlers.chat import answer
from floopy.providers.anthropic import AnthropicProvider
from floopy.providers.anthropic.provider import FORWARDED_HEADERS
from floopy.translate.anthropic_request import to_openai
from floopy.translate.anthropic_response import to_message
from floopy.translate.anthropic_stream import MessagesStream

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.pipeline.context import RequestContext
    from floopy.providers.base import Call, Completion, Provider, Stream
    from floopy.worker import Worker


async def messages(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    ctx.api_format = "anthropic"
    with ctx.span("auth"):
        admission.authenticate(worker, ctx, scope)
    with ctx.span("parse"):
        ctx.body = await read_body(scope, proto, worker.parser)
        ctx.chat = chat = worker.parser.chat(ctx.body)  # size, depth, model and messages
        route = MessagesRoute(ctx.body, _client_headers(scope))
    with ctx.span("rate_limit"):
        await admission.rate_limit(worker, ctx, route.user)
    with ctx.span("routing"):
        targets = admission.route(worker, ctx, chat.model)
    await answer(
        worker,
        ctx,
        proto,
        targets,
        stream=chat.stream,
        complete=route.complete,
        open_stream=route.stream,
    )


def _client_headers(scope: Scope) -> dict[str, str]:
    return {name: value for name in FORWARDED_HEADERS if (value := scope.headers.get(name))}


class MessagesRoute:
    """One /v1/messages request, ready for each target in turn: natively or translated."""

    def __init__(self, body: bytes, client_headers: dict[str, str]) -> None:
        self._doc = _decode(body)
        self._client_headers = client_headers
        self._openai_body: bytes | None = None  # translated when a target first needs it

    @property
    def user(self) -> str | None:
        """The end user, from ``metadata.user_id`` (Anthropic's spelling of OpenAI's ``user``)."""
        metadata = self._doc.get("metadata")
        user = metadata.get("user_id") if isinstance(metadata, dict) else None
        return user if isinstance(user, str) else None

    async def complete(self, provider: Provider, call: Call) -> Completion:
        if isinstance(provider, AnthropicProvider):
            return await provider.messages_complete(call, self._client_headers)
        completion = await provider.complete(self._translated(call))
        return to_message(completion, provider.name)

    async def stream(self, provider: Provider, call: Call) -> Stream:
        if isinstance(provider, AnthropicProvider):
            return await provider.messages_stream(call, self._client_headers)
        inner = await provider.stream(self._translated(call))
        return MessagesStream(inner, call.model)

    def _translated(self, call: Call) -> Call:
        if self._openai_body is None:
            self._openai_body = msgspec.json.encode(to_openai(self._doc))
        # The stream's usage chunk is always asked for: message_delta carries the usage.
        return dataclasses.replace(call, body=self._openai_body, include_usage=call.stream)


def _decode(body: bytes) -> dict[str, Any]:
    doc = msgspec.json.decode(body)
    if not isinstance(doc, dict):  # the native parser has refused anything else already
        raise errors.BadRequest("the request body must be a JSON object")
    return doc
