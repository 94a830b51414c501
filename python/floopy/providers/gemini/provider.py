"""The ``gemini`` provider kind: Google's Gemini API (generativelanguage.googleapis.com).

``{base_url}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
``:embedContent`` and ``:batchEmbedContents``, authenticated by the ``x-goog-api-key``
header (never the ``?key=`` query, which would put the key in access logs).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from floopy import errors
from floopy.providers.base import (
    CONTENT_LIMIT,
    Call,
    Completion,
    EmbeddingCall,
    Embeddings,
    Usage,
    upstream_error,
)
from floopy.providers.chat_request import parse_chat
from floopy.providers.embeddings import embeddings_body
from floopy.providers.gemini.embeddings import embed_request, embed_vectors
from floopy.providers.gemini.failures import gemini_error
from floopy.providers.gemini.request import generate_content_body
from floopy.providers.gemini.response import translate_completion
from floopy.providers.gemini.stream import GeminiStream, StreamTranslator
from floopy.providers.http import Answer, HttpProvider, Timeouts
from floopy.providers.native_stream import NativeCall, NativeOpenAIStream, open_native
from floopy.upstream import Upstream


class GeminiProvider(HttpProvider):
    kind = "gemini"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        extra_headers: dict[str, str],
        upstream: Upstream,
        timeouts: Timeouts,
        content_limit: int = CONTENT_LIMIT,
    ) -> None:
        headers = {"Content-Type": "application/json", **extra_headers}
        if api_key:
            headers["x-goog-api-key"] = api_key
        super().__init__(
            name, upstream=upstream, timeouts=timeouts, headers=headers, content_limit=content_limit
        )
        self._base_url = base_url.rstrip("/")

    async def complete(self, call: Call) -> Completion:
        answer = await self._post(self._url(call.model, "generateContent"), self._body(call))
        return translate_completion(answer.body, call.model)

    async def stream(self, call: Call) -> GeminiStream | NativeOpenAIStream:
        native = self.native_call(call)
        if native is not None:
            return await open_native(native)
        translator = StreamTranslator(call.model, call.include_usage, self._content_limit)
        url = self._url(call.model, "streamGenerateContent") + "?alt=sse"
        return await self._relay(
            url, self._body(call), lambda opened: GeminiStream(opened, translator)
        )

    def native_call(self, call: Call) -> NativeCall | None:
        upstream = self._native_upstream()
        if upstream is None:
            return None
        return NativeCall(
            upstream=upstream,
            provider=self.name,
            url=self._url(call.model, "streamGenerateContent") + "?alt=sse",
            headers=self._headers,
            body=self._body(call),
            timeouts=self._timeouts,
            error=self._error,
            max_capture_bytes=self._content_limit,
            source="gemini",
            model=call.model,
            include_usage=call.include_usage,
            open_error=_stream_error,
        )

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        method, request = embed_request(call, f"models/{_model_id(call.model)}")
        answer = await self._post(self._url(call.model, method), msgspec.json.encode(request))
        vectors = embed_vectors(method, answer.body)
        # Gemini's embedding answers carry no token counts: the client reads 0, the log
        # an unknown usage (and so an unknown cost), not a free request.
        body = embeddings_body(vectors, call.model, Usage(), call.encoding_format)
        return Embeddings(body=body, usage=None)

    def _body(self, call: Call) -> bytes:
        return msgspec.json.encode(generate_content_body(parse_chat(call.body)))

    def _url(self, model: str, method: str) -> str:
        return f"{self._base_url}/models/{quote(_model_id(model), safe='-._~')}:{method}"

    def _error(self, answer: Answer) -> errors.FloopyError:
        return gemini_error(self.name, answer.status, answer.body, answer.headers)


def _stream_error(provider: str, capture: Any) -> errors.FloopyError:
    """An error object that came before any chunk: a real HTTP error when it has a code,
    else the stream closed before any event."""
    if not capture.error_code:
        return errors.ProviderError(f"{provider} closed the stream before any event")
    return upstream_error(provider, capture.error_code, capture.error or "")


def _model_id(model: str) -> str:
    """Gemini's model id without the ``models/`` prefix its own listings use."""
    return model.removeprefix("models/")
