"""What each provider can be asked, found once at start-up, so dispatch never asks a provider
what it is.

- every provider answers chat completions;
- ``/v1/messages`` goes natively to a ``MessagesProvider`` (the body untouched, the answer
  relayed as it came), and over chat to any other: the request translated to OpenAI's
  format, the answer or its stream translated back (``bridge``);
- ``/v1/responses`` goes natively to a ``ResponsesProvider`` (the OpenAI kinds, unless
  set to ``responses: "chat"``) and over chat to any other (``responses``);
- ``/v1/messages/count_tokens`` goes to a ``TokenCounter`` (Anthropic); any other provider
  is a 400 that says counting is not available for the model;
- embeddings go to an ``EmbeddingsProvider``; any other provider is a 400 that names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from typing import Any

import msgspec

from floopy import errors
from floopy.providers.base import (
    Call,
    Completion,
    EmbeddingCall,
    Embeddings,
    EmbeddingsProvider,
    MessagesProvider,
    Provider,
    ResponsesProvider,
    Stream,
    TokenCounter,
)
from floopy.providers.bridge.request import to_openai
from floopy.providers.bridge.response import to_message
from floopy.providers.bridge.stream import anthropic_closing, messages_stream
from floopy.providers.http import HttpProvider
from floopy.providers.native_stream import open_native
from floopy.providers.responses.over_chat import ResponsesOverChat

Whole = Completion | Embeddings
Reply = Whole | Stream


class Operations:
    """One provider's operations, by the API the client spoke."""

    __slots__ = ("_counter", "_embeddings", "_messages", "_responses", "provider")

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._messages: MessagesProvider = (
            provider if isinstance(provider, MessagesProvider) else MessagesOverChat(provider)
        )
        self._responses = _responses_of(provider)
        self._counter = provider if isinstance(provider, TokenCounter) else None
        self._embeddings = provider if isinstance(provider, EmbeddingsProvider) else None

    def send(self, call: Call | EmbeddingCall, *, stream: bool) -> Awaitable[Reply]:
        """The answer to ``call``: a stream when asked for (embeddings never stream). The
        operation's own coroutine, to be awaited: no coroutine of its own around it."""
        if stream and isinstance(call, Call):
            return self.stream(call)
        return self.whole(call)

    def whole(self, call: Call | EmbeddingCall) -> Awaitable[Whole]:
        """A whole answer; raises a FloopyError. The provider's coroutine, to be awaited."""
        if isinstance(call, EmbeddingCall):
            return self._embedder().embed(call)
        if call.api == "messages":
            return self._messages.messages_complete(call)
        if call.api == "responses":
            return self._responses.responses_complete(call)
        if call.api == "count_tokens":
            return self._token_counter(call).count_tokens(call)
        return self.provider.complete(call)

    def stream(self, call: Call) -> Awaitable[Stream]:
        """A stream whose first event has arrived; raises a FloopyError. The provider's
        coroutine, to be awaited."""
        if call.api == "messages":
            return self._messages.messages_stream(call)
        if call.api == "responses":
            return self._responses.responses_stream(call)
        return self.provider.stream(call)

    def _token_counter(self, call: Call) -> TokenCounter:
        if self._counter is None:
            provider = self.provider
            raise errors.BadRequest(
                f"counting tokens is not available for model '{call.requested_model}': its "
                f"provider '{provider.name}' ({provider.kind}) has no token counting; it is "
                "available for models of Anthropic providers",
                param="model",
            )
        return self._counter

    def _embedder(self) -> EmbeddingsProvider:
        if self._embeddings is None:
            provider = self.provider
            raise errors.BadRequest(
                f"provider '{provider.name}' ({provider.kind}) has no embeddings; "
                "use a model of an OpenAI-compatible or Gemini provider",
                param="model",
            )
        return self._embeddings


def _responses_of(provider: Provider) -> ResponsesProvider:
    if isinstance(provider, ResponsesProvider) and provider.speaks_responses:
        return provider
    return ResponsesOverChat(provider)


class MessagesOverChat:
    """``/v1/messages`` for a provider that speaks only chat completions: the Anthropic
    request translated to OpenAI's format, the answer translated back."""

    __slots__ = ("_provider",)

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    async def messages_complete(self, call: Call) -> Completion:
        completion = await self._provider.complete(_translated(call))
        return to_message(completion, self._provider.name)

    async def messages_stream(self, call: Call) -> Stream:
        translated = _translated(call)
        provider = self._provider
        native = provider.native_call(translated) if isinstance(provider, HttpProvider) else None
        if native is not None:  # translated on the native thread, both ways
            return await open_native(native, messages_model=call.model, closing=anthropic_closing)
        inner = await provider.stream(translated)
        return messages_stream(inner, call.model)


def _translated(call: Call) -> Call:
    body = msgspec.json.encode(to_openai(_document(call.body)))
    # The stream's usage chunk is always asked for: message_delta carries the usage.
    return dataclasses.replace(call, body=body, api="chat", include_usage=call.stream)


def _document(body: bytes) -> dict[str, Any]:
    doc = msgspec.json.decode(body)
    if not isinstance(doc, dict):  # the native parser has refused anything else already
        raise errors.BadRequest("the request body must be a JSON object")
    return doc
