"""The ``anthropic`` provider kind: OpenAI-format chat completions answered by the Anthropic
Messages API (translated both ways, streams included), and ``/v1/messages`` and
``/v1/messages/count_tokens`` requests passed to it natively."""

from __future__ import annotations

from typing import Any

import msgspec

from floopy import errors
from floopy.providers.anthropic.request import AnthropicRequest, to_anthropic
from floopy.providers.anthropic.response import to_completion
from floopy.providers.anthropic.stream import AnthropicStream, ChunkTranslator, EventRelay
from floopy.providers.anthropic.wire import (
    API_VERSION,
    ERROR_STATUS,
    finish_reason,
    http_error,
    message_decoder,
    usage_of,
)
from floopy.providers.base import CONTENT_LIMIT, Call, Completion, upstream_error
from floopy.providers.http import Answer, HttpProvider, Timeouts
from floopy.providers.native_stream import NativeCall, NativeOpenAIStream, open_native
from floopy.upstream import Upstream

# Request headers of a /v1/messages client that shape how Anthropic reads the body.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def messages_url(base_url: str) -> str:
    """``base_url`` is the API root (``https://api.anthropic.com``); one ending in ``/v1``,
    the way OpenAI base URLs are written, means the same."""
    root = base_url.rstrip("/").removesuffix("/v1")
    return f"{root}/v1/messages"


class AnthropicProvider(HttpProvider):
    kind = "anthropic"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        extra_headers: dict[str, str],
        upstream: Upstream,
        timeouts: Timeouts,
        max_output_tokens: dict[str, int],
        default_max_tokens: int,
        content_limit: int = CONTENT_LIMIT,
    ) -> None:
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        headers.update(extra_headers)
        if api_key:
            headers["x-api-key"] = api_key
        super().__init__(
            name, upstream=upstream, timeouts=timeouts, headers=headers, content_limit=content_limit
        )
        self._url = messages_url(base_url)
        self._count_url = f"{self._url}/count_tokens"
        # Anthropic requires max_tokens: the catalog's limit of the model, else the default.
        self._max_output_tokens = max_output_tokens
        self._default_max_tokens = default_max_tokens

    async def complete(self, call: Call) -> Completion:
        request = self._translate(call, stream=False)
        answer = await self._post(self._url, msgspec.json.encode(request.body))
        return to_completion(self.name, answer.body, request.json_tool)

    async def stream(self, call: Call) -> AnthropicStream | NativeOpenAIStream:
        native = self.native_call(call)
        if native is not None:
            return await open_native(native)
        request = self._translate(call, stream=True)
        translator = ChunkTranslator(
            model=call.model,
            include_usage=call.include_usage,
            json_tool=request.json_tool,
            content_limit=self._content_limit,
        )
        body = msgspec.json.encode(request.body)
        return await self._relay(
            self._url, body, lambda opened: AnthropicStream(opened, translator)
        )

    def native_call(self, call: Call) -> NativeCall | None:
        upstream = self._native_upstream()
        if upstream is None:
            return None
        request = self._translate(call, stream=True)
        return NativeCall(
            upstream=upstream,
            provider=self.name,
            url=self._url,
            headers=self._headers,
            body=msgspec.json.encode(request.body),
            timeouts=self._timeouts,
            error=self._error,
            max_capture_bytes=self._content_limit,
            source="anthropic",
            model=call.model,
            include_usage=call.include_usage,
            json_tool=request.json_tool,
            open_error=_event_error,
        )

    async def messages_complete(self, call: Call) -> Completion:
        """``/v1/messages`` natively: ``call.body`` is already an Anthropic request; the answer
        goes back to the client byte for byte."""
        headers = self._native_headers(call.client_headers)
        data = (await self._post(self._url, self._native_body(call), headers)).body
        try:
            message = message_decoder.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return Completion(body=data)  # relayed even if the gateway cannot read it
        return Completion(
            body=data,
            usage=usage_of(message.usage),
            finish_reason=finish_reason(message.stop_reason),
        )

    async def messages_stream(self, call: Call) -> AnthropicStream:
        headers = self._native_headers(call.client_headers)
        relay = EventRelay(self._content_limit)
        return await self._relay(
            self._url,
            self._native_body(call),
            lambda opened: AnthropicStream(opened, relay),
            headers,
        )

    async def count_tokens(self, call: Call) -> Completion:
        """Anthropic's own count of a Messages request, relayed as it came; it costs no
        tokens, so there is no usage."""
        headers = self._native_headers(call.client_headers)
        answer = await self._post(self._count_url, self._native_body(call), headers)
        return Completion(body=answer.body)

    def _translate(self, call: Call, *, stream: bool) -> AnthropicRequest:
        doc = msgspec.json.decode(call.body)
        default = self._max_output_tokens.get(call.model, self._default_max_tokens)
        return to_anthropic(doc, model=call.model, default_max_tokens=default, stream=stream)

    def _native_body(self, call: Call) -> bytes:
        if call.model == call.requested_model:
            return call.body
        doc = msgspec.json.decode(call.body)
        doc["model"] = call.model
        return msgspec.json.encode(doc)

    def _native_headers(self, client_headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
        forwarded = {name: value for name, value in client_headers if name in FORWARDED_HEADERS}
        return {**self._headers, **forwarded}

    def _error(self, answer: Answer) -> errors.FloopyError:
        return http_error(self.name, answer.status, answer.body, answer.headers)


def _event_error(provider: str, capture: Any) -> errors.FloopyError:
    """An error event that came before any other, as its HTTP twin (``wire.event_error``)."""
    status = ERROR_STATUS.get(capture.error_type or "", 500)
    return upstream_error(provider, status, capture.error or "")
