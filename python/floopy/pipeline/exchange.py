"""What the stages share: one request on its way through the pipeline (``Exchange``), the
endpoint it came in on (``Endpoint``) and what the endpoint parsed (``ProviderRequest``).

The request context (``floopy.context``) holds what the log keeps; the exchange adds what only
lives while the request is served: the RSGI scope and protocol, the worker's parts, the parsed
request, its targets and the answer on its way to the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.context import RequestContext
    from floopy.pipeline.cache import Miss, Query
    from floopy.pipeline.routing import Target
    from floopy.providers.base import Call, EmbeddingCall
    from floopy.providers.operations import Reply
    from floopy.trace import Span
    from floopy.worker import Worker


class ProviderRequest(Protocol):
    """A parsed request, ready to be sent to any target: what the pipeline needs of it."""

    model: str  # the body's model, before floopy-model-override
    user: str | None  # the end user the body names, if any
    stream: bool
    # The API whose answers the cache keeps for this request ("chat", "messages"); None
    # where the cache does not apply (embeddings, responses, token counts).
    cache_api: str | None

    @property
    def prompt(self) -> str | None:
        """The last user turn's text, which the firewall screens; None for a request that
        makes the model say nothing (embeddings, token counts)."""
        ...

    def call(self, target: Target) -> Call | EmbeddingCall:
        """The call to make to ``target``'s provider."""
        ...


class Endpoint(Protocol):
    """A model endpoint (``/v1/chat/completions``, ``/v1/responses``, ``/v1/messages``,
    ``/v1/embeddings``): how its body parses and which error envelope it answers in. The
    stages do the rest."""

    api_format: Literal["openai", "anthropic"]

    def parse(self, exchange: Exchange) -> ProviderRequest:
        """Reads ``exchange.ctx.body`` (and headers it forwards); raises BadRequest."""
        ...


@dataclass(slots=True)
class Exchange:
    worker: Worker
    endpoint: Endpoint
    ctx: RequestContext
    scope: Scope
    proto: HTTPProtocol
    span: Span | None = None  # the running stage's span, set by the runner
    request: ProviderRequest | None = None  # parse
    targets: list[Target] = field(default_factory=list)  # routing
    reply: Reply | None = None  # dispatch, or a stage that answers early (the cache)
    # cache: a missed request and where its answer is stored once complete
    cache_misses: tuple[Query, list[Miss]] | None = None

    def parsed(self) -> ProviderRequest:
        assert self.request is not None, "runs after parse"
        return self.request


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of the pipeline: ``run`` reads and sets the exchange, and may answer early
    by setting ``exchange.reply``; stages marked ``until_answered`` are skipped after that.
    ``run`` returns what it waits on (a coroutine), or None when it had nothing to wait on
    and is done: most requests pass most stages without waiting, and a coroutine per stage
    costs more than the stage's own work. A stage is timed in a span of its own unless
    ``traced`` is off (a stage with nothing to do yet: every span is a row in the log)."""

    name: str
    run: Callable[[Exchange], Awaitable[None] | None]
    until_answered: bool = False
    traced: bool = True
