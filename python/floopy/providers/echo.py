"""The built-in ``echo`` provider: answers with the last user message, word by word when
streamed, so the quick start works with no provider account. Deterministic: the same request
always gets the same content and usage (tokens are counted as whitespace-separated words).
Embeddings too: each text's vector is derived from its hash, unit length, so equal texts get
equal vectors (nothing semantic about them)."""

from __future__ import annotations

import hashlib
import math
import re
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from floopy import errors
from floopy.ids import hex32
from floopy.providers.base import (
    Call,
    Completion,
    EmbeddingCall,
    Embeddings,
    StreamSummary,
    Usage,
)
from floopy.providers.embeddings import embeddings_body

_WORDS = re.compile(r"\S+\s*|\s+")
_EMPTY_PROMPT_REPLY = "Floopy echo provider: send a user message and it is echoed back."
ECHO_EMBEDDING_DIMENSIONS = 64
_MAX_EMBEDDING_DIMENSIONS = 4096


def _reply(call: Call) -> str:
    return call.user_text if call.user_text else _EMPTY_PROMPT_REPLY


def _usage(call: Call, reply: str) -> Usage:
    prompt = len((call.user_text or "").split())
    completion = len(reply.split())
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


class EchoProvider:
    kind = "echo"

    def __init__(self, name: str = "echo") -> None:
        self.name = name

    async def complete(self, call: Call) -> Completion:
        reply = _reply(call)
        usage = _usage(call, reply)
        body = {
            "id": f"chatcmpl-echo-{hex32()[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage_json(usage),
        }
        return Completion(body=msgspec.json.encode(body), usage=usage, finish_reason="stop")

    async def stream(self, call: Call) -> EchoStream:
        return EchoStream(call, _reply(call))

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        if call.texts is None:
            raise errors.BadRequest("the echo provider embeds text only", param="input")
        dimensions = call.dimensions or ECHO_EMBEDDING_DIMENSIONS
        if dimensions > _MAX_EMBEDDING_DIMENSIONS:
            raise errors.BadRequest(
                f"dimensions: the echo provider makes at most {_MAX_EMBEDDING_DIMENSIONS}",
                param="dimensions",
            )
        vectors = [echo_vector(text, dimensions) for text in call.texts]
        tokens = sum(len(text.split()) for text in call.texts)
        usage = Usage(prompt_tokens=tokens, total_tokens=tokens)
        body = embeddings_body(vectors, call.model, usage, call.encoding_format)
        return Embeddings(body=body, usage=usage)

    async def close(self) -> None:
        pass


def echo_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector drawn from the text's hash: the same text, the same vector."""
    stream = bytearray()
    counter = 0
    while len(stream) < 4 * dimensions:
        stream += hashlib.blake2b(f"{counter}\0{text}".encode(), digest_size=64).digest()
        counter += 1
    raw = [v / 2**31 - 1.0 for v in struct.unpack(f"<{dimensions}I", stream[: 4 * dimensions])]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


class EchoStream:
    def __init__(self, call: Call, reply: str) -> None:
        self._call = call
        self._reply = reply
        self._id = f"chatcmpl-echo-{hex32()[:24]}"
        self._created = int(time.time())
        self.first = self._chunk({"role": "assistant", "content": ""}, None)
        self.summary = StreamSummary(ttft_ms=0.0)

    def _chunk(
        self,
        delta: dict[str, Any],
        finish: str | None,
        usage: Usage | None = None,
        choices: bool = True,
    ) -> bytes:
        doc: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._call.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            if choices
            else [],
        }
        if usage is not None:
            doc["usage"] = _usage_json(usage)
        return b"data: " + msgspec.json.encode(doc) + b"\n\n"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for word in _WORDS.findall(self._reply):
            self.summary.chunks += 1
            yield self._chunk({"content": word}, None)
        yield self._chunk({}, "stop")
        usage = _usage(self._call, self._reply)
        if self._call.include_usage:
            yield self._chunk({}, None, usage, choices=False)
        yield b"data: [DONE]\n\n"
        self.summary.content = self._reply
        self.summary.finish_reason = "stop"
        self.summary.usage = usage
        self.summary.completed = True

    async def close(self) -> None:
        pass
