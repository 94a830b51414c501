"""A request as the semantic and advanced tiers see it (``Conversation``): the text of its
last user message, which is compared by meaning, and a key over everything else, which must
match exactly.

The key is the exact tier's hash (``_native.CacheKeyer``, the same scope and seed) of the
body with the last user message's content emptied: the model, every parameter that changes
the answer, the system prompt, the tools and every earlier turn are in it; only the wording
of the last question is left to the embedding. Two different conversations that end with
the same question have different keys, so they never share an answer.

Which requests take part (``split``), else None:

1. the last message is the user's, and its content is text (a string, or text parts or
   blocks only: an image or a tool result is not compared by meaning);
2. its text is not empty and at most ``max_chars`` long;
3. single-turn (the semantic tier): every message before it is a system (or developer)
   message (``/v1/messages``: its only message; the system prompt is a field of its own);
   multi-turn (the advanced tier): anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from floopy.pipeline.cache.exact import scope_of
from floopy.pipeline.cache.wording import Wording, wording

if TYPE_CHECKING:
    from floopy._native import CacheKeyer
    from floopy.pipeline.cache.tier import Query

_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Conversation:
    text: str  # the last user message's text
    key: str  # the exact hash of the request without that text
    turns: int  # messages in the request, the last one included
    single_turn: bool
    wording: Wording  # what the embedding does not see (``wording``)


def split(query: Query, keyer: CacheKeyer, max_chars: int) -> Conversation | None:
    try:
        body = msgspec.json.decode(query.body)
    except (msgspec.DecodeError, RecursionError):
        return None
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = _text(last.get("content"))
    if not text or len(text) > max_chars:
        return None
    earlier = messages[:-1]
    single = all(isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES for m in earlier)
    body["messages"] = [*earlier, {**last, "content": ""}]
    key = keyer.key(msgspec.json.encode(body), scope_of(query), query.seed, query.ignore_keys)
    return Conversation(text, key, len(messages), single, wording(text))


def _text(content: Any) -> str | None:
    """A user message's text: a string, or text parts (chat) or text blocks (messages)
    joined; None when any part is something else."""
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        return None
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            return None
        text = part.get("text")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "\n".join(texts).strip()
