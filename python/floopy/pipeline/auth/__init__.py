"""Stage: auth. The floopy-* headers, the gateway API key (``keystore``) and the request's
project (``projects``), checked against the key's organization.

Reads the scope's headers; sets ``ctx.headers``, ``ctx.key``, ``ctx.organization`` and
``ctx.project``. Answers early with 400 for a malformed floopy-* header, 401 for a missing or
unknown key, 403 for a project outside the key's organization.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.pipeline.auth.keystore import DevKey, KeyStore, dev_key_entry, ensure_dev_key
from floopy.pipeline.auth.projects import Projects

if TYPE_CHECKING:
    from granian.rsgi import Scope

    from floopy.context import RequestContext
    from floopy.pipeline.exchange import Exchange
    from floopy.worker import Worker

__all__ = ["DevKey", "KeyStore", "Projects", "authenticate", "dev_key_entry", "ensure_dev_key"]


def run(exchange: Exchange) -> None:
    authenticate(exchange.worker, exchange.ctx, exchange.scope)


def authenticate(worker: Worker, ctx: RequestContext, scope: Scope) -> None:
    """Also for the endpoints outside the pipeline that need a key (``GET /v1/models``)."""
    ctx.headers = headers = worker.parser.headers(scope.headers)
    ctx.key = key = worker.keys.authenticate(headers.api_key)
    ctx.organization = key.organization
    ctx.project = worker.projects.resolve(key, headers.project_id)
