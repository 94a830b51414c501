"""docs/configuration.md documents every setting: adding one without documenting it fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from floopy.settings import SETTING_NAMES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_setting_is_documented(name: str) -> None:
    # A heading of its own, so a passing mention in another setting's text does not count.
    assert re.search(rf"^#+ `{name}`", DOCS.read_text(), re.MULTILINE), f"{name} undocumented"
