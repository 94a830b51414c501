"""Scrubbing before anything is written: each kind, and no harm to ordinary JSON."""

from __future__ import annotations

import pytest

from floopy.observability.redact import SCRUBBERS, Redactor, luhn_valid

EVERYTHING = Redactor(SCRUBBERS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+ai@mail.example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 please", "card [CARD] please"),
        ("card 5500-0000-0000-0004", "card [CARD]"),
        ("call +1 (415) 555-2671", "call [PHONE]"),
        ("call 415-555-2671 or +447911123456", "call [PHONE] or [PHONE]"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx1234", "key [API_KEY]"),
        ("key sk-ant-api03-abcdefghijklmnopqrstuv", "key [API_KEY]"),
        ("gateway key fpk_abcdefghijklmnopqrstuvwxyz012345", "gateway key [API_KEY]"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer [TOKEN]"),
    ],
)
def test_each_kind_is_replaced(text: str, expected: str) -> None:
    assert EVERYTHING(text) == expected


def test_numbers_in_ordinary_json_are_left_alone() -> None:
    body = (
        '{"max_tokens": 1000000000, "created": 1727346168, "seed": 4111111111111112, '
        '"date": "2024-01-15", "ip": "192.168.100.200", "temperature": 0.7}'
    )
    assert EVERYTHING(body) == body


def test_only_the_configured_kinds_apply() -> None:
    redact = Redactor(["emails"])
    text = "jane@example.com paid with 4111 1111 1111 1111"
    assert redact(text) == "[EMAIL] paid with 4111 1111 1111 1111"
    assert not Redactor([])


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
