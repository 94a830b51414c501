"""A routing target: what routing hands to dispatch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str  # the name the provider knows the model by
    requested: str  # the name the client asked for
