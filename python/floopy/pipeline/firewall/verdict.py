"""What screening concludes: a ``Verdict`` (DESIGN section 6), and the classifier protocol
that reaches one for each window of text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from floopy.vectors import Vector

Outcome = Literal["safe", "unsafe", "error", "skipped"]


class ClassifierError(Exception):
    """The classifier gave no verdict: it failed, timed out, or answered what does not
    parse. The request then fails open (verdict ``error``) or closed (503)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    score: float | None = None  # 0..1, how unsafe; None when there is no verdict
    categories: tuple[str, ...] = ()  # names, not codes: "Violent Crimes", "Prompt Injection"
    backend: str | None = None  # "llm" or "local"
    model: str | None = None  # the classifier's model_ref
    from_cache: bool = False  # a verdict-cache match: no classifier was asked


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The verdict of the text from those of its windows: an unsafe one (the highest score,
    the categories of every unsafe window), else the highest-scored safe one."""
    unsafe = [v for v in verdicts if v.outcome == "unsafe"]
    if not unsafe:
        return max(verdicts, key=lambda v: v.score or 0.0)
    top = max(unsafe, key=lambda v: v.score or 0.0)
    categories = tuple(dict.fromkeys(c for v in unsafe for c in v.categories))
    return Verdict("unsafe", top.score, categories, top.backend, top.model, top.from_cache)


class Classifier(Protocol):
    """A safety classifier backend: one verdict per window of text."""

    backend: str  # "llm" or "local"
    model: str  # the model_ref recorded with each verdict
    embedder_name: str | None  # whose vectors it reads, if any: the cache's are passed on
    window_chars: int | None  # the text it reads at once; None: FIREWALL.window_chars

    async def classify(
        self, windows: Sequence[str], vectors: Sequence[Vector] | None
    ) -> list[Verdict]:
        """Verdicts ``safe`` or ``unsafe``, one per window. ``vectors`` are the windows'
        embeddings when the verdict cache made them (a classifier on the same embedder
        reuses them). Raises ClassifierError."""
        ...

    async def warm_up(self) -> None:
        """Loads what the first request would otherwise wait for."""
        ...

    async def close(self) -> None: ...
