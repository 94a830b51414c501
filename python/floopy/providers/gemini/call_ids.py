"""Tool-call ids for Gemini, which has none.

OpenAI clients need an id per tool call to send the result back. The id is derived from the
call itself (its position in the answer, the function name and the arguments), so the same
answer always gets the same ids: a cached or replayed answer matches the history a client
sends back. Gemini 2.5 and later attach a ``thoughtSignature`` to function calls and require
it back on the next turn; the gateway is stateless, so the signature rides inside the id and
is restored when the client returns the call in its history.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

_SIGNATURE_MARK = "__thought__"


def make_call_id(
    position: int, name: str, args: dict[str, Any] | None, signature: str | None = None
) -> str:
    canonical = msgspec.json.encode(args or {}, order="sorted")
    digest = hashlib.sha256(f"{position}\0{name}\0".encode() + canonical).hexdigest()[:24]
    call_id = f"call_{digest}"
    return f"{call_id}{_SIGNATURE_MARK}{signature}" if signature else call_id


def signature_of(call_id: str) -> str | None:
    """The thought signature carried in an id made by ``make_call_id``, if any."""
    _, mark, signature = call_id.partition(_SIGNATURE_MARK)
    return signature if mark and signature else None
