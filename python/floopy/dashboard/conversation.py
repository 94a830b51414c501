"""A logged request and response read as a conversation: who said what, in order.

Bodies are whatever the client and the provider sent (OpenAI chat, Anthropic messages,
Responses input, embeddings), possibly cut at ``LOG_BODY_MAX_BYTES`` or redacted, so every
step here is forgiving: what cannot be read as messages is shown as raw text. The text stays
text: the pages put it in the document with ``textContent``, never as markup.
"""

from __future__ import annotations

import json
from typing import Any

Turn = dict[str, str]


def of(request_body: str, response_body: str) -> list[Turn]:
    turns = _request_turns(_json(request_body), request_body)
    answer = _answer(_json(response_body), response_body)
    if answer is not None:
        turns.append(answer)
    return turns


def last_user_text(turns: list[Turn]) -> str:
    for turn in reversed(turns):
        if turn["role"] == "user":
            return turn["text"]
    return ""


def answer_text(turns: list[Turn]) -> str:
    if turns and turns[-1]["role"] == "assistant" and turns[-1].get("answer") == "true":
        return turns[-1]["text"]
    return ""


def _json(body: str) -> Any:
    if not body or body[0] not in "{[":
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _request_turns(body: Any, raw: str) -> list[Turn]:
    if not isinstance(body, dict):
        return [{"role": "request", "text": raw}] if raw else []
    turns: list[Turn] = []
    if body.get("system") is not None:  # Anthropic's system prompt
        turns.append({"role": "system", "text": _text(body["system"])})
    if isinstance(body.get("instructions"), str):  # Responses
        turns.append({"role": "system", "text": body["instructions"]})
    messages = body.get("messages")
    if messages is None and isinstance(body.get("input"), list | str):
        messages = body["input"]
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list):
        return turns or [{"role": "request", "text": raw}]
    for message in messages:
        if isinstance(message, dict):
            role = str(message.get("role") or message.get("type") or "message")
            text = _text(message.get("content"))
            if message.get("tool_calls"):
                text = (text + "\n" if text else "") + _compact(message["tool_calls"])
            turns.append({"role": role, "text": text})
        else:
            turns.append({"role": "user", "text": _text(message)})
    return turns


def _answer(body: Any, raw: str) -> Turn | None:
    if not raw:
        return None
    if isinstance(body, dict):
        if isinstance(body.get("choices"), list):  # OpenAI chat
            parts = []
            for choice in body["choices"]:
                message = choice.get("message") or {} if isinstance(choice, dict) else {}
                text = _text(message.get("content"))
                if message.get("tool_calls"):
                    text = (text + "\n" if text else "") + _compact(message["tool_calls"])
                parts.append(text)
            return _assistant("\n---\n".join(parts))
        if isinstance(body.get("content"), list):  # Anthropic
            return _assistant(_text(body["content"]))
        if isinstance(body.get("output"), list):  # Responses
            return _assistant(_text([item.get("content") for item in body["output"]]))
        return _assistant(raw)
    return _assistant(raw)  # a stream's text, or a body that is not JSON


def _assistant(text: str) -> Turn:
    return {"role": "assistant", "text": text, "answer": "true"}


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part for part in (_text(item) for item in content) if part)
    if isinstance(content, dict):
        for key in ("text", "content", "input_text", "output_text"):
            if key in content:
                return _text(content[key])
        if content.get("type") == "image_url" or "image_url" in content:
            return "[image]"
        return _compact(content)
    return str(content)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
