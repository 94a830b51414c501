"""Pure-Python equivalents of the native hot path, written as a good Python gateway would.

They compute the same results as ``floopy._native`` (the benches check that beside the
timing), so the comparison is like for like.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import xxhash

EXCLUDED = ("stream", "stream_options", "user", "metadata", "store")


# --- parse --------------------------------------------------------------------------------


def parse_chat(body: bytes, loads: Callable[[bytes], Any] = json.loads) -> dict[str, Any]:
    doc = loads(body)
    if not isinstance(doc, dict):
        raise ValueError("body must be a JSON object")
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("model")
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages")
    last_user = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"messages.{i}")
        if message["role"] == "user":
            last_user = message
    stream = doc.get("stream", False)
    if not isinstance(stream, bool):
        raise ValueError("stream")
    options = doc.get("stream_options") or {}
    return {
        "model": model,
        "stream": stream,
        "include_usage": bool(options.get("include_usage", False)),
        "message_count": len(messages),
        "last_user_text": _text(last_user["content"]) if last_user else None,
        "user": doc.get("user"),
        "has_tools": bool(doc.get("tools") or doc.get("functions")),
    }


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if p.get("type") == "text")
    return None


def parse_chat_orjson(body: bytes) -> dict[str, Any]:
    return parse_chat(body, orjson.loads)


# --- headers ------------------------------------------------------------------------------

_SIMPLE = {
    "session-id": "session_id",
    "session-name": "session_name",
    "session-path": "session_path",
    "project-id": "project_id",
    "user-id": "user_id",
    "model-override": "model_override",
    "routing-rule": "routing_rule",
    "cache-seed": "cache_seed",
}
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _check(name: str, value: str, limit: int = 4096) -> str:
    if len(value) > limit:
        raise ValueError(f"{name}: too long")
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise ValueError(f"{name}: control character")
    return value


def extract_headers(items: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"properties": {}, "fallbacks": [], "cache_ignore_keys": []}
    for raw_name, value in items:
        name = raw_name.lower()
        if name.startswith("x-floopy-"):
            name = name[2:]
        if name == "authorization":
            scheme, _, token = _check(name, value).partition(" ")
            if scheme.lower() == "bearer":
                out["api_key"] = token.strip()
        elif name == "x-api-key":
            out.setdefault("api_key", _check(name, value))
        elif name == "user-agent":
            out["user_agent"] = _check(name, value)
        elif name == "cache-control":
            for directive in _check(name, value).split(","):
                key, _, arg = directive.strip().partition("=")
                if key.lower() == "max-age":
                    out["cache_max_age"] = int(arg)
        elif name.startswith("floopy-"):
            _floopy_header(out, name, name[7:], _check(name, value))
    return out


def _floopy_header(out: dict[str, Any], name: str, suffix: str, value: str) -> None:
    if suffix in _SIMPLE:
        out[_SIMPLE[suffix]] = value
    elif suffix.startswith("property-"):
        out["properties"][suffix[9:]] = value
    elif suffix == "fallback":
        out["fallbacks"] = [v.strip() for v in value.split(",") if v.strip()]
    elif suffix == "cache-ignore-keys":
        out["cache_ignore_keys"] = [v.strip() for v in value.split(",") if v.strip()]
    elif suffix in ("cache-enabled", "cache-advanced", "llm-security-enabled"):
        flag = _BOOLS.get(value.strip().lower())
        if flag is None:
            raise ValueError(f"{name}: not a boolean")
        out[suffix.replace("-", "_")] = flag
    elif suffix == "cache-bucket-max-size":
        out["cache_bucket_max_size"] = int(value)


# --- cache key ----------------------------------------------------------------------------


def _frame(part: bytes) -> bytes:
    return len(part).to_bytes(8, "little") + part


def _integral_floats_as_ints(value: Any) -> Any:
    """`1.0` and `1` ask for the same thing: the canonical form writes both as `1`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(v) for v in value]
    return value


def _without_excluded(doc: dict[str, Any], ignore_keys: tuple[str, ...]) -> Any:
    for key in (*EXCLUDED, *ignore_keys):
        doc.pop(key, None)
    return _integral_floats_as_ints(doc)


def canonical_json(body: bytes, ignore_keys: tuple[str, ...] = ()) -> bytes:
    doc = _without_excluded(json.loads(body), ignore_keys)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_orjson(body: bytes, ignore_keys: tuple[str, ...] = ()) -> bytes:
    doc = _without_excluded(orjson.loads(body), ignore_keys)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def cache_key(body: bytes, scope: str, canonical: Callable[[bytes], bytes]) -> str:
    # The native keyer's framing: a version tag, the scope, "no seed", the canonical body.
    framed = b"floopy-exact-v1\x00" + _frame(scope.encode()) + b"\x00" + canonical(body)
    return xxhash.xxh3_128_hexdigest(framed)


# --- sse ----------------------------------------------------------------------------------


class PythonStreamRelay:
    """An incremental SSE parser and OpenAI capture: the usual Python gateway loop."""

    def __init__(self) -> None:
        self.buffer = b""
        self.content: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> bytes:
        self.buffer += chunk
        out = []
        while True:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                break
            event, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
            out.append(event)
            self._capture(event)
        return b"".join(out)

    def _capture(self, event: bytes) -> None:
        data = b"\n".join(
            line[5:].lstrip(b" ") for line in event.splitlines() if line.startswith(b"data:")
        )
        if not data or data == b"[DONE]":
            return
        chunk = json.loads(data)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices", []):
            if choice.get("index") == 0:
                self.content.append(choice.get("delta", {}).get("content") or "")
                self.finish_reason = choice.get("finish_reason") or self.finish_reason
