"""The typed form of ``FIREWALL``: whether and how prompts are screened (DESIGN section 6).

Kept apart from ``schema.py`` like the other nested settings; defaults come from
``defaults.py``. Cross-setting checks (``model`` names a catalog model) are in ``schema.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from floopy.settings import defaults

Mode = Literal["block", "flag", "off"]
Backend = Literal["llm", "local"]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
Ratio = Annotated[float, msgspec.Meta(gt=0, le=1)]

_FIREWALL = defaults.FIREWALL


class FirewallConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    mode: Mode = _FIREWALL["mode"]  # for every request, unless a key or project says more
    projects: dict[str, Mode] = {}  # project -> mode (over `mode`)
    keys: dict[str, Mode] = {}  # API key id -> mode (over its project's)
    client_may_disable: bool = _FIREWALL["client_may_disable"]  # honour the header's false
    client_may_enable: bool = _FIREWALL["client_may_enable"]  # honour its true on an "off"
    backend: Backend = _FIREWALL["backend"]
    model: str | None = _FIREWALL["model"]  # llm backend: a MODELS entry (Llama Guard)
    fail: Literal["open", "closed"] = _FIREWALL["fail"]
    timeout: Positive = _FIREWALL["timeout"]  # seconds for the verdict of one request
    threshold: Ratio = _FIREWALL["threshold"]  # local backend: the score that is unsafe
    verdict_cache: bool = _FIREWALL["verdict_cache"]
    verdict_cache_similarity: Ratio = _FIREWALL["verdict_cache_similarity"]
    verdict_cache_ttl: Positive = _FIREWALL["verdict_cache_ttl"]  # seconds
    verdict_cache_shared: bool = _FIREWALL["verdict_cache_shared"]  # across organizations
    tool_results: bool = _FIREWALL["tool_results"]  # screen the turn's tool results too
    window_chars: Count = _FIREWALL["window_chars"]  # llm backend; local: its model's length
    max_windows: Count = _FIREWALL["max_windows"]

    def __post_init__(self) -> None:
        if self.backend == "llm" and not self.model:
            raise ValueError(
                "model is required for backend 'llm': name the MODELS entry of the safety "
                "model (such as a Llama Guard served by a configured provider)"
            )

    def mode_for(self, key_id: str | None, project: str | None) -> Mode:
        """The key's mode, else its project's, else the default."""
        if key_id is not None and key_id in self.keys:
            return self.keys[key_id]
        if project is not None and project in self.projects:
            return self.projects[project]
        return self.mode

    @property
    def screens_by_policy(self) -> bool:
        """Whether some key, project or the default screens without being asked."""
        return {self.mode, *self.projects.values(), *self.keys.values()} != {"off"}

    @property
    def can_screen(self) -> bool:
        """Whether any request may be screened: a mode other than off somewhere, or a client
        allowed to turn screening on."""
        return self.screens_by_policy or self.client_may_enable
