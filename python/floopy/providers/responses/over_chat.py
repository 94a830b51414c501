"""``/v1/responses`` for a provider that speaks only chat completions: the request translated
to a chat body, the answer (or its stream) translated back."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from floopy import errors
from floopy.providers.base import Call, Completion, Provider, Stream
from floopy.providers.responses.request import to_chat
from floopy.providers.responses.response import Frame, to_response
from floopy.providers.responses.stream import responses_stream


class ResponsesOverChat:
    __slots__ = ("_provider",)
    speaks_responses = True  # it answers in the Responses API, whatever its provider speaks

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    async def responses_complete(self, call: Call) -> Completion:
        doc = _document(call.body)
        completion = await self._provider.complete(_translated(call, doc))
        return to_response(completion, Frame(doc, call.model), self._provider.name)

    async def responses_stream(self, call: Call) -> Stream:
        doc = _document(call.body)
        inner = await self._provider.stream(_translated(call, doc))
        return responses_stream(inner, Frame(doc, call.model))


def _translated(call: Call, doc: dict[str, Any]) -> Call:
    body = msgspec.json.encode(to_chat(doc, stream=call.stream))
    # The stream's usage chunk is always asked for: response.completed carries the usage.
    return dataclasses.replace(call, body=body, api="chat", include_usage=call.stream)


def _document(body: bytes) -> dict[str, Any]:
    doc = msgspec.json.decode(body)
    if not isinstance(doc, dict):  # the endpoint has refused anything else already
        raise errors.BadRequest("the request body must be a JSON object")
    return doc
