"""An Anthropic Messages request as an OpenAI chat-completions request, for ``/v1/messages``
routed to a provider that does not speak Anthropic's format.

- ``system`` (a string or text blocks) becomes one system message.
- ``tool_result`` blocks become ``tool`` messages, placed before the rest of their user turn
  (OpenAI wants them right after the assistant's tool calls); ``is_error`` results are marked
  in their text, since OpenAI has no such flag. Images inside a tool result follow in a user
  message.
- ``tool_use`` blocks become tool calls with JSON-string arguments.
- Thinking blocks are dropped (another provider cannot verify their signatures), and so are
  tools without an ``input_schema`` (Anthropic's server and built-in tools), which only
  Anthropic can run.
- A stream asks for the usage chunk, which the answer's ``message_delta`` needs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from floopy.errors import BadRequest
from floopy.providers.anthropic.content import (
    check_list,
    check_object,
    data_url,
    openai_image_part,
    text_of,
)

Message = dict[str, Any]
Part = dict[str, Any]

TOOL_ERROR_MARK = "[tool error] "
_DROPPED_BLOCKS = {"thinking", "redacted_thinking"}


def to_openai(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` passed the native parser (model and messages are well-formed); everything else
    is checked here."""
    messages = _system(doc.get("system"))
    for index, message in enumerate(doc["messages"]):
        messages.extend(_messages(message, f"messages.{index}"))
    body: dict[str, Any] = {"model": doc["model"], "messages": messages}
    _copy_parameters(doc, body)
    _copy_tools(doc, body)
    _copy_output_format(doc.get("output_config"), body)
    if doc.get("stream") is True:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _system(system: Any) -> list[Message]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    blocks = check_list(system, "system")
    text = "\n".join(
        text_of(check_object(b, f"system.{i}"), "system") for i, b in enumerate(blocks)
    )
    return [{"role": "system", "content": text}] if text else []


def _messages(message: Message, where: str) -> list[Message]:
    role, content = message["role"], message.get("content")
    if role not in ("user", "assistant"):
        raise BadRequest(
            f"role '{role}' is not a Messages API role; use user or assistant (the system "
            "prompt goes in the top-level `system`)",
            param=f"{where}.role",
        )
    if isinstance(content, str) or content is None:
        return [{"role": role, "content": content or ""}]
    blocks = [check_object(b, f"{where}.content.{i}") for i, b in enumerate(content)]
    if role == "assistant":
        return [_assistant(blocks, where)]
    return _user(blocks, where)


def _assistant(blocks: list[Part], where: str) -> Message:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for position, block in enumerate(blocks):
        at = f"{where}.content.{position}"
        kind = block.get("type")
        if kind == "text":
            texts.append(text_of(block, at))
        elif kind == "tool_use":
            calls.append(_tool_call(block, at))
        elif kind not in _DROPPED_BLOCKS:
            raise _unsupported_block(kind, at)
    message: Message = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: Part, where: str) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(arguments, dict):
        raise BadRequest(
            "a tool_use block needs a string id and name and an object input", param=where
        )
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": _json(arguments)},
    }


def _user(blocks: list[Part], where: str) -> list[Message]:
    """Tool results first, as tool messages; then the rest of the turn as one user message."""
    tool_messages: list[Message] = []
    parts: list[Part] = []
    for position, block in enumerate(blocks):
        at = f"{where}.content.{position}"
        kind = block.get("type")
        if kind == "tool_result":
            tool_messages.append(_tool_message(block, at, parts))
        elif kind == "text":
            parts.append({"type": "text", "text": text_of(block, at)})
        elif kind == "image":
            parts.append(openai_image_part(block.get("source"), at))
        elif kind == "document":
            parts.append(_file_part(block, at))
        else:
            raise _unsupported_block(kind, at)
    if parts:
        tool_messages.append({"role": "user", "content": _compact(parts)})
    return tool_messages


def _tool_message(block: Part, where: str, images: list[Part]) -> Message:
    """A tool_result as a tool message; its images go to ``images`` (tool messages carry
    text only)."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise BadRequest("a tool_result block needs its tool_use_id", param=f"{where}.tool_use_id")
    content = block.get("content")
    if isinstance(content, str) or content is None:
        text = content or ""
    else:
        texts: list[str] = []
        for position, raw in enumerate(check_list(content, f"{where}.content")):
            at = f"{where}.content.{position}"
            part = check_object(raw, at)
            if part.get("type") == "image":
                images.append(openai_image_part(part.get("source"), at))
            else:
                texts.append(text_of(part, at))
        text = "\n".join(texts)
    if block.get("is_error") is True:
        text = TOOL_ERROR_MARK + text
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _file_part(block: Part, where: str) -> Part:
    source = check_object(block.get("source"), f"{where}.source")
    data, media_type = source.get("data"), source.get("media_type")
    if source.get("type") != "base64" or not isinstance(data, str):
        raise BadRequest(
            "only base64 documents can be sent to this model's provider", param=f"{where}.source"
        )
    file_data = data_url(media_type if isinstance(media_type, str) else "application/pdf", data)
    return {"type": "file", "file": {"file_data": file_data}}


def _compact(parts: list[Part]) -> str | list[Part]:
    """One text part as a plain string, which every OpenAI-compatible server accepts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _unsupported_block(kind: Any, where: str) -> BadRequest:
    return BadRequest(
        f"content block type '{kind}' cannot be sent to this model's provider; use text, "
        "image, document, tool_use or tool_result",
        param=f"{where}.type",
    )


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


# --- parameters -----------------------------------------------------------------------------


def _copy_parameters(doc: dict[str, Any], body: dict[str, Any]) -> None:
    for name in ("max_tokens", "temperature", "top_p"):
        if doc.get(name) is not None:
            body[name] = doc[name]
    stops = doc.get("stop_sequences")
    if stops:
        body["stop"] = check_list(stops, "stop_sequences")
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        body["user"] = metadata["user_id"]


def _copy_tools(doc: dict[str, Any], body: dict[str, Any]) -> None:
    tools = [
        _function_tool(tool)
        for tool in (
            check_object(t, f"tools.{i}")
            for i, t in enumerate(check_list(doc.get("tools") or [], "tools"))
        )
        if isinstance(tool.get("input_schema"), dict)
    ]
    if not tools:
        return
    body["tools"] = tools
    choice = doc.get("tool_choice")
    if choice is not None:
        _copy_tool_choice(check_object(choice, "tool_choice"), body)


def _function_tool(tool: Part) -> Part:
    if not isinstance(tool.get("name"), str):
        raise BadRequest("each tool needs a string name", param="tools")
    function: Part = {"name": tool["name"], "parameters": tool["input_schema"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _copy_tool_choice(choice: Part, body: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "auto":
        body["tool_choice"] = "auto"
    elif kind == "any":
        body["tool_choice"] = "required"
    elif kind == "none":
        body["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise BadRequest("tool_choice.type must be auto, any, tool or none", param="tool_choice")
    if choice.get("disable_parallel_tool_use") is True:
        body["parallel_tool_calls"] = False


def _copy_output_format(output_config: Any, body: dict[str, Any]) -> None:
    """Structured outputs (``output_config.format``) as OpenAI's json_schema response format."""
    if not isinstance(output_config, dict):
        return
    spec = output_config.get("format")
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        schema = spec.get("schema")
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": "response",
                "schema": schema if isinstance(schema, dict) else {},
            },
        }
