"""The typed form of the resilience and tenancy settings: ``CIRCUIT_BREAKER``,
``RATE_LIMITS`` and ``ORGANIZATIONS``.

Kept apart from ``schema.py`` so that the core settings stay short; ``Settings`` holds these
as fields like any other. Field defaults come from ``defaults.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from floopy.settings import defaults

Positive = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
Ratio = Annotated[float, msgspec.Meta(gt=0, le=1)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Scope = Literal["key", "organization", "project", "user"]

_BREAKER = defaults.CIRCUIT_BREAKER


class CircuitBreakerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """When a (provider, model) target is taken out of rotation, and for how long."""

    enabled: bool = _BREAKER["enabled"]
    failures: Count = _BREAKER["failures"]  # consecutive failures that open the breaker
    failure_ratio: Ratio = _BREAKER["failure_ratio"]  # share of failures over `window` ...
    min_requests: Count = _BREAKER["min_requests"]  # ... once it holds this many calls
    window: Positive = _BREAKER["window"]  # seconds
    cooldown: Positive = _BREAKER["cooldown"]  # seconds open before one half-open probe


class RateLimitPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A budget of requests and/or tokens per sliding window, for each subject of a scope."""

    scope: Scope
    match: NonEmpty | None = None  # one key id / organization / project / user; None: each
    requests: Count | None = None
    tokens: Count | None = None
    window: Positive = 60.0  # seconds
    name: NonEmpty | None = None  # shown in the 429 message; default: made from the fields

    def __post_init__(self) -> None:
        if self.requests is None and self.tokens is None:
            raise ValueError("a rate-limit policy needs `requests`, `tokens` or both")

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        subject = f"{self.scope} {self.match}" if self.match else f"per {self.scope}"
        return f"{subject}, {self.window:g}s window"


class OrganizationConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The projects a tenant owns; ``floopy-project-id`` may only name one of them."""

    projects: tuple[NonEmpty, ...] = ()
    default_project: NonEmpty | None = None  # belongs to the organization implicitly
