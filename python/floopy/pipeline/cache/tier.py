"""What a cache tier is (``Tier``), what it is asked (``Query``) and what it answers: a
``Hit``, or a ``Miss`` that knows where the answer goes once the provider gave it.

The exact tier (``exact``) is the first; the semantic and advanced tiers plug in behind the
same protocol, looked up in order until one hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from floopy.pipeline.cache.answer import Entry


@dataclass(slots=True)
class Query:
    """One request as the cache sees it, scoped to its tenant. Not frozen: built for every
    request that uses the cache, and a frozen dataclass costs several times more to build;
    nothing changes it after ``policy`` built it."""

    api: str  # "chat" or "messages": also the format of the answers stored
    body: bytes
    organization: str
    project: str
    # What else changes the answer for the same body: floopy-model-override and
    # floopy-routing-rule, each tier scopes its keys with it too.
    routing: str
    seed: str | None
    ignore_keys: list[str]
    bucket_size: int  # answers a key keeps; a hit needs this many (1 without buckets)
    bucketed: bool  # floopy-cache-bucket-max-size was given: the hit names its index
    ttl: float  # seconds a stored answer lives; 0: nothing is stored
    stream: bool
    include_usage: bool


@dataclass(slots=True)
class Hit:
    tier: str
    entry: Entry
    similarity: float | None = None  # semantic and advanced tiers only
    bucket_index: int | None = None  # with buckets: which answer of the key


class Miss(Protocol):
    """Where an answer to a missed request is stored, by the tier that missed."""

    tier: str

    async def store(self, answer: bytes) -> bool: ...


class Tier(Protocol):
    name: str

    async def lookup(self, query: Query) -> Hit | Miss:
        """Raises on a store failure; the caller counts it and goes on without the tier."""
        ...
