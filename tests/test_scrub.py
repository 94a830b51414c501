"""The secret scrubber: configured keys by value wherever they appear, key shapes by prefix."""

from __future__ import annotations

import pytest

from floopy.observability.redact import Redactor
from floopy.scrub import MASK, SecretScrubber


def test_a_configured_key_is_masked_by_its_value_anywhere() -> None:
    scrub = SecretScrubber(["k3yvalue-42", "AIzaSyExample0123456789abcdefghij"]).scrub
    assert scrub("bad key k3yvalue-42 (k3yvalue-42)") == f"bad key {MASK} ({MASK})"
    assert scrub("x-goog-api-key=AIzaSyExample0123456789abcdefghij&") == f"x-goog-api-key={MASK}&"


def test_the_longest_secret_is_masked_whole() -> None:
    scrub = SecretScrubber(["secret-1", "secret-1-longer"]).scrub
    assert scrub("secret-1-longer") == MASK


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: sk-abc123",
        "Incorrect API key provided: sk-proj-ab***********************xyz9",
        "key sk-ant-api03-abcdefghijklmnopqrstuv",
        "gateway key fpk_abcdefgh12",
    ],
)
def test_key_shapes_are_masked_short_or_not(text: str) -> None:
    assert MASK in SecretScrubber().scrub(text)
    assert MASK in Redactor(["api_keys"])(text)


def test_ordinary_text_is_left_alone() -> None:
    for text in ("use sk-learn", "risk-free", "ask-me", "fpk_ short"):
        assert SecretScrubber(["tiny"]).scrub(text) == text  # "tiny" is too short to mask


@pytest.mark.parametrize(
    "text",
    [
        "ghp_0123456789abcdefghij0123",
        "token gho_0123456789abcdefghijKLMN in text",
        "xoxb-0123456789-abcdef",
        "gsk_abcdefgh1",
        "AKIAABCDEFGHIJKLMNOP",
        "AIzaSyExample0123456789abcdefghij",
        "the sk-live0123 key",
    ],
)
def test_every_vendor_prefix_is_found_wherever_it_stands(text: str) -> None:
    scrub = SecretScrubber().scrub
    assert MASK in scrub(text)
    assert MASK in scrub(f"{'x' * 300} {text} {'y' * 300}")


def test_text_without_a_vendor_prefix_is_left_as_it_is() -> None:
    text = 'the ghost of "sk" ghx_token fpk-12345678 AIz akia ' * 20
    assert SecretScrubber().scrub(text) == text
