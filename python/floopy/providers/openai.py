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

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from floopy import errors
from floopy._native import OpenAIStreamRelay
from floopy.providers.base import (
    Call,
    Completion,
    EmbeddingCall,
    Embeddings,
    StreamSummary,
    Usage,
    upstream_error,
)
from floopy.providers.http import Answer, open_stream, post

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


class OpenAIProvider:
    """Speaks the OpenAI chat-completions wire format to ``base_url``."""

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        base_url: str,
        api_key: str | None,
        extra_headers: dict[str, str],
        session: aiohttp.ClientSession,
        first_byte_timeout: float,
        total_timeout: float,
    ) -> None:
        self.name = name
        self.kind = kind
        self._root = base_url.rstrip("/")
        self._session = session
        self._first_byte_timeout = first_byte_timeout
        self._total_timeout = total_timeout
        self._headers = {"Content-Type": "application/json", **extra_headers}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    async def complete(self, call: Call) -> Completion:
        body = self._body(call, ask_usage=False)
        url = self._endpoint(call.model, "chat/completions")
        answer = await post(self._session, self.name, url, body, self._headers, self._total_timeout)
        self._check(answer)
        return _completion(answer.body)

    async def stream(self, call: Call) -> OpenAIStream:
        body = self._body(call, ask_usage=not call.include_usage)
        url = self._endpoint(call.model, "chat/completions")
        opened = await open_stream(
            self._session, self.name, url, body, self._headers, self._first_byte_timeout
        )
        if isinstance(opened, Answer):
            self._check(opened)
            raise errors.ProviderError(f"{self.name} answered HTTP {opened.status}")
        stream = OpenAIStream(
            self.name, opened, OpenAIStreamRelay(strip_usage=not call.include_usage)
        )
        await stream.open(self._first_byte_timeout)
        return stream

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        """The client's body forwarded (with the provider's model name), the answer as is."""
        body = call.body if call.model == call.requested_model else _with_model(call)
        url = self._endpoint(call.model, "embeddings")
        answer = await post(self._session, self.name, url, body, self._headers, self._total_timeout)
        self._check(answer)
        return Embeddings(body=answer.body, usage=_embedding_usage(answer.body))

    async def close(self) -> None:
        """The session belongs to the worker, which closes it."""

    def _endpoint(self, model: str, operation: str) -> str:
        return f"{self._root}/{operation}"

    def _check(self, answer: Answer) -> None:
        if answer.status != 200:
            message = error_message(answer.body)
            raise upstream_error(self.name, answer.status, message, headers=answer.headers)

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
        session: aiohttp.ClientSession,
        first_byte_timeout: float,
        total_timeout: float,
    ) -> None:
        super().__init__(
            name,
            "azure",
            base_url=base_url,
            api_key=None,
            extra_headers=extra_headers,
            session=session,
            first_byte_timeout=first_byte_timeout,
            total_timeout=total_timeout,
        )
        if api_key:
            self._headers["api-key"] = api_key
        self._query = f"api-version={quote(api_version, safe='')}"
        self._deployments = deployments

    def _endpoint(self, model: str, operation: str) -> str:
        deployment = quote(self._deployments.get(model, model), safe="")
        return f"{self._root}/openai/deployments/{deployment}/{operation}?{self._query}"


def _rename(doc: dict[str, Any], old: str, new: str) -> None:
    value = doc.pop(old, None)
    if value is not None and new not in doc:
        doc[new] = value


def _with_model(call: EmbeddingCall) -> bytes:
    doc: dict[str, Any] = msgspec.json.decode(call.body)
    doc["model"] = call.model
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


class OpenAIStream:
    """Relays an upstream OpenAI SSE stream through the native relay, bytes as they come."""

    def __init__(self, provider: str, resp: aiohttp.ClientResponse, relay: OpenAIStreamRelay):
        self.provider = provider
        self.first = b""
        self.summary = StreamSummary()
        self._resp = resp
        self._relay = relay
        self._chunks = resp.content.iter_any().__aiter__()

    async def open(self, first_byte_timeout: float) -> None:
        """Reads until the first whole event: until then a failure can still fall back."""
        try:
            async with asyncio.timeout(first_byte_timeout):
                while not self.first:
                    try:
                        chunk = await self._chunks.__anext__()
                    except StopAsyncIteration:
                        self.first = self._relay.finish()
                        break
                    self.first = self._relay.feed(chunk)
        except TimeoutError:
            await self.close()
            raise errors.GatewayTimeout(f"{self.provider} sent no event in time") from None
        except aiohttp.ClientError as exc:
            await self.close()
            raise errors.ProviderError(f"{self.provider} broke the stream: {exc}") from exc
        if not self.first:
            await self.close()
            raise errors.ProviderError(f"{self.provider} closed the stream before any event")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                out = self._relay.feed(chunk)
                if out:
                    yield out
            tail = self._relay.finish()
            if tail:
                yield tail
        except aiohttp.ClientError as exc:
            self.summary.error = f"{self.provider} broke the stream: {exc}"
        finally:
            self._summarize()
        if self.summary.error is None and not self.summary.completed:
            self.summary.error = f"{self.provider} ended the stream early"
        if self.summary.error is not None and self._relay.error is None:
            yield stream_error_event(self.summary.error)

    async def close(self) -> None:
        self._resp.close()

    def _summarize(self) -> None:
        relay, summary = self._relay, self.summary
        summary.content = relay.content
        summary.finish_reason = relay.finish_reason
        summary.ttft_ms = relay.ttft_ms
        summary.chunks = relay.chunk_count
        summary.completed = relay.done or relay.finish_reason is not None
        if relay.error is not None:
            summary.error = relay.error
        native = relay.usage
        if native is not None:
            summary.usage = Usage(
                prompt_tokens=native.prompt_tokens,
                completion_tokens=native.completion_tokens,
                total_tokens=native.total_tokens,
                cached_tokens=native.cached_tokens,
                reasoning_tokens=native.reasoning_tokens,
            )


def stream_error_event(message: str, code: str = "PROVIDER_ERROR") -> bytes:
    """An OpenAI-style in-stream error: the SDKs raise it instead of seeing a clean end."""
    error = {"error": {"message": message, "type": "api_error", "code": code, "param": None}}
    return b"data: " + msgspec.json.encode(error) + b"\n\n"
