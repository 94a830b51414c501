"""Stage 6, routing: a model name (and per-request fallbacks) into an ordered list of targets.

A model resolves through the catalog (``MODELS``), or explicitly as ``provider/model``. The
body's ``model`` may list several comma-separated models, and ``floopy-fallback`` adds more:
together they form the request's fallback chain, tried in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from floopy import errors

if TYPE_CHECKING:
    from floopy.settings import Settings


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str  # the name the provider knows the model by
    requested: str  # the name the client asked for


class Router:
    def __init__(self, settings: Settings, unavailable: set[str]) -> None:
        self._models = settings.models
        self._providers = set(settings.providers)
        self._unavailable = unavailable
        # A provider whose API key is not set hands its models to the echo provider, so
        # the gateway answers out of the box; start-up output says so.
        self._stand_in = "echo" if "echo" in settings.providers else None

    def targets(self, model: str, fallbacks: list[str] | tuple[str, ...] = ()) -> list[Target]:
        names = [name.strip() for name in model.split(",") if name.strip()]
        names.extend(fallbacks)
        if not names:
            raise errors.BadRequest("`model` must name a model", param="model")
        return [self.resolve(name) for name in dict.fromkeys(names)]

    def resolve(self, name: str) -> Target:
        entry = self._models.get(name)
        if entry is not None:
            return self._target(entry.provider, entry.upstream_model or name, name)
        provider, sep, upstream = name.partition("/")
        if sep and provider in self._providers and upstream:
            return self._target(provider, upstream, name)
        raise errors.BadRequest(
            f"model '{name}' is not configured. Configured models: "
            f"{', '.join(sorted(self._models)) or 'none'}; or name one as provider/model "
            f"with a configured provider: {', '.join(sorted(self._providers))}",
            param="model",
        )

    def _target(self, provider: str, model: str, requested: str) -> Target:
        if provider in self._unavailable and self._stand_in is not None:
            return Target(self._stand_in, requested, requested)
        return Target(provider, model, requested)
