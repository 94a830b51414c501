"""OpenAI's own OpenAPI specification as a validator of what the gateway answers.

The specification lives beside the checkout (``../shared/openai-openapi/openapi.yaml``, as in
CI); tests using it skip when it is absent. Its schemas mix OpenAPI 3.0 ``nullable: true``
with JSON Schema, so ``nullable`` is rewritten as ``anyOf [schema, null]`` before validating.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "openai-openapi" / "openapi.yaml"
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


@functools.cache
def _components() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    if not SPEC.is_file():
        pytest.skip(f"the OpenAI OpenAPI spec is not at {SPEC}")
    with SPEC.open() as file:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml, when built with it
        return dict(_json_schema(yaml.load(file, Loader=loader)["components"]))


def _json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def validator(name: str) -> Any:
    """A validator of ``#/components/schemas/<name>``."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"$ref": f"#/components/schemas/{name}", "components": _components()}
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


def fixture_path(*parts: str) -> Path:
    """A file of the shared provider fixtures; the test skips when they are absent."""
    path = FIXTURES.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared fixture {path} is absent")
    return path
