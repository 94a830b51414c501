"""The ``gemini`` provider kind: Google's Gemini API (generativelanguage.googleapis.com).

``{base_url}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
``:embedContent`` and ``:batchEmbedContents``, authenticated by the ``x-goog-api-key``
header (never the ``?key=`` query, which would put the key in access logs).
"""

from __future__ import annotations

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
)
from floopy.providers.chat_request import parse_chat
from floopy.providers.embeddings import embeddings_body
from floopy.providers.gemini.embeddings import embed_request, embed_vectors
from floopy.providers.gemini.failures import gemini_error
from floopy.providers.gemini.request import generate_content_body
from floopy.providers.gemini.response import translate_completion
from floopy.providers.gemini.stream import GeminiStream, StreamTranslator
from floopy.providers.http import Answer, HttpProvider, Timeouts
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

    async def stream(self, call: Call) -> GeminiStream:
        translator = StreamTranslator(call.model, call.include_usage, self._content_limit)
        url = self._url(call.model, "streamGenerateContent") + "?alt=sse"
        return await self._relay(
            url, self._body(call), lambda opened: GeminiStream(opened, translator)
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


def _model_id(model: str) -> str:
    """Gemini's model id without the ``models/`` prefix its own listings use."""
    return model.removeprefix("models/")
