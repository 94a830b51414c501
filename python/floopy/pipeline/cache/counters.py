"""The cache's counters for ``GET /metrics``: lookups per tier and outcome, answers stored,
and what the store holds. Counted per process, like the rest of ``/metrics``."""

from __future__ import annotations

from collections import Counter

from floopy.pipeline.cache.store import StoreStats

# Outcome -> the counter's name (floopy_cache_<name>_total) and help.
OUTCOMES = {
    "hit": ("hits", "lookups a tier answered"),
    "miss": ("misses", "lookups a tier did not answer"),
    "error": ("errors", "lookups or writes whose store failed or outlasted CACHE_TIMEOUT"),
    "stored": ("stored", "answers a tier stored"),
}


class CacheCounters:
    def __init__(self, tiers: tuple[str, ...]) -> None:
        self.tiers = tiers
        self.counts: dict[str, Counter[str]] = {outcome: Counter() for outcome in OUTCOMES}

    def add(self, outcome: str, tier: str) -> None:
        self.counts[outcome][tier] += 1

    def render(self, store: str, held: StoreStats | None) -> str:
        lines: list[str] = []
        for outcome, (counter, help_text) in OUTCOMES.items():
            name = f"floopy_cache_{counter}_total"
            _family(lines, name, "counter", help_text)
            lines.extend(f'{name}{{tier="{t}"}} {self.counts[outcome][t]}' for t in self.tiers)
        if held is not None:
            _family(lines, "floopy_cache_entries", "gauge", "cached answers held")
            lines.append(f'floopy_cache_entries{{store="{store}"}} {held.entries}')
            _family(lines, "floopy_cache_bytes", "gauge", "bytes of cached answers held")
            lines.append(f'floopy_cache_bytes{{store="{store}"}} {held.bytes}')
        return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
