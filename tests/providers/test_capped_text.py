"""What a stream keeps of its text for the log: a bounded amount, cut cleanly."""

from __future__ import annotations

from floopy.providers.base import CappedText


def test_text_within_the_limit_is_kept_whole() -> None:
    text = CappedText(10)
    text.add("abc")
    text.add("")
    text.add("def")
    assert (str(text), text.truncated) == ("abcdef", False)


def test_text_past_the_limit_is_cut_at_a_character_boundary_and_then_dropped() -> None:
    text = CappedText(4)
    text.add("ab")
    text.add("éé")  # two bytes each: one fits
    text.add("more")
    assert (str(text), text.truncated) == ("abé", True)


def test_a_zero_limit_keeps_nothing() -> None:
    text = CappedText(0)
    text.add("anything")
    assert (str(text), text.truncated) == ("", True)
