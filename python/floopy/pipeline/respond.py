"""Stage: respond. Status, headers and body, or the SSE stream relayed as it arrives; also
how every answer of the gateway is written, errors included (``send_error``).

Reads the reply; sets ``ctx.usage``, ``ctx.finish_reason``, ``ctx.cost_usd``,
``ctx.response_body`` (a whole answer, or a stream's content), ``ctx.ttft_ms`` and, for a
stream cut short or a client gone, ``ctx.status`` and ``ctx.error_code``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from floopy import errors
from floopy.pipeline.backpressure import ClientStalled, StreamPace
from floopy.providers.base import Completion, DirectStream
from floopy.providers.operations import Whole
from floopy.trace import traceparent

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from granian._granian import RSGIHTTPProtocol as HTTPProtocol

    from floopy.context import RequestContext
    from floopy.pipeline.exchange import Exchange
    from floopy.providers.base import Stream

log = logging.getLogger("floopy")

JSON = "application/json"
SSE = "text/event-stream"
Headers = list[tuple[str, str]]


def run(exchange: Exchange) -> Awaitable[None] | None:
    """A whole answer is sent at once (nothing to wait on); a stream is relayed."""
    ctx, reply, span = exchange.ctx, exchange.reply, exchange.span
    assert reply is not None, "runs after dispatch"
    if not isinstance(reply, Whole):
        return _stream(exchange, reply)
    if span is not None:
        span.attributes["stream"] = False
    ctx.usage = reply.usage
    if isinstance(reply, Completion):  # embeddings' vectors are not logged
        ctx.finish_reason, ctx.response_body = reply.finish_reason, reply.body
    ctx.cost_usd = _cost(exchange)
    # The row reaches the journal before the answer leaves: a worker killed the moment
    # after its client got an answer has logged it. Building the row ends the spans.
    if span is not None:
        ctx.end_span(span)
    exchange.worker.finished(ctx)
    send_json(exchange.proto, ctx, reply.body, routed=True)
    return None


async def _stream(exchange: Exchange, reply: Stream) -> None:
    ctx, span = exchange.ctx, exchange.span
    if span is not None:
        span.set(stream=True)
    settings = exchange.worker.settings
    pace = StreamPace(
        settings.stream_buffer_bytes,
        settings.stream_stall_timeout,
        exchange.scope.client,
        exchange.scope.server,
    )
    await relay(exchange.proto, ctx, reply, pace)
    ctx.response_body = reply.summary.content.encode()
    if span is not None and reply.summary.truncated:
        span.set(content_truncated=True)  # the logged content is the start of a longer one
    ctx.cost_usd = _cost(exchange)


def _cost(exchange: Exchange) -> float | None:
    """From the usage and the catalog's prices; nothing for an answer from the cache."""
    ctx = exchange.ctx
    if ctx.cache_tier is not None:
        return 0.0
    return exchange.worker.prices.cost(ctx.provider, ctx.model, ctx.usage)


def base_headers(ctx: RequestContext, content_type: str) -> Headers:
    headers = [
        ("content-type", content_type),
        ("x-request-id", ctx.request_id),
        ("traceparent", traceparent(ctx.trace_id, ctx.trace.root_id)),
    ]
    headers.extend(ctx.rate_limit_headers.items())  # RateLimit-*, once the request was counted
    return headers


def routing_headers(ctx: RequestContext, content_type: str) -> Headers:
    """Which target really answered: what the client needs to trust a fallback. The base
    headers, then the routing ones, in one list: this runs for every answer."""
    headers = [
        ("content-type", content_type),
        ("x-request-id", ctx.request_id),
        ("traceparent", traceparent(ctx.trace_id, ctx.trace.root_id)),
        *ctx.rate_limit_headers.items(),  # RateLimit-*, once the request was counted
        ("floopy-provider", ctx.provider or ""),
        ("floopy-model", ctx.model or ""),
        ("floopy-fallback-used", "true" if ctx.fallback_used else "false"),
    ]
    if ctx.cost_usd is not None:  # known before the body only for whole answers, not streams
        headers.append(("floopy-cost", f"{ctx.cost_usd:.10f}"))
    if ctx.cache_status is not None:
        _cache_headers(ctx, headers)
    return headers


def _cache_headers(ctx: RequestContext, headers: Headers) -> None:
    tier = ctx.cache_tier
    headers.append(("floopy-cache", f"HIT; tier={tier}" if tier else "MISS"))
    if ctx.cache_similarity is not None:
        headers.append(("floopy-cache-similarity", f"{ctx.cache_similarity:.4f}"))
    if ctx.cache_bucket_index is not None:
        headers.append(("floopy-cache-bucket-idx", str(ctx.cache_bucket_index)))


def send_json(proto: HTTPProtocol, ctx: RequestContext, body: bytes, *, routed: bool) -> None:
    headers = routing_headers(ctx, JSON) if routed else base_headers(ctx, JSON)
    proto.response_bytes(200, headers, body)


def send_error(
    proto: HTTPProtocol,
    ctx: RequestContext,
    exc: errors.FloopyError,
    *,
    routed: bool = False,
    write_row: Callable[[RequestContext], None] | None = None,
) -> None:
    """The error in the client's envelope; ``routed`` (a model endpoint) adds the routing
    headers, naming the last target tried (empty when none was chosen). ``write_row`` (the
    worker's) writes the row before the answer leaves, as for a whole answer."""
    ctx.status, ctx.error_code = exc.status, exc.code
    if write_row is not None:
        write_row(ctx)
    if isinstance(exc, errors.ClientDisconnected):
        return  # nobody is left to read it: the log has it
    headers = routing_headers(ctx, JSON) if routed else base_headers(ctx, JSON)
    headers.extend(exc.headers.items())
    if exc.status < 500 and exc.status != 429:
        headers.append(("x-should-retry", "false"))  # the OpenAI SDKs honour this hint
    body = exc.anthropic_body() if ctx.api_format == "anthropic" else exc.body()
    proto.response_bytes(exc.status, headers, body)


async def relay(
    proto: HTTPProtocol, ctx: RequestContext, stream: Stream, pace: StreamPace | None = None
) -> None:
    """Sends headers and the first event, then each upstream piece as it arrives, no further
    ahead of the client than ``pace`` allows (the provider is not read meanwhile). A client
    that goes away, or receives nothing for the stall timeout, cancels the relay, and closing
    the stream ends the upstream call."""
    headers = routing_headers(ctx, SSE)
    headers.append(("cache-control", "no-cache"))
    transport = proto.response_stream(200, headers)
    pump = asyncio.ensure_future(_pump(transport, stream, pace))
    gone = asyncio.ensure_future(proto.client_disconnect())
    try:
        await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not pump.done():
            pump.cancel()
            ctx.status, ctx.error_code = 499, "CLIENT_DISCONNECTED"
        await stream.close()
        if pace is not None:
            pace.close()
    if pump.done() and not pump.cancelled() and pump.exception() is not None:
        _relay_failed(ctx, pump.exception(), pace)
    summary = stream.summary
    ctx.usage, ctx.finish_reason, ctx.ttft_ms = (
        summary.usage,
        summary.finish_reason,
        summary.ttft_ms,
    )
    if summary.error is not None and ctx.error_code is None:
        # Cut short by the gateway (504 when a time limit ran out), else by the provider.
        failure = summary.failure or errors.ProviderError(summary.error)
        ctx.status, ctx.error_code = failure.status, failure.code


def _relay_failed(ctx: RequestContext, exc: BaseException | None, pace: StreamPace | None) -> None:
    """The client went away under the relay (the server refused the bytes), or stalled."""
    if isinstance(exc, ClientStalled):
        log.info("stream client received nothing in time, dropped (%s)", ctx.request_id)
    else:
        log.warning("stream relay failed (%s): %s", ctx.request_id, exc)
    ctx.status, ctx.error_code = 499, "CLIENT_DISCONNECTED"


async def _pump(transport: Any, stream: Stream, pace: StreamPace | None) -> None:
    """Each piece to the server, then, past the buffer, a wait for the client to catch up
    before the next is read; a stalled client has its connection closed. A stream that can
    write itself (``DirectStream``) does, until it ended or sent what the buffer lets go
    without watching the client; the event loop paces the rest."""
    try:
        await _send(transport, stream.first, pace)
        budget = _UNPACED if pace is None else pace.room
        if budget > 0 and isinstance(stream, DirectStream):
            sent = await stream.relay_to(transport, budget)
            if pace is not None and sent:
                await pace.sent(sent)
        async for piece in stream:
            await _send(transport, piece, pace)
    except ClientStalled:
        assert pace is not None
        pace.drop()
        raise


# What a stream with no pace may send by itself: all of it.
_UNPACED = 2**62


async def _send(transport: Any, piece: bytes, pace: StreamPace | None) -> None:
    await transport.send_bytes(piece)
    if pace is not None:
        await pace.sent(len(piece))
