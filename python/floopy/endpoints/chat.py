"""``POST /v1/chat/completions``: OpenAI's chat completions, to any provider kind.

The native parser reads the body (size, depth, model, messages, stream options); each target
gets the client's body as it came, with the model the provider knows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from floopy.providers.base import Api, Call

if TYPE_CHECKING:
    from floopy._native import ChatRequest
    from floopy.pipeline.exchange import Exchange
    from floopy.pipeline.routing import Target

# The APIs whose answers the cache keeps; token counts are not worth it.
CACHED_APIS = ("chat", "messages")


class ChatCalls:
    """A parsed chat (or messages, or count_tokens) request, ready for any target."""

    __slots__ = (
        "_api",
        "_body",
        "_chat",
        "_client_headers",
        "cache_api",
        "model",
        "stream",
        "user",
    )

    def __init__(
        self,
        body: bytes,
        chat: ChatRequest,
        *,
        api: Api = "chat",
        user: str | None = None,
        client_headers: tuple[tuple[str, str], ...] = (),
        streams: bool = True,
    ) -> None:
        self._body = body
        self._chat = chat
        self._api: Api = api
        self._client_headers = client_headers
        self.model = chat.model
        self.stream = chat.stream and streams  # an API that never streams (count_tokens)
        self.user = user
        self.cache_api: str | None = api if api in CACHED_APIS else None

    @property
    def prompt(self) -> str | None:
        return None if self._api == "count_tokens" else self._chat.last_user_text

    def call(self, target: Target) -> Call:
        chat = self._chat
        return Call(
            body=self._body,
            model=target.model,
            requested_model=chat.model,
            stream=self.stream,
            include_usage=chat.include_usage,
            user_text=chat.last_user_text,
            api=self._api,
            client_headers=self._client_headers,
        )


class ChatEndpoint:
    api_format: Literal["openai", "anthropic"] = "openai"

    def parse(self, exchange: Exchange) -> ChatCalls:
        ctx = exchange.ctx
        ctx.chat = chat = exchange.worker.parser.chat(ctx.body)
        return ChatCalls(ctx.body, chat, user=chat.user)


ENDPOINT = ChatEndpoint()
