"""What OpenAI's API reference requires of a chat completion and of a stream chunk, as JSON
Schema, so a test can check what the gateway answers the way an OpenAI client reads it.

An excerpt written for this project from the published OpenAPI specification (schemas
``CreateChatCompletionResponse`` and ``CreateChatCompletionStreamResponse``): the required
fields, their types and the enums a client switches on. Fields the gateway never sends
(audio, logprob details, annotations) are left open. It lives here, not in a file beside the
checkout, so the check runs on every clone and never skips.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema

_FINISH_REASONS = ["stop", "length", "tool_calls", "content_filter", "function_call"]
_NULLABLE_STRING = {"type": ["string", "null"]}
_TOKEN_DETAILS = {"type": "object", "additionalProperties": {"type": "integer"}}

_DEFINITIONS: dict[str, Any] = {
    "usage": {
        "type": "object",
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
            "prompt_tokens_details": _TOKEN_DETAILS,
            "completion_tokens_details": _TOKEN_DETAILS,
        },
    },
    "tool_call": {
        "type": "object",
        "required": ["id", "type", "function"],
        "properties": {
            "id": {"type": "string"},
            "type": {"enum": ["function"]},
            "function": {
                "type": "object",
                "required": ["name", "arguments"],
                "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
            },
        },
    },
    "tool_call_chunk": {
        "type": "object",
        "required": ["index"],
        "properties": {
            "index": {"type": "integer"},
            "id": {"type": "string"},
            "type": {"enum": ["function"]},
            "function": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
            },
        },
    },
    "logprobs": {
        "anyOf": [
            {"type": "null"},
            {"type": "object", "required": ["content", "refusal"]},
        ]
    },
}

_COMPLETION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"enum": ["chat.completion"]},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "system_fingerprint": {"type": "string"},
        "usage": {"$ref": "#/$defs/usage"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason", "logprobs"],
                "properties": {
                    "index": {"type": "integer"},
                    "finish_reason": {"enum": _FINISH_REASONS},
                    "logprobs": {"$ref": "#/$defs/logprobs"},
                    "message": {
                        "type": "object",
                        "required": ["role", "content", "refusal"],
                        "properties": {
                            "role": {"enum": ["assistant"]},
                            "content": _NULLABLE_STRING,
                            "refusal": _NULLABLE_STRING,
                            "tool_calls": {"type": "array", "items": {"$ref": "#/$defs/tool_call"}},
                        },
                    },
                },
            },
        },
    },
}

_CHUNK: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"enum": ["chat.completion.chunk"]},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "system_fingerprint": {"type": "string"},
        "usage": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/usage"}]},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "delta", "finish_reason"],
                "properties": {
                    "index": {"type": "integer"},
                    "finish_reason": {"enum": [*_FINISH_REASONS, None]},
                    "logprobs": {"$ref": "#/$defs/logprobs"},
                    "delta": {
                        "type": "object",
                        "properties": {
                            "role": {"enum": ["developer", "system", "user", "assistant", "tool"]},
                            "content": _NULLABLE_STRING,
                            "refusal": _NULLABLE_STRING,
                            "tool_calls": {
                                "type": "array",
                                "items": {"$ref": "#/$defs/tool_call_chunk"},
                            },
                        },
                    },
                },
            },
        },
    },
}

SCHEMAS = {
    "CreateChatCompletionResponse": _COMPLETION,
    "CreateChatCompletionStreamResponse": _CHUNK,
}


@functools.cache
def validator(name: str) -> Any:
    schema = {**SCHEMAS[name], "$defs": _DEFINITIONS}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid(document: Any, name: str) -> None:
    errors = sorted(validator(name).iter_errors(document), key=str)
    assert not errors, f"{name}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )


def completion_valid(document: Any) -> None:
    assert_valid(document, "CreateChatCompletionResponse")


def chunk_valid(document: Any) -> None:
    assert_valid(document, "CreateChatCompletionStreamResponse")
