"""An OpenAI chat-completions request as an Anthropic Messages request.

- System and developer messages, wherever they stand, become the top-level ``system`` blocks,
  in order (Anthropic has no system role).
- ``tool`` messages become ``tool_result`` blocks of a user turn, and consecutive turns of the
  same role are merged, since Anthropic requires user and assistant turns to alternate;
  ``tool_result`` blocks lead their turn, as Anthropic requires.
- ``max_tokens`` is required by Anthropic: the caller supplies the default.
- ``temperature`` is clamped to Anthropic's range, 0 to 1 (OpenAI accepts up to 2).
- ``response_format`` (``json_object`` or ``json_schema``) becomes a tool the model is made to
  call, whose input is the JSON answer: that works on every Claude model and streams; the
  response side turns the call back into message content. When the client brings tools of
  its own, forcing one would take them away, so the schema goes into the system prompt.
- Parameters Anthropic has no equivalent for (``seed``, penalties, ``logprobs``,
  ``logit_bias``) are left out; ``n`` other than 1 is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from floopy.errors import BadRequest
from floopy.providers.anthropic.content import (
    check_list,
    check_object,
    document_block,
    image_block,
    text_of,
)

JSON_TOOL = "json_response"
_JSON_TOOL_DESCRIPTION = "Give your answer by calling this tool: its input is the answer."
_JSON_INSTRUCTION = "Answer with one JSON object only, no prose and no code fences."
_ANY_OBJECT: dict[str, Any] = {"type": "object"}

Block = dict[str, Any]
Turn = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AnthropicRequest:
    body: dict[str, Any]
    json_tool: str | None  # the tool standing in for response_format, if any


def to_anthropic(
    doc: dict[str, Any], *, model: str, default_max_tokens: int, stream: bool
) -> AnthropicRequest:
    """``doc`` is a chat-completions body that passed the native parser (model, messages and
    their roles and content are well-formed); everything else is checked here."""
    _refuse_several_choices(doc)
    system, turns = split_messages(doc["messages"])
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens(doc, default_max_tokens),
        "messages": turns,
    }
    _copy_sampling(doc, body)
    json_tool = _tools(doc, body, system)
    if system:
        body["system"] = system
    user = doc.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    if stream:
        body["stream"] = True
    return AnthropicRequest(body=body, json_tool=json_tool)


def _refuse_several_choices(doc: dict[str, Any]) -> None:
    n = doc.get("n")
    if n is not None and n != 1:
        raise BadRequest("n must be 1 for Anthropic models: they return one choice", param="n")


# --- messages -------------------------------------------------------------------------------


def split_messages(messages: list[dict[str, Any]]) -> tuple[list[Block], list[Turn]]:
    """The system blocks, and the conversation as alternating user and assistant turns."""
    system: list[Block] = []
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), where))
            continue
        turn_role, blocks = _turn(role, message, where)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    if not turns:
        raise BadRequest(
            "Anthropic models need at least one user or assistant message", param="messages"
        )
    for turn in turns:
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, turns


def _turn(role: str, message: dict[str, Any], where: str) -> tuple[str, list[Block]]:
    if role == "user":
        return "user", _user_blocks(message.get("content"), where)
    if role == "assistant":
        return "assistant", _assistant_blocks(message, where)
    if role == "tool":
        return "user", [_tool_result(message, where)]
    raise BadRequest(
        f"role '{role}' is not supported for Anthropic models; use system, developer, user, "
        "assistant or tool",
        param=f"{where}.role",
    )


def _text_block(text: str, part: dict[str, Any] | None = None) -> Block:
    block: Block = {"type": "text", "text": text}
    if part is not None and isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]  # prompt caching, as Anthropic spells it
    return block


def _text_blocks(content: Any, where: str) -> list[Block]:
    """Text content (a string or text parts) as text blocks; Anthropic refuses empty ones."""
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    blocks: list[Block] = []
    for position, part in enumerate(check_list(content, f"{where}.content")):
        part = check_object(part, f"{where}.content.{position}")
        if part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
            text = part["refusal"]  # an earlier assistant turn's refusal, as said
        else:
            text = text_of(part, f"{where}.content.{position}")
        if text:
            blocks.append(_text_block(text, part))
    return blocks


def _user_blocks(content: Any, where: str) -> list[Block]:
    if content is None or isinstance(content, str):
        return _text_blocks(content or "", where)
    blocks: list[Block] = []
    for position, raw in enumerate(check_list(content, f"{where}.content")):
        at = f"{where}.content.{position}"
        part = check_object(raw, at)
        kind = part.get("type")
        if kind == "text":
            text = text_of(part, at)
            if text:
                blocks.append(_text_block(text, part))
        elif kind == "image_url":
            blocks.append(image_block(part.get("image_url"), at))
        elif kind == "file":
            blocks.append(document_block(part.get("file"), at))
        else:
            raise BadRequest(
                f"content part type '{kind}' is not supported for Anthropic models; "
                "use text, image_url or file (PDF)",
                param=f"{at}.type",
            )
    return blocks


def _assistant_blocks(message: dict[str, Any], where: str) -> list[Block]:
    content = message.get("content")
    blocks = _text_blocks(content, where) if content is not None else []
    calls = message.get("tool_calls")
    if calls is not None:
        for position, call in enumerate(check_list(calls, f"{where}.tool_calls")):
            blocks.append(_tool_use(check_object(call, f"{where}.tool_calls.{position}"), where))
    return blocks


def _tool_use(call: dict[str, Any], where: str) -> Block:
    function = check_object(call.get("function"), f"{where}.tool_calls.function")
    name, call_id = function.get("name"), call.get("id")
    if not isinstance(name, str) or not isinstance(call_id, str):
        raise BadRequest(
            "each tool call needs a string id and function.name", param=f"{where}.tool_calls"
        )
    return {"type": "tool_use", "id": call_id, "name": name, "input": _arguments(function, where)}


def _arguments(function: dict[str, Any], where: str) -> Any:
    raw = function.get("arguments") or "{}"
    try:
        parsed = msgspec.json.decode(raw) if isinstance(raw, str) else raw
    except msgspec.DecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise BadRequest(
            "tool call arguments must be a JSON object (Anthropic keeps them as an object)",
            param=f"{where}.tool_calls.function.arguments",
        )
    return parsed


def _tool_result(message: dict[str, Any], where: str) -> Block:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest("a tool message needs its tool_call_id", param=f"{where}.tool_call_id")
    block: Block = {"type": "tool_result", "tool_use_id": call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content is not None:
        parts = _text_blocks(content, where)
        if parts:
            block["content"] = parts
    return block


# --- parameters -----------------------------------------------------------------------------


def max_tokens(doc: dict[str, Any], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = doc.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"{name} must be a positive integer", param=name)
        return value
    return default


def _number(doc: dict[str, Any], name: str) -> float | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{name} must be a number", param=name)
    return float(value)


def _copy_sampling(doc: dict[str, Any], body: dict[str, Any]) -> None:
    temperature = _number(doc, "temperature")
    if temperature is not None:
        body["temperature"] = min(max(temperature, 0.0), 1.0)
    top_p = _number(doc, "top_p")
    if top_p is not None:
        body["top_p"] = top_p
    top_k = doc.get("top_k")  # not OpenAI's, but clients aiming at Claude send it
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        body["top_k"] = top_k
    stops = stop_sequences(doc.get("stop"))
    if stops:
        body["stop_sequences"] = stops


def stop_sequences(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise BadRequest("stop must be a string or an array of strings", param="stop")
    return [s for s in stop if s.strip()]  # Anthropic refuses blank stop sequences


# --- tools and response_format ----------------------------------------------------------------


def _tools(doc: dict[str, Any], body: dict[str, Any], system: list[Block]) -> str | None:
    """Sets tools and tool_choice; returns the name of the tool standing in for
    response_format, if one does."""
    tools = [_tool(tool, i) for i, tool in enumerate(check_list(doc.get("tools") or [], "tools"))]
    json_schema = _json_schema(doc.get("response_format"))
    if json_schema is not None and not tools:
        body["tools"] = [
            {"name": JSON_TOOL, "description": _JSON_TOOL_DESCRIPTION, "input_schema": json_schema}
        ]
        body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
        return JSON_TOOL
    if json_schema is not None:
        system.append(_text_block(_json_instruction(json_schema)))
    if tools:
        body["tools"] = tools
        choice = tool_choice(doc.get("tool_choice"), doc.get("parallel_tool_calls"))
        if choice is not None:
            body["tool_choice"] = choice
    return None


def _tool(tool: Any, index: int) -> Block:
    where = f"tools.{index}"
    tool = check_object(tool, where)
    function = check_object(tool.get("function"), f"{where}.function")
    if tool.get("type", "function") != "function" or not isinstance(function.get("name"), str):
        raise BadRequest(
            "each tool must be {'type': 'function', 'function': {'name': ...}}", param=where
        )
    parameters = function.get("parameters")
    translated: Block = {
        "name": function["name"],
        "input_schema": parameters if isinstance(parameters, dict) else _empty_schema(),
    }
    if isinstance(function.get("description"), str):
        translated["description"] = function["description"]
    return translated


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


def tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    """OpenAI's tool_choice in Anthropic's form: auto, none, required (any), or one named;
    ``parallel_tool_calls: false`` as ``disable_parallel_tool_use``. None: Anthropic's
    default (auto, parallel calls allowed) is what the client asked for."""
    if choice == "none":
        return {"type": "none"}  # this type takes no disable_parallel_tool_use
    if choice is None and parallel is not False:
        return None
    translated = _choice_type(choice)
    if parallel is False:
        translated["disable_parallel_tool_use"] = True
    return translated


def _choice_type(choice: Any) -> dict[str, Any]:
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if isinstance(name, str):
            return {"type": "tool", "name": name}
    raise BadRequest(
        "tool_choice must be 'auto', 'none', 'required' or "
        "{'type': 'function', 'function': {'name': ...}}",
        param="tool_choice",
    )


def _json_schema(response_format: Any) -> dict[str, Any] | None:
    if response_format is None:
        return None
    response_format = check_object(response_format, "response_format")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return _ANY_OBJECT
    if kind == "json_schema":
        spec = check_object(response_format.get("json_schema"), "response_format.json_schema")
        schema = spec.get("schema")
        return schema if isinstance(schema, dict) else _ANY_OBJECT
    raise BadRequest(
        "response_format.type must be text, json_object or json_schema",
        param="response_format.type",
    )


def _json_instruction(schema: dict[str, Any]) -> str:
    if schema is _ANY_OBJECT:
        return _JSON_INSTRUCTION
    return f"{_JSON_INSTRUCTION} It must match this JSON schema: " + msgspec.json.encode(
        schema
    ).decode("utf-8")
