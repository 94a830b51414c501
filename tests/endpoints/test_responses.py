"""The Responses endpoint's request reading: the fields the gateway reads, what it refuses
because it keeps no responses, and the call each target gets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from floopy import errors
from floopy.endpoints.responses import ResponsesCalls, last_user_text, parse_request
from floopy.pipeline.routing import Target


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "input": "hi", **fields}).encode()


def test_fields_read_and_call_made() -> None:
    raw = body(stream=True, user="u-1")
    calls = ResponsesCalls(raw, parse_request(raw))
    assert (calls.model, calls.stream, calls.user) == ("gpt-4o-mini", True, "u-1")
    call = calls.call(Target(provider="openai", model="gpt-4o-mini-2024", requested="gpt-4o-mini"))
    assert call.api == "responses" and call.body is raw
    assert (call.model, call.requested_model, call.stream) == (
        "gpt-4o-mini-2024",
        "gpt-4o-mini",
        True,
    )
    assert call.user_text == "hi"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"store": True}, "store"),
        ({"background": True}, "background"),
    ],
)
def test_what_needs_a_kept_response_is_refused(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        parse_request(body(**fields))
    assert caught.value.param == param
    assert "does not keep responses" in caught.value.message


def test_store_false_is_fine() -> None:
    assert parse_request(body(store=False)).store is False


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"input": "hi"}', None),
        (b'{"model": "", "input": "hi"}', "model"),
        (b'{"model": "m"}', "input"),
        (b'{"model": "m", "input": []}', "input"),
        (b'{"model": "m", "input": 3}', "input"),
        (b'{"model": "m", "input": "hi", "stream": "yes"}', "stream"),
    ],
)
def test_bad_bodies(raw: bytes, param: str | None) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        parse_request(raw)
    assert caught.value.param == param


def test_last_user_text() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"role": "assistant", "content": "answer"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "again"}]},
        {"type": "function_call_output", "call_id": "c", "output": "x"},
    ]
    assert last_user_text(items) == "again"
    assert last_user_text("plain") == "plain"
    assert last_user_text([{"role": "assistant", "content": "x"}]) is None
