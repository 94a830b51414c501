"""The gateway as an RSGI application, served by granian: ``floopy.app:app``.

One ``Gateway`` per worker process. ``__rsgi_init__`` opens the worker's stores and upstream
connection pool inside the worker; ``__rsgi__`` finds the route of a request: a model
endpoint runs the pipeline (``floopy.pipeline``, where the stage order is written), anything
else its handler. Any ``FloopyError`` becomes the error envelope, and every finished request
goes to the log, whatever its outcome.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from floopy import errors, pipeline
from floopy.context import RequestContext
from floopy.endpoints import chat, embeddings, messages, responses
from floopy.handlers.meta import healthz, model, models
from floopy.handlers.ops import metrics, readyz
from floopy.ids import hex32
from floopy.pipeline import respond
from floopy.trace import parse_traceparent
from floopy.worker import Worker

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

log = logging.getLogger("floopy")

Handler = Callable[[Worker, RequestContext, "Scope", "HTTPProtocol"], Awaitable[None]]


def _through_pipeline(endpoint: pipeline.Endpoint) -> Handler:
    return functools.partial(pipeline.serve, endpoint)


# path -> (method, handler). Paths are matched without a trailing slash.
ROUTES: dict[str, tuple[str, Handler]] = {
    "/v1/chat/completions": ("POST", _through_pipeline(chat.ENDPOINT)),
    "/v1/responses": ("POST", _through_pipeline(responses.ENDPOINT)),
    "/v1/embeddings": ("POST", _through_pipeline(embeddings.ENDPOINT)),
    "/v1/messages": ("POST", _through_pipeline(messages.ENDPOINT)),
    "/v1/messages/count_tokens": ("POST", _through_pipeline(messages.COUNT_TOKENS)),
    "/v1/models": ("GET", models),
    "/healthz": ("GET", healthz),
    "/readyz": ("GET", readyz),
    "/metrics": ("GET", metrics),
}
# prefix -> (method, handler), for paths that carry an id after the prefix; tried after
# ROUTES, in order.
PREFIX_ROUTES: tuple[tuple[str, str, Handler], ...] = (("/v1/models/", "GET", model),)
# Paths whose clients speak Anthropic's API: every error there, 404 and 405 included, takes
# Anthropic's envelope, so the anthropic SDKs raise their own classes.
ANTHROPIC_PATHS = ("/v1/messages",)
_UNDER_ANTHROPIC_PATHS = tuple(p + "/" for p in ANTHROPIC_PATHS)


def new_request_id() -> str:
    """``req_`` and 128 random bits in hex: the shape of a uuid4's hex (``floopy.ids``)."""
    return "req_" + hex32()


class Gateway:
    def __init__(self) -> None:
        self.worker: Worker | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.worker = loop.run_until_complete(Worker.start())
        settle_collector()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.worker is not None:
            loop.run_until_complete(self.worker.close())

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        worker = self.worker
        if worker is None:  # served without __rsgi_init__ (an embedding harness)
            worker = self.worker = await Worker.start()
        ctx = RequestContext(
            request_id=new_request_id(),
            method=scope.method,
            path=scope.path,
            client_ip=scope.client,
            api_format=api_format(scope),
        )
        caller = parse_traceparent(scope.headers.get("traceparent"))
        if caller is not None:
            ctx.trace_id, ctx.parent_span_id = caller
        try:
            handler = _handler(scope)
            await handler(worker, ctx, scope, proto)
        except errors.FloopyError as exc:
            respond.send_error(proto, ctx, exc, write_row=worker.finished)
        except Exception:
            log.exception("unhandled error on %s %s (%s)", ctx.method, ctx.path, ctx.request_id)
            internal = errors.InternalError("internal error; see the log")
            respond.send_error(proto, ctx, internal, write_row=worker.finished)
        finally:
            worker.finished(ctx)


# Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNGEST = 10_000


def settle_collector() -> None:
    """Sets the cyclic garbage collector for serving, once the worker has started.

    1. Collect, then freeze: what start-up built (modules, settings, price tables, routes)
       lives as long as the worker, and frozen it is never walked again by a collection.
    2. Collect the youngest generation every ``GC_YOUNGEST`` allocations, not 700: a request
       allocates a few hundred objects and nearly all of them are freed by their reference
       counts, but each collection walks every live object of the requests in flight; at
       700 the collector took about 9 % of the event loop under load (``perf``), and
       logging off served 14 % fewer requests a second (benches/RESULTS.md). Cycles still
       go, a little later.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNGEST, older, oldest)


def api_format(scope: Scope) -> str:
    """The API the client speaks, known before any handler runs: Anthropic's under
    ``/v1/messages``, and on the model catalog for a client sending ``anthropic-version``
    (the anthropic SDKs always do); OpenAI's everywhere else."""
    path = scope.path
    if path in ANTHROPIC_PATHS or path.startswith(_UNDER_ANTHROPIC_PATHS):
        return "anthropic"
    if path.startswith("/v1/models") and scope.headers.get("anthropic-version") is not None:
        return "anthropic"
    return "openai"


def _handler(scope: Scope) -> Handler:
    path = scope.path.rstrip("/") or "/"
    route = ROUTES.get(path) or _by_prefix(path)
    if route is None:
        raise errors.NotFound(f"no route for {scope.method} {scope.path}")
    method, handler = route
    if scope.method != method:
        raise errors.MethodNotAllowed(
            f"{scope.method} is not allowed on {scope.path}; use {method}",
            headers={"Allow": method},
        )
    return handler


def _by_prefix(path: str) -> tuple[str, Handler] | None:
    for prefix, method, handler in PREFIX_ROUTES:
        if path.startswith(prefix) and len(path) > len(prefix):
            return method, handler
    return None


app = Gateway()
