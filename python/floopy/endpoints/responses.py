"""``POST /v1/responses``: OpenAI's Responses API, to any provider kind.

The body is checked within the native parser's limits (size, depth), then for the fields the
gateway itself reads; each target gets the client's body as it came, with the model the
provider knows: OpenAI-kind providers answer it natively, every other over chat, translated
both ways (``providers.operations``).

The gateway keeps no responses, so what needs a stored one is refused with a 400 before any
call: ``previous_response_id``, ``conversation``, ``store: true`` and ``background: true``.
A client keeps the conversation itself by sending the earlier items in ``input``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from floopy import errors
from floopy.providers.base import Call

if TYPE_CHECKING:
    from floopy.pipeline.exchange import Exchange
    from floopy.pipeline.routing import Target


class ResponsesRequest(msgspec.Struct, frozen=True):
    """The fields read here; the rest of the body goes to the provider unparsed."""

    model: Annotated[str, msgspec.Meta(min_length=1)]
    input: Any = None
    stream: bool | None = None
    user: str | None = None
    store: bool | None = None
    background: bool | None = None
    previous_response_id: str | None = None
    conversation: Any = None


_decoder = msgspec.json.Decoder(ResponsesRequest)
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
NOT_KEPT = (
    "the gateway does not keep responses, so it cannot serve {what}; leave it out and send "
    "the whole conversation in `input` (earlier messages, function calls and their outputs)"
)


class ResponsesCalls:
    """A parsed Responses request, ready for any target."""

    __slots__ = ("_body", "_user_text", "model", "stream", "user")
    cache_api: str | None = None  # stateful (previous_response_id, store): not cached

    def __init__(self, body: bytes, request: ResponsesRequest) -> None:
        self._body = body
        self._user_text = last_user_text(request.input)
        self.model = request.model
        self.stream = request.stream is True
        self.user = request.user

    @property
    def prompt(self) -> str | None:
        return self._user_text

    def call(self, target: Target) -> Call:
        return Call(
            body=self._body,
            model=target.model,
            requested_model=self.model,
            stream=self.stream,
            include_usage=self.stream,
            user_text=self._user_text,
            api="responses",
        )


class ResponsesEndpoint:
    api_format: Literal["openai", "anthropic"] = "openai"

    def parse(self, exchange: Exchange) -> ResponsesCalls:
        body = exchange.ctx.body
        exchange.worker.parser.check_json(body)  # size, depth and syntax, natively
        return ResponsesCalls(body, parse_request(body))


ENDPOINT = ResponsesEndpoint()


def parse_request(body: bytes) -> ResponsesRequest:
    try:
        request = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        match = _PATH.search(str(exc))
        raise errors.BadRequest(
            f"invalid request body: {exc}", param=match["path"] if match else None
        ) from None
    except msgspec.DecodeError as exc:
        raise errors.BadRequest(f"request body is not valid JSON: {exc}") from None
    _refuse_stored_state(request)
    if not isinstance(request.input, (str, list)) or not request.input:
        raise errors.BadRequest(
            "input must be a string or a non-empty array of items", param="input"
        )
    return request


def _refuse_stored_state(request: ResponsesRequest) -> None:
    """What needs a response kept by the gateway: a 400 that says so, before any call."""
    stored = (
        ("previous_response_id", request.previous_response_id is not None),
        ("conversation", request.conversation is not None),
        ("store", request.store is True),
        ("background", request.background is True),
    )
    for name, asked in stored:
        if asked:
            what = (
                f"`{name}`"
                if name in ("previous_response_id", "conversation")
                else f"`{name}: true`"
            )
            raise errors.BadRequest(NOT_KEPT.format(what=what), param=name)


def last_user_text(value: Any) -> str | None:
    """The text of the last user message, as chat's native parser finds it (the echo
    provider answers with it)."""
    if isinstance(value, str):
        return value
    for item in reversed(value if isinstance(value, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            parts = content if isinstance(content, list) else []
            texts = [p.get("text") for p in parts if isinstance(p, dict)]
            return "\n".join(t for t in texts if isinstance(t, str))
    return None
