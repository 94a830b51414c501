"""The project's own provider wire fixtures (``tests/fixtures/<provider>/``): requests,
answers, SSE streams and error bodies in each provider's documented format, written for these
tests. They live in the repository, so a missing one is an error, never a skip."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_path(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    assert path.is_file(), f"the fixture {path} is missing from the repository"
    return path


def fixture_bytes(*parts: str) -> bytes:
    return fixture_path(*parts).read_bytes()
