"""Keeping credentials out of everything the gateway says or writes.

A provider may repeat the key it was sent in its error text (OpenAI's own "Incorrect API key
provided: sk-..."), and a client may put one in a header that is logged. ``SecretScrubber``
replaces every configured provider key, by its exact value wherever it appears, and any
key-shaped string (``KEY_SHAPED``), before a message reaches a client or a log row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floopy.settings import Settings

MASK = "[API_KEY]"  # the same placeholder as the log's "api_keys" scrubber
# Keys by their vendors' prefixes. ``sk-`` keys are matched from 6 characters on, masked
# ones too (``sk-abc***xyz``, as providers quote them), so short test keys are caught.
KEY_SHAPED = re.compile(
    r"\b(?:sk-(?:ant-|proj-|or-)?[A-Za-z0-9_*.-]{6,}"
    r"|fpk_[A-Za-z0-9_-]{8,}"
    r"|AIza[0-9A-Za-z_-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|gsk_[A-Za-z0-9]{8,}"
    r"|AKIA[0-9A-Z]{16})"
)


# Every match of KEY_SHAPED holds one of these; a text without any needs no scan by it.
KEY_PREFIXES = (
    "sk-", "fpk_", "AIza", "xox", "gsk_", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"
)  # fmt: skip


def may_hold_key(text: str) -> bool:
    """Whether ``text`` holds a vendor's key prefix, so ``KEY_SHAPED`` needs to run:
    substring searches in C, far fewer instructions than one alternation pattern."""
    return any(prefix in text for prefix in KEY_PREFIXES)


# Shorter values are not secrets worth the false matches they would make.
MIN_SECRET = 6


class SecretScrubber:
    """The configured secrets of one process, built once; ``scrub`` is safe on any text."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        distinct = {value for value in values if len(value) >= MIN_SECRET}
        # Longest first, so a key that contains another is masked whole.
        self._values = tuple(sorted(distinct, key=len, reverse=True))

    @property
    def values(self) -> tuple[str, ...]:
        return self._values

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretScrubber:
        return cls(key for config in settings.providers.values() if (key := config.api_key()))

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        if may_hold_key(text):
            text = KEY_SHAPED.sub(MASK, text)
        return text
