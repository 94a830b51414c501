"""The OpenAI chat-completions request as typed structs, for providers that translate it.

Providers speaking the OpenAI wire format forward the client's bytes; the others (Gemini,
Anthropic) decode the body into these structs once, so a malformed field becomes a 400 that
names it (``messages[2].tool_calls[0].function``) instead of an error deep in a translator.
Fields the gateway does not translate are skipped unparsed.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from floopy import errors


class ImageUrl(msgspec.Struct):
    url: str
    detail: str | None = None


class InputAudio(msgspec.Struct):
    data: str
    format: str = "wav"


class FileData(msgspec.Struct):
    file_data: str | None = None  # a data URL
    file_id: str | None = None
    filename: str | None = None


class ContentPart(msgspec.Struct):
    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: ImageUrl | None = None
    input_audio: InputAudio | None = None
    file: FileData | None = None


class FunctionCall(msgspec.Struct):
    name: str
    arguments: str = ""


class ToolCall(msgspec.Struct):
    function: FunctionCall
    id: str = ""
    type: str = "function"


class Message(msgspec.Struct):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDefinition(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct):
    type: str = "function"
    function: FunctionDefinition | None = None


class FunctionName(msgspec.Struct):
    name: str


class NamedToolChoice(msgspec.Struct):
    function: FunctionName
    type: str = "function"


class JsonSchema(msgspec.Struct):
    name: str = "response"
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(msgspec.Struct):
    type: str
    json_schema: JsonSchema | None = None


class ChatBody(msgspec.Struct):
    model: str
    messages: list[Message]
    tools: list[Tool] | None = None
    tool_choice: str | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None

    @property
    def token_limit(self) -> int | None:
        """The client's output cap, whichever of the two names it used."""
        return self.max_completion_tokens if self.max_completion_tokens else self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


_decoder = msgspec.json.Decoder(ChatBody)
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.I)


def parse_chat(body: bytes) -> ChatBody:
    """Raises BadRequest naming the first malformed field."""
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        param = match["path"] if match else None
        raise errors.BadRequest(f"invalid request body: {message}", param=param) from None
    except msgspec.DecodeError as exc:
        raise errors.BadRequest(f"request body is not valid JSON: {exc}") from None


def text_of(content: str | list[ContentPart] | None) -> str:
    """The text of a message's content: a string as is, text (and refusal) parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text or part.refusal or "" for part in content)


def tool_arguments(call: ToolCall, where: str) -> dict[str, Any]:
    """An assistant tool call's JSON arguments as an object (providers other than OpenAI take
    objects, not strings). An empty string means no arguments."""
    if not call.function.arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(call.function.arguments)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise errors.BadRequest(
            f"{where}.function.arguments must be a JSON object", param=f"{where}.function.arguments"
        )
    return value


def split_data_url(url: str, where: str) -> tuple[str, str] | None:
    """(mime type, base64 data) of a ``data:...;base64,`` URL, None for any other URL."""
    match = _DATA_URL.match(url)
    if match is None:
        if url[:5].lower() == "data:":
            raise errors.BadRequest(f"{where}: only base64 data URLs are supported", param=where)
        return None
    return (match["mime"] or "application/octet-stream").lower(), url[match.end() :]
