"""The gateway as an RSGI application, served by granian.

One ``Gateway`` object per worker process. Its stores and the upstream connection pool are
opened in ``__rsgi_init__``, inside the worker (granian forks workers: nothing that holds a
socket or a file may be created at import time).

The chat-completions pipeline, in order (DESIGN section 1); each stage may answer early:

    parse headers      native HeaderExtractor   sets ctx.headers       400 on a bad header
    auth               KeyStore                 sets ctx.key           401
    read + parse body  native RequestParser     sets ctx.body, .chat   413, 400
    routing            Router                   targets                400 unknown model
    dispatch           Dispatcher + providers   sets ctx.provider...   502, 504, 429
    respond            whole body, or the stream relayed as it arrives
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from floopy import errors
from floopy.pipeline.auth import KeyStore
from floopy.pipeline.context import RequestContext
from floopy.pipeline.dispatch import Dispatcher
from floopy.pipeline.parse import Parser, payload_too_large
from floopy.pipeline.routing import Router
from floopy.providers import build_providers
from floopy.settings import Settings, load_settings
from floopy.upstream import open_session

if TYPE_CHECKING:
    import aiohttp
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.providers.base import Completion, Provider, Stream

log = logging.getLogger("floopy")

JSON = "application/json"
Headers = list[tuple[str, str]]


class Worker:
    """Everything one worker process holds: configured native parsers, keys, providers."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.parser = Parser(
            max_body_bytes=settings.max_body_bytes,
            max_depth=settings.max_json_depth,
            max_header_value=settings.max_header_value_bytes,
            max_properties=settings.max_properties,
        )
        self.keys = KeyStore.from_settings(settings)
        self.providers: dict[str, Provider] = build_providers(settings, session)
        self.router = Router(settings, set(settings.unavailable_providers()))
        self.dispatcher = Dispatcher(self.providers)
        self.models_body = _models_list(settings)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        await self.session.close()


class Gateway:
    def __init__(self) -> None:
        self.worker: Worker | None = None

    # --- RSGI lifecycle -------------------------------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.worker = loop.run_until_complete(self._start())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.worker is not None:
            loop.run_until_complete(self.worker.close())

    async def _start(self) -> Worker:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
        session = open_session(settings.upstream_pool_size, settings.upstream_connect_timeout)
        return Worker(settings, session)

    # --- requests -------------------------------------------------------------------------

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        worker = self.worker
        if worker is None:  # served without __rsgi_init__ (e.g. an embedding test harness)
            worker = self.worker = await self._start()
        ctx = RequestContext(
            request_id=f"req_{uuid.uuid4().hex}",
            method=scope.method,
            path=scope.path,
            client_ip=scope.client,
        )
        try:
            await self._route(worker, ctx, scope, proto)
        except errors.FloopyError as exc:
            _send_error(proto, ctx, exc)
        except Exception:
            log.exception("unhandled error on %s %s (%s)", ctx.method, ctx.path, ctx.request_id)
            _send_error(proto, ctx, errors.InternalError("internal error; see the gateway log"))

    async def _route(
        self, worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol
    ) -> None:
        path = scope.path.rstrip("/") or "/"
        if path == "/v1/chat/completions":
            _require(scope, "POST")
            await self._chat_completions(worker, ctx, scope, proto)
        elif path == "/v1/models":
            _require(scope, "GET")
            worker.keys.authenticate(worker.parser.headers(scope.headers.items()).api_key)
            proto.response_bytes(200, _headers(ctx, JSON), worker.models_body)
        elif path == "/healthz":
            proto.response_bytes(200, _headers(ctx, JSON), b'{"status":"ok"}')
        else:
            raise errors.NotFound(f"no route for {scope.method} {scope.path}")

    async def _chat_completions(
        self, worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol
    ) -> None:
        t = ctx.started
        ctx.headers = headers = worker.parser.headers(scope.headers.items())
        ctx.key = worker.keys.authenticate(headers.api_key)
        t = ctx.mark("auth", t)
        ctx.body = await _read_body(scope, proto, worker.parser)
        ctx.chat = chat = worker.parser.chat(ctx.body)
        t = ctx.mark("parse", t)
        ctx.requested_model = headers.model_override or chat.model
        targets = worker.router.targets(ctx.requested_model, headers.fallbacks)
        t = ctx.mark("routing", t)
        if chat.stream:
            stream = await worker.dispatcher.stream(ctx, targets)
            ctx.mark("first_event", t)
            await _relay(proto, ctx, stream)
        else:
            completion = await worker.dispatcher.complete(ctx, targets)
            ctx.mark("upstream", t)
            _send_completion(proto, ctx, completion)


app = Gateway()


# --- helpers ------------------------------------------------------------------------------


def _require(scope: Scope, method: str) -> None:
    if scope.method != method:
        raise errors.MethodNotAllowed(
            f"{scope.method} is not allowed on {scope.path}; use {method}",
            headers={"Allow": method},
        )


async def _read_body(scope: Scope, proto: HTTPProtocol, parser: Parser) -> bytes:
    declared = scope.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise errors.BadRequest("Content-Length is not a number") from None
        parser.check_length(size)
        return await proto()
    # No declared length (chunked): stop reading as soon as the limit is passed.
    parts: list[bytes] = []
    received = 0
    async for part in proto:
        received += len(part)
        if received > parser.max_body_bytes:
            raise payload_too_large(received, parser.max_body_bytes)
        parts.append(part)
    return b"".join(parts)


def _headers(ctx: RequestContext, content_type: str) -> Headers:
    return [("content-type", content_type), ("x-request-id", ctx.request_id)]


def _routing_headers(ctx: RequestContext, content_type: str) -> Headers:
    headers = _headers(ctx, content_type)
    headers.append(("floopy-provider", ctx.provider or ""))
    headers.append(("floopy-model", ctx.model or ""))
    headers.append(("floopy-fallback-used", "true" if ctx.fallback_used else "false"))
    return headers


def _send_completion(proto: HTTPProtocol, ctx: RequestContext, completion: Completion) -> None:
    ctx.usage, ctx.finish_reason = completion.usage, completion.finish_reason
    proto.response_bytes(200, _routing_headers(ctx, JSON), completion.body)


def _send_error(proto: HTTPProtocol, ctx: RequestContext, exc: errors.FloopyError) -> None:
    ctx.status, ctx.error_code = exc.status, exc.code
    headers = _headers(ctx, JSON)
    headers.extend(exc.headers.items())
    if exc.status < 500 and exc.status != 429:
        headers.append(("x-should-retry", "false"))  # the openai SDKs honour this hint
    proto.response_bytes(exc.status, headers, exc.body())


async def _relay(proto: HTTPProtocol, ctx: RequestContext, stream: Stream) -> None:
    """Sends headers and the first event, then each upstream piece as it arrives. A client
    that goes away cancels the relay, which closes the upstream connection."""
    headers = _routing_headers(ctx, "text/event-stream")
    headers.append(("cache-control", "no-cache"))
    transport = proto.response_stream(200, headers)
    relay = asyncio.ensure_future(_pump(transport, stream))
    gone = asyncio.ensure_future(proto.client_disconnect())
    try:
        await asyncio.wait((relay, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not relay.done():
            relay.cancel()
            ctx.status, ctx.error_code = 499, "CLIENT_DISCONNECTED"
        await stream.close()
    if relay.done() and not relay.cancelled() and relay.exception() is not None:
        log.warning("stream relay failed (%s): %s", ctx.request_id, relay.exception())
    summary = stream.summary
    ctx.usage, ctx.finish_reason, ctx.ttft_ms = (
        summary.usage,
        summary.finish_reason,
        summary.ttft_ms,
    )
    if summary.error is not None and ctx.error_code is None:
        ctx.status, ctx.error_code = 502, "PROVIDER_ERROR"


async def _pump(transport: Any, stream: Stream) -> None:
    await transport.send_bytes(stream.first)
    async for piece in stream:
        await transport.send_bytes(piece)


def _models_list(settings: Settings) -> bytes:
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": model.provider}
        for name, model in sorted(settings.models.items())
    ]
    return msgspec.json.encode({"object": "list", "data": data})
