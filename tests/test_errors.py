"""The error tree (``floopy.errors``): what each class renders, that the native core raises
its classes, and that nothing outside it builds a bare ``FloopyError``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from floopy import _native, errors
from floopy.providers.base import upstream_error

PACKAGE = Path(errors.__file__).parent


def test_native_refusals_are_bad_requests_with_their_param() -> None:
    with pytest.raises(errors.InvalidField) as raised:
        _native.RequestParser().parse(b'{"model": "m", "messages": [], "stream": 1}')
    error = raised.value
    assert isinstance(error, errors.BadRequest) and isinstance(error, ValueError)
    assert error.envelope()["error"] == {
        "message": str(error),
        "type": "invalid_request_error",
        "code": "BAD_REQUEST",
        "param": error.param,
    }


def test_a_body_over_the_limit_is_the_trees_413() -> None:
    with pytest.raises(errors.PayloadTooLarge) as raised:
        _native.RequestParser(max_body_bytes=4).parse(b'{"model": "m"}')
    assert (raised.value.status, raised.value.code, raised.value.param) == (
        413,
        "PAYLOAD_TOO_LARGE",
        None,
    )


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_request_the_provider_rejected_keeps_its_status(status: int) -> None:
    error = upstream_error("openai", status, "bad `temperature`")
    assert isinstance(error, errors.ProviderRejected)
    assert (error.status, error.code) == (status, "BAD_REQUEST")
    assert error.type == "invalid_request_error"
    assert error.message == "openai: bad `temperature`"
    assert error.upstream_status == status


def test_a_provider_413_is_payload_too_large() -> None:
    error = upstream_error("openai", 413, "")
    assert isinstance(error, errors.PayloadTooLarge)
    assert (error.status, error.code) == (413, "PAYLOAD_TOO_LARGE")
    assert error.type == "invalid_request_error"
    assert error.message == "openai answered HTTP 413"


def test_transport_errors_render_as_their_client_facing_parents() -> None:
    broken = errors.UpstreamError("connection reset")
    late = errors.UpstreamTimeout("no answer", phase="first_byte")
    assert (broken.status, broken.code) == (502, "PROVIDER_ERROR")
    assert (late.status, late.code, late.phase) == (504, "GATEWAY_TIMEOUT", "first_byte")
    assert errors.UpstreamTimeout("x").phase is None


def _bare_constructions(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "FloopyError")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "FloopyError")
        )
    ]


def test_nothing_outside_the_tree_builds_a_bare_floopy_error() -> None:
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if path.name != "errors.py" and (lines := _bare_constructions(path))
    }
    assert found == {}, f"raise a class of floopy.errors instead: {found}"
