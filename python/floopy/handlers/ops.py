"""``GET /metrics`` (Prometheus text) and ``GET /readyz`` (whether the stores answer: the
log's and the cache's).

Neither touches a store: both read the log store process's status file and the journal
directory, so a scrape or a readiness check stays instant while ClickHouse is slow or down.
Readiness is 200 either way, with ``"status": "degraded"`` while the store process or
ClickHouse is down (rows wait in the journals): the gateway still serves requests then, and a
load balancer should keep sending them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from floopy import errors
from floopy.pipeline import respond

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

    from floopy.context import RequestContext
    from floopy.worker import Worker

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    body = worker.log.metrics_text() if worker.log is not None else b""
    body += worker.cache.metrics_text()
    proto.response_bytes(200, respond.base_headers(ctx, PROMETHEUS_TEXT), body)


async def readyz(worker: Worker, ctx: RequestContext, scope: Scope, proto: HTTPProtocol) -> None:
    """The status for anyone (a load balancer's probe carries no key); the stores' details
    only for a caller with a valid API key."""
    report: dict[str, Any] = (
        worker.log.readiness() if worker.log is not None else {"status": "ready"}
    )
    report["cache"] = cache = worker.cache.readiness()
    if cache["status"] != "up":
        report["status"] = "degraded"  # requests are served, without the cache
    if not _has_valid_key(worker, scope):
        report = {"status": report["status"]}
    respond.send_json(proto, ctx, msgspec.json.encode(report), routed=False)


def _has_valid_key(worker: Worker, scope: Scope) -> bool:
    presented = scope.headers.get("authorization") or scope.headers.get("x-api-key")
    try:
        worker.keys.authenticate(presented)
    except errors.InvalidApiKey:
        return False
    return True
