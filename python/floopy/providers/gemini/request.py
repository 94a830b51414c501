"""An OpenAI chat request as a Gemini ``generateContent`` body.

system and developer messages  -> systemInstruction
user / assistant               -> contents with role user / model (same-role turns merged)
assistant tool_calls           -> functionCall parts (thought signatures restored from the ids)
tool messages                  -> functionResponse parts in a user turn, named after the call
tools, tool_choice             -> functionDeclarations, toolConfig.functionCallingConfig
sampling, limits, stop, n      -> generationConfig
response_format                -> responseMimeType (+ responseJsonSchema)

Schemas go as ``parametersJsonSchema`` and ``responseJsonSchema``, which take JSON Schema as
OpenAI clients write it; the older ``parameters`` / ``responseSchema`` take an OpenAPI subset
that rejects common keywords such as ``additionalProperties`` (required by OpenAI's strict
mode), so forwarding to them would break ordinary requests.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from floopy import errors
from floopy.providers.chat_request import (
    ChatBody,
    ContentPart,
    Message,
    NamedToolChoice,
    Tool,
    split_data_url,
    text_of,
    tool_arguments,
)
from floopy.providers.gemini.call_ids import signature_of

Part = dict[str, Any]
_TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


def generate_content_body(chat: ChatBody) -> dict[str, Any]:
    conversation = _Conversation()
    for position, message in enumerate(chat.messages):
        conversation.add(message, f"messages[{position}]")
    body: dict[str, Any] = {"contents": conversation.contents()}
    if conversation.system:
        body["systemInstruction"] = {"parts": conversation.system}
    if chat.tools:
        body["tools"] = [{"functionDeclarations": _declarations(chat.tools)}]
    if chat.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(chat.tool_choice)}
    config = generation_config(chat)
    if config:
        body["generationConfig"] = config
    return body


class _Conversation:
    """Collects Gemini turns, merging consecutive turns of one role (Gemini wants them to
    alternate, and parallel tool results must share one turn)."""

    def __init__(self) -> None:
        self.system: list[Part] = []
        self._turns: list[dict[str, Any]] = []
        self._call_names: dict[str, str] = {}  # tool call id -> function name

    def add(self, message: Message, where: str) -> None:
        role = message.role
        if role in ("system", "developer"):
            self.system.extend(_text_parts(message.content))
        elif role == "user":
            self._append("user", _user_parts(message.content, where))
        elif role == "assistant":
            self._append("model", self._assistant_parts(message, where))
        elif role in ("tool", "function"):
            self._append("user", [self._function_response(message, where)])
        else:
            raise errors.BadRequest(f"{where}.role: unknown role {role!r}", param=f"{where}.role")

    def contents(self) -> list[dict[str, Any]]:
        if not self._turns and self.system:
            # Gemini needs one turn at least; a system-only request becomes the user's turn.
            self._turns.append({"role": "user", "parts": self.system})
            self.system = []
        if not self._turns:
            raise errors.BadRequest("messages: no message has any content", param="messages")
        return self._turns

    def _append(self, role: str, parts: list[Part]) -> None:
        if not parts:
            return  # Gemini rejects turns without parts
        if self._turns and self._turns[-1]["role"] == role:
            self._turns[-1]["parts"].extend(parts)
        else:
            self._turns.append({"role": role, "parts": parts})

    def _assistant_parts(self, message: Message, where: str) -> list[Part]:
        parts = _text_parts(message.content)
        for index, call in enumerate(message.tool_calls or ()):
            at = f"{where}.tool_calls[{index}]"
            self._call_names[call.id] = call.function.name
            part: Part = {
                "functionCall": {"name": call.function.name, "args": tool_arguments(call, at)}
            }
            signature = signature_of(call.id)
            if signature is not None:
                part["thoughtSignature"] = signature
            parts.append(part)
        return parts

    def _function_response(self, message: Message, where: str) -> Part:
        name = message.name
        if message.role == "tool":
            name = self._call_names.get(message.tool_call_id or "") or name
        if not name:
            raise errors.BadRequest(
                f"{where}.tool_call_id: no earlier assistant message has a tool call with id "
                f"{message.tool_call_id!r} (Gemini needs the function's name)",
                param=f"{where}.tool_call_id",
            )
        response = {"output": text_of(message.content)}
        return {"functionResponse": {"name": name, "response": response}}


def _text_parts(content: str | list[ContentPart] | None) -> list[Part]:
    text = text_of(content)
    return [{"text": text}] if text else []


def _user_parts(content: str | list[ContentPart] | None, where: str) -> list[Part]:
    if not isinstance(content, list):
        return _text_parts(content)
    parts: list[Part] = []
    for index, part in enumerate(content):
        translated = _user_part(part, f"{where}.content[{index}]")
        if translated is not None:
            parts.append(translated)
    return parts


def _user_part(part: ContentPart, where: str) -> Part | None:
    if part.type == "text":
        return {"text": part.text} if part.text else None
    if part.type == "image_url" and part.image_url is not None:
        return _media_part(part.image_url.url, f"{where}.image_url.url", default_mime="image/jpeg")
    if part.type == "input_audio" and part.input_audio is not None:
        mime = _AUDIO_TYPES.get(part.input_audio.format, f"audio/{part.input_audio.format}")
        return {"inlineData": {"mimeType": mime, "data": part.input_audio.data}}
    if part.type == "file" and part.file is not None and part.file.file_data:
        return _media_part(part.file.file_data, f"{where}.file.file_data", default_mime="")
    raise errors.BadRequest(
        f"{where}: content part of type {part.type!r} is not supported by Gemini", param=where
    )


def _media_part(url: str, where: str, *, default_mime: str) -> Part:
    inline = split_data_url(url, where)
    if inline is not None:
        mime, data = inline
        return {"inlineData": {"mimeType": mime, "data": data}}
    mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or default_mime
    if not mime:
        raise errors.BadRequest(f"{where}: cannot tell the file's type", param=where)
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _declarations(tools: list[Tool]) -> list[dict[str, Any]]:
    declarations = []
    for index, tool in enumerate(tools):
        if tool.type != "function" or tool.function is None:
            raise errors.BadRequest(
                f"tools[{index}]: only function tools are supported by Gemini",
                param=f"tools[{index}].type",
            )
        function = tool.function
        declaration: dict[str, Any] = {"name": function.name}
        if function.description:
            declaration["description"] = function.description
        if function.parameters:
            declaration["parametersJsonSchema"] = function.parameters
        declarations.append(declaration)
    return declarations


def _calling_config(choice: str | NamedToolChoice) -> dict[str, Any]:
    if isinstance(choice, NamedToolChoice):
        return {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}
    mode = _TOOL_CHOICE_MODES.get(choice)
    if mode is None:
        raise errors.BadRequest(
            f"tool_choice: {choice!r} is not one of auto, none, required", param="tool_choice"
        )
    return {"mode": mode}


def generation_config(chat: ChatBody) -> dict[str, Any]:
    config: dict[str, Any] = {}
    _put(config, "temperature", chat.temperature)
    _put(config, "topP", chat.top_p)
    _put(config, "maxOutputTokens", chat.token_limit)
    _put(config, "candidateCount", chat.n)
    _put(config, "seed", chat.seed)
    _put(config, "presencePenalty", chat.presence_penalty)
    _put(config, "frequencyPenalty", chat.frequency_penalty)
    if chat.stop_sequences:
        config["stopSequences"] = chat.stop_sequences
    response_format = chat.response_format
    if response_format is not None and response_format.type in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = response_format.json_schema
        if response_format.type == "json_schema" and schema is not None and schema.schema:
            config["responseJsonSchema"] = schema.schema
    return config


def _put(config: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        config[key] = value
