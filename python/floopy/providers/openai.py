"""OpenAI, Azure OpenAI and every OpenAI-compatible vendor (Groq, Mistral, DeepSeek, vLLM,
Ollama, ...): one wire format, so vendors are configuration (``PROVIDERS``), not code.

The body is forwarded as the client sent it whenever possible; it is re-encoded only to set
the provider's model name, to ask for the usage chunk of a stream (which the relay then keeps
from clients that did not ask for it, so streamed requests are costed too), or to name the
output limit the way the model wants it: OpenAI's reasoning models (o1, o3, o4, gpt-5)
refuse ``max_tokens`` and take ``max_completion_tokens``, while most compatible vendors know
only ``max_tokens``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import msgspec

from floopy import errors
from floopy._native import OpenAIStreamRelay
from floopy.providers.base import (
    CONTENT_LIMIT,
    Call,
    Completion,
    EmbeddingCall,
    Embeddings,
    Usage,
    upstream_error,
)
from floopy.providers.http import (
    Answer,
    HttpProvider,
    RelayedStream,
    Timeouts,
    UpstreamBody,
    oversized_event,
)
from floopy.providers.native_stream import (
    NativeCall,
    NativeOpenAIStream,
    open_native,
    summarize,
)
from floopy.providers.responses.native import NativeResponsesStream, whole
from floopy.upstream import Upstream

# Models that take max_completion_tokens and refuse max_tokens.
_REASONING_MODEL = re.compile(r"(openai/)?(o[134]|gpt-5)([-.]|$)")
_MAX_TOKENS = b'"max_tokens"'
_MAX_COMPLETION_TOKENS = b'"max_completion_tokens"'


class _UsageDetails(msgspec.Struct):
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: _UsageDetails | None = None
    completion_tokens_details: _UsageDetails | None = None


class _Choice(msgspec.Struct):
    finish_reason: str | None = None


class _CompletionFacts(msgspec.Struct):
    """The few fields of a chat completion the gateway reads; the rest is skipped unparsed."""

    choices: list[_Choice] = []
    usage: _Usage | None = None


class _ErrorDetail(msgspec.Struct):
    message: str = ""


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail | str | None = None
    message: str | None = None


class _EmbeddingFacts(msgspec.Struct):
    usage: _Usage | None = None


_facts_decoder = msgspec.json.Decoder(_CompletionFacts)
_embedding_facts_decoder = msgspec.json.Decoder(_EmbeddingFacts)
_error_decoder = msgspec.json.Decoder(_ErrorBody)


def usage_from(raw: _Usage | None) -> Usage | None:
    if raw is None:
        return None
    return Usage(
        prompt_tokens=raw.prompt_tokens,
        completion_tokens=raw.completion_tokens,
        total_tokens=raw.total_tokens or raw.prompt_tokens + raw.completion_tokens,
        cached_tokens=raw.prompt_tokens_details.cached_tokens if raw.prompt_tokens_details else 0,
        reasoning_tokens=(
            raw.completion_tokens_details.reasoning_tokens if raw.completion_tokens_details else 0
        ),
    )


def error_message(body: bytes) -> str:
    """The human message of an upstream error body, whatever shape it has."""
    try:
        parsed = _error_decoder.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(parsed.error, _ErrorDetail):
        return parsed.error.message
    return parsed.error or parsed.message or ""


class OpenAIProvider(HttpProvider):
    """Speaks the OpenAI chat-completions wire format to ``base_url``, and the Responses API
    unless its settings say the server has none (``speaks_responses``)."""

    speaks_responses = True

    def __init__(
        self,
        name: str,
        kind: str,
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
            headers["Authorization"] = f"Bearer {api_key}"
        super().__init__(
            name, upstream=upstream, timeouts=timeouts, headers=headers, content_limit=content_limit
        )
        self.kind = kind
        self._root = base_url.rstrip("/")

    async def complete(self, call: Call) -> Completion:
        body = self._body(call, ask_usage=False)
        answer = await self._post(self._endpoint(call.model, "chat/completions"), body)
        return _completion(answer.body)

    async def stream(self, call: Call) -> OpenAIStream | NativeOpenAIStream:
        native = self.native_call(call)
        if native is not None:
            return await open_native(native)
        body = self._body(call, ask_usage=not call.include_usage)
        relay = OpenAIStreamRelay(
            strip_usage=not call.include_usage, max_capture_bytes=self._content_limit
        )
        url = self._endpoint(call.model, "chat/completions")
        return await self._relay(url, body, lambda opened: OpenAIStream(opened, relay))

    def native_call(self, call: Call) -> NativeCall | None:
        upstream = self._native_upstream()
        if upstream is None:
            return None
        return NativeCall(
            upstream=upstream,
            provider=self.name,
            url=self._endpoint(call.model, "chat/completions"),
            headers=self._headers,
            body=self._body(call, ask_usage=not call.include_usage),
            timeouts=self._timeouts,
            error=self._error,
            max_capture_bytes=self._content_limit,
            strip_usage=not call.include_usage,
        )

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        """The client's body forwarded (with the provider's model name), the answer as is."""
        body = call.body if call.model == call.requested_model else _with_model(call)
        answer = await self._post(self._endpoint(call.model, "embeddings"), body)
        return Embeddings(body=answer.body, usage=_embedding_usage(answer.body))

    async def responses_complete(self, call: Call) -> Completion:
        """``/v1/responses`` natively: the client's body (with the provider's model name),
        the answer as it came."""
        answer = await self._post(self._responses_url(call.model), self._responses_body(call))
        return whole(self.name, answer.body)

    async def responses_stream(self, call: Call) -> NativeResponsesStream:
        url, body = self._responses_url(call.model), self._responses_body(call)
        return await self._relay(url, body, NativeResponsesStream)

    def _endpoint(self, model: str, operation: str) -> str:
        return f"{self._root}/{operation}"

    def _responses_url(self, model: str) -> str:
        return f"{self._root}/responses"

    def _responses_body(self, call: Call) -> bytes:
        return call.body if call.model == call.requested_model else _named(call.body, call.model)

    def _error(self, answer: Answer) -> errors.FloopyError:
        message = error_message(answer.body)
        return upstream_error(self.name, answer.status, message, headers=answer.headers)

    def _body(self, call: Call, *, ask_usage: bool) -> bytes:
        ask_usage = call.stream and ask_usage
        limit_rename = self._limit_rename(call)
        if call.model == call.requested_model and not ask_usage and limit_rename is None:
            return call.body
        doc: dict[str, Any] = msgspec.json.decode(call.body)
        doc["model"] = call.model
        if limit_rename is not None:
            _rename(doc, *limit_rename)
        if ask_usage:
            options = doc.get("stream_options")
            doc["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return msgspec.json.encode(doc)

    def _limit_rename(self, call: Call) -> tuple[str, str] | None:
        """(from, to) when the body names its output limit in a way the model refuses."""
        if self.kind == "openai_compatible":
            if _MAX_COMPLETION_TOKENS in call.body:
                return "max_completion_tokens", "max_tokens"
        elif _MAX_TOKENS in call.body and _REASONING_MODEL.match(call.model):
            return "max_tokens", "max_completion_tokens"
        return None


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI: OpenAI's wire format on per-deployment URLs, with an ``api-version``
    query parameter and the key in the ``api-key`` header."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        api_version: str,
        deployments: dict[str, str],
        extra_headers: dict[str, str],
        upstream: Upstream,
        timeouts: Timeouts,
        content_limit: int = CONTENT_LIMIT,
    ) -> None:
        super().__init__(
            name,
            "azure",
            base_url=base_url,
            api_key=None,
            extra_headers=extra_headers,
            upstream=upstream,
            timeouts=timeouts,
            content_limit=content_limit,
        )
        if api_key:
            self._headers["api-key"] = api_key
        self._query = f"api-version={quote(api_version, safe='')}"
        self._deployments = deployments

    def _endpoint(self, model: str, operation: str) -> str:
        deployment = quote(self._deployments.get(model, model), safe="")
        return f"{self._root}/openai/deployments/{deployment}/{operation}?{self._query}"

    def _responses_url(self, model: str) -> str:
        """Azure's Responses API has one path; the deployment is the body's model."""
        return f"{self._root}/openai/responses?{self._query}"

    def _responses_body(self, call: Call) -> bytes:
        deployment = self._deployments.get(call.model, call.model)
        return call.body if deployment == call.requested_model else _named(call.body, deployment)


def _rename(doc: dict[str, Any], old: str, new: str) -> None:
    value = doc.pop(old, None)
    if value is not None and new not in doc:
        doc[new] = value


def _with_model(call: EmbeddingCall) -> bytes:
    return _named(call.body, call.model)


def _named(body: bytes, model: str) -> bytes:
    """The client's body with the model the provider knows."""
    doc: dict[str, Any] = msgspec.json.decode(body)
    doc["model"] = model
    return msgspec.json.encode(doc)


def _embedding_usage(data: bytes) -> Usage | None:
    try:
        return usage_from(_embedding_facts_decoder.decode(data).usage)
    except msgspec.DecodeError as exc:
        raise errors.ProviderError(f"provider sent unreadable embeddings: {exc}") from exc


def _completion(data: bytes) -> Completion:
    try:
        facts = _facts_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise errors.ProviderError(f"provider sent an unreadable completion: {exc}") from exc
    finish = facts.choices[0].finish_reason if facts.choices else None
    return Completion(body=data, usage=usage_from(facts.usage), finish_reason=finish)


class OpenAIStream(RelayedStream):
    """Relays an upstream OpenAI SSE stream through the native relay, bytes as they come."""

    def __init__(self, body: UpstreamBody, relay: OpenAIStreamRelay) -> None:
        super().__init__(body)
        self._relay = relay

    def _feed(self, chunk: bytes) -> bytes:
        out = self._relay.feed(chunk)
        if self._relay.oversized:
            raise oversized_event(self.provider, self._relay.max_event_bytes)
        return out

    def _finish(self) -> bytes:
        return self._relay.finish()

    def _closing_event(self) -> bytes:
        completed = self.summary.completed
        failure = self._ended_early(completed, relayed_error=self._relay.error is not None)
        return failure.stream_event() if failure is not None else b""

    def _summarize(self) -> None:
        summarize(self._relay, self.summary)


def stream_error_event(message: str, code: str = "PROVIDER_ERROR") -> bytes:
    """An OpenAI-style in-stream error: the SDKs raise it instead of seeing a clean end."""
    return errors.ProviderError(message, code=code).stream_event()
