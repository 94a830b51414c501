"""Scrubbing before anything is written: each kind, and no harm to ordinary JSON."""

from __future__ import annotations

import random

import pytest

from floopy.observability.redact import SCRUBBERS, Redactor, log_needles, luhn_valid
from floopy.scrub import SecretScrubber

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


# --- the one-pass check before the patterns --------------------------------------------------

FRAGMENTS = [
    "hello there", '{"role":"user","content":"', "4111 1111 1111 1111", "+1 (555) 010-2345",
    "ana@example.com", "Bearer abcdefgh12345", "bearer", "sk-live0123", "ghp_" + "a" * 20,
    "AKIAABCDEFGHIJKLMNOP", "created 1796256892", "12345678", "my-provider-secret", "@",
    "xox", "EARER", "٠١٢٣٤٥٦٧٨٩٠١٢٣", "tokens 42", "💬", "\\n", " ",
]  # fmt: skip
ALL_KINDS = tuple(SCRUBBERS)


def full_scrub(secrets: SecretScrubber, kinds: tuple[str, ...], text: str) -> str:
    redact = Redactor(kind for kind in kinds if kind != "api_keys")
    return redact(secrets.scrub(text))


@pytest.mark.parametrize(
    "kinds", [(), ("bearer_tokens",), ("emails",), ("phone_numbers",), ALL_KINDS]
)
def test_a_text_the_needles_call_quiet_is_one_no_scrubber_changes(kinds: tuple[str, ...]) -> None:
    """Over many mixes of ordinary text and things to mask: whenever the one native pass
    says "nothing here", running every pattern changes nothing either."""
    secrets = SecretScrubber(["my-provider-secret"])
    quiet = log_needles(secrets, kinds).quiet
    chooser = random.Random(7)
    said_quiet = 0
    for _ in range(3000):
        text = "".join(chooser.choice(FRAGMENTS) for _ in range(chooser.randint(0, 6)))
        if quiet(text):
            said_quiet += 1
            assert full_scrub(secrets, kinds, text) == text, text
    assert said_quiet > 100  # the check is exercised on both sides
    assert not quiet("x my-provider-secret y") and not quiet("sk-live0123")


def test_the_needles_count_digits_only_for_cards_and_phones() -> None:
    secrets = SecretScrubber()
    assert log_needles(secrets, ("bearer_tokens",)).quiet("4111 1111 1111 1111")
    assert not log_needles(secrets, ("card_numbers",)).quiet("4111 1111 1111 1111")
    assert log_needles(secrets, ("card_numbers",)).quiet("created 1796256892")
    assert not log_needles(secrets, ("phone_numbers",)).quiet("created 1796256892")
