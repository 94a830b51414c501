"""What a cache tier is (``Tier``), what it is asked (``Query``) and what it answers: a
``Hit``, or a ``Miss`` that knows where the answer goes once the provider gave it.

The exact tier (``exact``) is the first, then the semantic and advanced tiers
(``semantic``), behind the same protocol, looked up in order until one hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from floopy.pipeline.cache.answer import Entry
    from floopy.pipeline.cache.conversation import Conversation


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
    advanced: bool = False  # floopy-cache-advanced (or CACHE_ADVANCED_BY_DEFAULT)
    # The semantic and advanced tiers' view, split by the first that asks; False: neither
    # takes the request.
    conversation: Conversation | Literal[False] | None = None


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

    def applies(self, query: Query) -> bool:
        """Whether the tier takes this request at all (it is neither asked nor counted
        otherwise)."""
        ...

    async def lookup(self, query: Query) -> Hit | Miss:
        """Raises on a store failure; the caller counts it and goes on without the tier."""
        ...
