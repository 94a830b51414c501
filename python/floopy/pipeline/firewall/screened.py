"""What the firewall screens: the last user turn, and the turn's tool results when
``FIREWALL.tool_results`` asks, cut into windows the classifier can read whole.

Tool results are what came back since the model last spoke: OpenAI ``tool`` messages after
the last assistant message, Anthropic ``tool_result`` blocks of the last user message. A long
text is cut into overlapping windows; past ``max_windows`` of them, windows spread evenly
over the text are screened, the first and the last always among them.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Message(msgspec.Struct):
    role: str = ""
    content: Any = None


class _Conversation(msgspec.Struct):
    messages: list[_Message] = []


_conversation = msgspec.json.Decoder(_Conversation)


def tool_results(body: bytes, api_format: str) -> list[str]:
    """The texts of the turn's tool results; [] for a body that has none or does not read."""
    try:
        messages = _conversation.decode(body).messages
    except (msgspec.DecodeError, RecursionError):
        return []
    if api_format == "anthropic":
        return _anthropic_tool_results(messages)
    texts = []
    for message in reversed(messages):
        if message.role == "assistant":
            break
        if message.role == "tool":
            texts.append(_text(message.content))
    return [text for text in reversed(texts) if text]


def _anthropic_tool_results(messages: list[_Message]) -> list[str]:
    last_user = next((m for m in reversed(messages) if m.role == "user"), None)
    if last_user is None or not isinstance(last_user.content, list):
        return []
    texts = [
        _text(block.get("content"))
        for block in last_user.content
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    return [text for text in texts if text]


def _text(content: Any) -> str:
    """A message content's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def windows(text: str, size: int, limit: int) -> list[str]:
    """``text`` in windows of ``size`` characters overlapping by an eighth, at most
    ``limit`` of them."""
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    step = max(1, size - size // 8)
    starts = list(range(0, len(text) - size + step, step))
    if len(starts) > limit:
        last = len(starts) - 1
        starts = [starts[round(i * last / (limit - 1))] for i in range(limit)] if limit > 1 else [0]
    return [text[start : start + size] for start in starts]
