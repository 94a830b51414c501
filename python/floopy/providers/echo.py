"""The built-in ``echo`` provider: answers with the last user message, word by word when
streamed, so the quick start works with no provider account. Deterministic: the same request
always gets the same content and usage (tokens are counted as whitespace-separated words)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from floopy.providers.base import Call, Completion, StreamSummary, Usage

_WORDS = re.compile(r"\S+\s*|\s+")
_EMPTY_PROMPT_REPLY = "Floopy echo provider: send a user message and it is echoed back."


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
            "id": f"chatcmpl-echo-{uuid.uuid4().hex[:24]}",
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

    async def close(self) -> None:
        pass


class EchoStream:
    def __init__(self, call: Call, reply: str) -> None:
        self._call = call
        self._reply = reply
        self._id = f"chatcmpl-echo-{uuid.uuid4().hex[:24]}"
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
