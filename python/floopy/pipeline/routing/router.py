"""A model name (and per-request fallbacks) into an ordered list of targets.

A model resolves through the catalog (``MODELS``), then explicitly as ``provider/model``, then
by its family's prefix (``gpt-``, ``o1``, ``claude-``, ``gemini-``, ...) to the configured
provider speaking that family's protocol, so a new model works before the catalog lists it.
The body's ``model`` may list several comma-separated models, and ``floopy-fallback`` adds
more: together they form the request's fallback chain, tried in order.

A routing rule (``ROUTING_RULES``, see ``strategies``) replaces the model name: the
``floopy-routing-rule`` header names one, else the key's ``routing_rule``, else the model name
routes. A rule's targets come first, in its strategy's order, then ``floopy-fallback``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from floopy import errors
from floopy.pipeline.routing.latency import LatencyTracker
from floopy.pipeline.routing.strategies import compile_rules
from floopy.pipeline.routing.target import Target

if TYPE_CHECKING:
    from floopy.settings import Settings

# Model families by name, each to the provider kind that serves it. OpenAI's family goes to
# an `openai` provider only: an Azure resource serves deployments, not model names.
_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(gpt-|chatgpt-|text-embedding-|o[134](-|$))"), "openai"),
    (re.compile(r"claude-"), "anthropic"),
    (re.compile(r"gemini-"), "gemini"),
)
# Model names (with their fallbacks) resolved already, kept per worker: clients choose the
# names, so past this many the memo starts over.
MAX_RESOLVED = 1024
_FAMILY_NAMES = {"openai": "gpt-*, o1*, o3*, o4*", "anthropic": "claude-*", "gemini": "gemini-*"}


class Router:
    def __init__(
        self, settings: Settings, unavailable: set[str], latency: LatencyTracker | None = None
    ) -> None:
        self._models = settings.models
        self._providers = set(settings.providers)
        self._unavailable = unavailable
        # A provider whose API key is not set hands its models to the echo provider, so
        # the gateway answers out of the box; start-up output says so.
        self._stand_in = "echo" if "echo" in settings.providers else None
        self._family_providers = _providers_by_kind(settings)
        # What ``targets`` answered for a model and fallbacks: the same every time, since
        # the catalog and the unavailable providers are fixed for the worker's life.
        self._resolved: dict[tuple[str, tuple[str, ...]], tuple[Target, ...]] = {}
        self._rules = compile_rules(
            settings,
            lambda provider, model: self._target(provider, model, f"{provider}/{model}"),
            latency or LatencyTracker(),
        )

    def route(
        self,
        model: str,
        fallbacks: list[str] | tuple[str, ...] = (),
        *,
        rule: str | None = None,
        prompt_bytes: int = 0,
    ) -> list[Target]:
        """The request's targets: by ``rule`` when one applies, else by ``model``."""
        if rule is None:
            return self.targets(model, fallbacks)
        compiled = self._rules.get(rule)
        if compiled is None:
            raise errors.BadRequest(
                f"routing rule '{rule}' is not configured; ROUTING_RULES defines: "
                f"{', '.join(sorted(self._rules)) or 'none'}",
                param="floopy-routing-rule",
            )
        chain = compiled.order(prompt_bytes) + [self.resolve(name) for name in fallbacks]
        unique: dict[tuple[str, str], Target] = {}
        for target in chain:
            unique.setdefault((target.provider, target.model), target)
        return list(unique.values())

    def targets(self, model: str, fallbacks: list[str] | tuple[str, ...] = ()) -> list[Target]:
        key = (model, tuple(fallbacks))
        known = self._resolved.get(key)
        if known is not None:
            return list(known)
        names = [name.strip() for name in model.split(",") if name.strip()]
        names.extend(fallbacks)
        if not names:
            raise errors.BadRequest("`model` must name a model", param="model")
        targets = [self.resolve(name) for name in dict.fromkeys(names)]
        if len(self._resolved) >= MAX_RESOLVED:
            self._resolved.clear()
        self._resolved[key] = tuple(targets)
        return targets

    def resolve(self, name: str) -> Target:
        entry = self._models.get(name)
        if entry is not None:
            return self._target(entry.provider, entry.upstream_model or name, name)
        provider, sep, upstream = name.partition("/")
        if sep and provider in self._providers and upstream:
            return self._target(provider, upstream, name)
        family_provider = self._family_provider(name)
        if family_provider is not None:
            return self._target(family_provider, name, name)
        raise errors.BadRequest(
            f"model '{name}' is not configured. Configured models: "
            f"{', '.join(sorted(self._models)) or 'none'}; or name one as provider/model "
            f"with a configured provider: {', '.join(sorted(self._providers))}"
            f"{self._families_hint()}",
            param="model",
        )

    def _families_hint(self) -> str:
        served = [
            f"{_FAMILY_NAMES[kind]} (by {self._family_providers[kind]})"
            for _, kind in _FAMILIES
            if kind in self._family_providers
        ]
        return f"; or a model of a served family: {', '.join(served)}" if served else ""

    def _family_provider(self, name: str) -> str | None:
        for pattern, kind in _FAMILIES:
            if pattern.match(name):
                return self._family_providers.get(kind)
        return None

    def _target(self, provider: str, model: str, requested: str) -> Target:
        if provider in self._unavailable and self._stand_in is not None:
            return Target(self._stand_in, requested, requested)
        return Target(provider, model, requested)


def _providers_by_kind(settings: Settings) -> dict[str, str]:
    """The provider serving each kind's model family: the one named after the kind, else
    the first of that kind in PROVIDERS."""
    chosen: dict[str, str] = {}
    for name, config in settings.providers.items():
        if name == config.kind or config.kind not in chosen:
            chosen[config.kind] = name
    return chosen
