"""A Responses API request as a chat-completions request, for a provider that speaks only chat.

- ``instructions`` becomes a leading system message; ``input`` as a string one user message.
- ``input`` items: messages keep their role (``developer`` becomes ``system``, which every
  chat translator knows); ``input_text``/``output_text`` parts become text, ``input_image``
  an ``image_url`` part, ``input_file`` a ``file`` part. Consecutive ``function_call`` items
  join one assistant message's ``tool_calls`` (``call_id`` is the chat tool call id);
  ``function_call_output`` becomes a ``tool`` message. ``reasoning`` items are dropped:
  another provider cannot read them.
- Function tools are flat in Responses and nested in chat; ``strict`` is set explicitly
  (it defaults to true in Responses, false in chat). Other tool types run only at OpenAI.
- ``text.format`` becomes ``response_format``, ``reasoning.effort`` ``reasoning_effort`` and
  ``max_output_tokens`` ``max_completion_tokens``.
- A stream asks for the usage chunk, which ``response.completed`` needs.
"""

from __future__ import annotations

from typing import Any

from floopy.errors import BadRequest

Message = dict[str, Any]
Part = dict[str, Any]

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = ("input_text", "output_text", "text")
_DROPPED_ITEMS = {"reasoning"}
_COPIED = ("temperature", "top_p", "user", "parallel_tool_calls", "top_logprobs")


def to_chat(doc: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """``doc`` is a Responses request whose ``model`` the endpoint has checked."""
    messages = _instructions(doc.get("instructions"))
    messages.extend(input_messages(doc.get("input")))
    body: dict[str, Any] = {"model": doc["model"], "messages": messages}
    for name in _COPIED:
        if doc.get(name) is not None:
            body[name] = doc[name]
    if doc.get("max_output_tokens") is not None:
        body["max_completion_tokens"] = doc["max_output_tokens"]
    _copy_tools(doc, body)
    _copy_text_format(doc.get("text"), body)
    _copy_reasoning(doc.get("reasoning"), body)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _instructions(instructions: Any) -> list[Message]:
    if instructions is None or instructions == "":
        return []
    if not isinstance(instructions, str):
        raise BadRequest("instructions must be a string", param="instructions")
    return [{"role": "system", "content": instructions}]


def input_messages(value: Any) -> list[Message]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise BadRequest("input must be a string or a non-empty array of items", param="input")
    messages: list[Message] = []
    for index, item in enumerate(value):
        _add_item(messages, _object(item, f"input.{index}"), f"input.{index}")
    return messages


def _add_item(messages: list[Message], item: Part, where: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        messages.append(_message(item, where))
    elif kind == "function_call":
        _add_tool_call(messages, item, where)
    elif kind == "function_call_output":
        messages.append(_tool_message(item, where))
    elif kind == "item_reference":
        raise BadRequest(
            "item_reference needs responses kept by the gateway, which keeps none; send the "
            "items themselves",
            param=f"{where}.type",
        )
    elif kind not in _DROPPED_ITEMS:
        raise BadRequest(
            f"input item type '{kind}' cannot be sent to this model's provider; use message, "
            "function_call or function_call_output",
            param=f"{where}.type",
        )


def _message(item: Part, where: str) -> Message:
    role = _ROLES.get(str(item.get("role")))
    if role is None:
        raise BadRequest("role must be user, assistant, system or developer", param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise BadRequest("content must be a string or an array of parts", param=f"{where}.content")
    parts = [
        _part(_object(p, f"{where}.content.{i}"), f"{where}.content.{i}")
        for i, p in enumerate(content)
    ]
    if role != "user" or all(part["type"] == "text" for part in parts):
        # Only user messages take images and files in chat; the others are plain text.
        return {"role": role, "content": "".join(str(p.get("text", "")) for p in parts)}
    return {"role": role, "content": parts}


def _part(part: Part, where: str) -> Part:
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": _string(part.get("text"), f"{where}.text")}
    if kind == "refusal":
        return {"type": "text", "text": _string(part.get("refusal"), f"{where}.refusal")}
    if kind == "input_image":
        url = _string(part.get("image_url"), f"{where}.image_url")
        image: Part = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        file: Part = {"file_data": part["file_data"]}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise BadRequest(
        f"content part type '{kind}' cannot be sent to this model's provider; use input_text, "
        "input_image (a URL or data URL) or input_file (file_data)",
        param=f"{where}.type",
    )


def _add_tool_call(messages: list[Message], item: Part, where: str) -> None:
    call = {
        "id": _string(item.get("call_id"), f"{where}.call_id"),
        "type": "function",
        "function": {
            "name": _string(item.get("name"), f"{where}.name"),
            "arguments": _string(item.get("arguments"), f"{where}.arguments"),
        },
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_message(item: Part, where: str) -> Message:
    output = item.get("output")
    if isinstance(output, list):
        texts = [p.get("text") for p in output if isinstance(p, dict)]
        output = "\n".join(t for t in texts if isinstance(t, str))
    return {
        "role": "tool",
        "tool_call_id": _string(item.get("call_id"), f"{where}.call_id"),
        "content": _string(output, f"{where}.output"),
    }


# --- parameters -----------------------------------------------------------------------------


def _copy_tools(doc: dict[str, Any], body: dict[str, Any]) -> None:
    tools = doc.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise BadRequest("tools must be an array", param="tools")
        body["tools"] = [_tool(_object(t, f"tools.{i}"), f"tools.{i}") for i, t in enumerate(tools)]
    choice = doc.get("tool_choice")
    if choice is not None and tools:
        body["tool_choice"] = _tool_choice(choice)


def _tool(tool: Part, where: str) -> Part:
    if tool.get("type") != "function":
        raise BadRequest(
            f"tool type '{tool.get('type')}' runs only at OpenAI; this model's provider takes "
            "function tools",
            param=f"{where}.type",
        )
    function: Part = {
        "name": _string(tool.get("name"), f"{where}.name"),
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        "strict": tool.get("strict") is not False,
    }
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {
            "type": "function",
            "function": {"name": _string(choice.get("name"), "tool_choice.name")},
        }
    raise BadRequest(
        "tool_choice must be auto, none, required or {type: function, name}", param="tool_choice"
    )


def _copy_text_format(text: Any, body: dict[str, Any]) -> None:
    spec = text.get("format") if isinstance(text, dict) else None
    if not isinstance(spec, dict):
        return
    kind = spec.get("type")
    if kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = {
            name: spec[name] for name in ("name", "schema", "strict", "description") if name in spec
        }
        schema.setdefault("name", "response")
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif kind != "text":
        raise BadRequest(
            "text.format.type must be text, json_object or json_schema", param="text.format.type"
        )


def _copy_reasoning(reasoning: Any, body: dict[str, Any]) -> None:
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        body["reasoning_effort"] = reasoning["effort"]


def _object(value: Any, where: str) -> Part:
    if not isinstance(value, dict):
        raise BadRequest("must be an object", param=where)
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest("must be a string", param=where)
    return value
