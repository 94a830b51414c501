"""Scrubbing what must not reach the log: applied to bodies and custom property values
before a record is written anywhere (the journal, then ClickHouse).

Each kind is a pattern and a placeholder. Card numbers must also pass the Luhn check, and
phone numbers need the shape of one (a leading ``+``, parentheses or separators), so that
ids, timestamps and token counts in a JSON body are left alone.

Each kind also names what every match of it must contain (``TRIGGERS``: literals, or a least
number of digits): ``log_needles`` searches a text for all of them in one native pass, and a
text holding none is left as it is without running a pattern over it, which is most bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from floopy._native import Needles
from floopy.scrub import KEY_PREFIXES, KEY_SHAPED, MASK, SecretScrubber, may_hold_key

Scrubber = Callable[[str], str]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Cards and phones: a cheap candidate pattern (it starts with a digit class, which the regex
# engine scans for quickly), then the exact shape, the boundaries and the checks in Python.
_CARD_CANDIDATE = re.compile(r"\d[\d -]{11,22}\d")
_CARD_SHAPE = re.compile(r"\d(?:[ -]?\d){12,18}")
_PHONE_CANDIDATE = re.compile(r"[+(\d][\d ().-]{7,20}\d")
_PHONE_SHAPE = re.compile(
    r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}|\+\d{8,15}"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _standalone(match: re.Match[str], also_before: str = "") -> bool:
    """Not part of a longer word, number or decimal."""
    text, start, end = match.string, match.start(), match.end()
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or before in "._" + also_before) and not (
        after.isalnum() or after in "._"
    )


def _scrub_cards(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        found = match.group()
        if not _standalone(match) or not _CARD_SHAPE.fullmatch(found):
            return found
        return "[CARD]" if luhn_valid(re.sub(r"[ -]", "", found)) else found

    return _CARD_CANDIDATE.sub(replace, text)


def _scrub_phones(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        found = match.group()
        if not _standalone(match, also_before="+") or not _PHONE_SHAPE.fullmatch(found):
            return found
        digits = sum(char.isdigit() for char in found)
        looks_like_phone = found.startswith(("+", "(")) or " " in found or "-" in found
        return "[PHONE]" if 9 <= digits <= 15 and looks_like_phone else found

    return _PHONE_CANDIDATE.sub(replace, text)


def _scrub_bearer(text: str) -> str:
    if "earer" not in text and "EARER" not in text:
        return text
    return _BEARER.sub("Bearer [TOKEN]", text)


def _scrub_api_keys(text: str) -> str:
    if not may_hold_key(text):
        return text
    return KEY_SHAPED.sub(MASK, text)


def _scrub_emails(text: str) -> str:
    return _EMAIL.sub("[EMAIL]", text) if "@" in text else text


def _digits(text: str) -> int:
    return len(text) - len(text.translate(_NO_DIGITS))


# The regular expressions scan every position of a body; these checks (one scan for a
# literal prefix, substring searches in C) skip them for the bodies that cannot hold a
# match, which are most of them.
_NO_DIGITS = str.maketrans("", "", "0123456789")

# Applied in this order: bearer tokens and keys before phones and cards, whose digit runs
# could otherwise eat part of a key.
SCRUBBERS: dict[str, Scrubber] = {
    "bearer_tokens": _scrub_bearer,
    "api_keys": _scrub_api_keys,
    "emails": _scrub_emails,
    "card_numbers": lambda text: _scrub_cards(text) if _digits(text) >= 13 else text,
    "phone_numbers": lambda text: _scrub_phones(text) if _digits(text) >= 9 else text,
}


# What a text must hold for each kind to change it: literals, or a least number of ASCII
# digits (``_digits`` above decides the same for cards and phones).
TRIGGERS: dict[str, tuple[str, ...]] = {
    "bearer_tokens": ("earer", "EARER"),
    "api_keys": KEY_PREFIXES,
    "emails": ("@",),
}
DIGIT_TRIGGERS = {"card_numbers": 13, "phone_numbers": 9}


def log_needles(secrets: SecretScrubber, kinds: Iterable[str]) -> Needles:
    """The literals of the secrets scrubber and of the log's ``kinds``, searched together:
    a text that holds none (and too few digits) is left unchanged by all of them."""
    wanted = set(kinds)
    patterns = {*secrets.values, *KEY_PREFIXES}
    for kind in wanted:
        patterns.update(TRIGGERS.get(kind, ()))
    limits = [limit for kind, limit in DIGIT_TRIGGERS.items() if kind in wanted]
    return Needles(sorted(patterns), min(limits, default=0))


class Redactor:
    """The configured scrubbers, in their fixed order; built once per worker."""

    def __init__(self, kinds: Iterable[str]) -> None:
        wanted = set(kinds)
        self._scrubbers = [scrub for kind, scrub in SCRUBBERS.items() if kind in wanted]

    def __call__(self, text: str) -> str:
        for scrub in self._scrubbers:
            text = scrub(text)
        return text

    def __bool__(self) -> bool:
        return bool(self._scrubbers)
