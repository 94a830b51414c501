"""The stages every model endpoint runs between auth and dispatch, in this order:

auth        the floopy-* headers, the API key, and the request's project, checked against
            the key's organization
rate limit  (after parse, which knows the body's ``user``) the RATE_LIMITS budgets
routing     a routing rule (``floopy-routing-rule``, else the key's rule) or the model name

and, once the response is complete, the tokens it used go to the token budgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.pipeline.ratelimit import Subjects

if TYPE_CHECKING:
    from granian.rsgi import Scope

    from floopy.pipeline.context import RequestContext
    from floopy.pipeline.routing import Target
    from floopy.worker import Worker


def authenticate(worker: Worker, ctx: RequestContext, scope: Scope) -> None:
    """Sets the headers, key, organization and project. Raises for a malformed floopy-*
    header (400), a missing or unknown key (401), a project outside the key's organization
    (403)."""
    ctx.headers = headers = worker.parser.headers(scope.headers)
    ctx.key = key = worker.keys.authenticate(headers.api_key)
    ctx.organization = key.organization
    ctx.project = worker.projects.resolve(key, headers.project_id)


async def rate_limit(worker: Worker, ctx: RequestContext, body_user: str | None) -> None:
    """Counts the request against its budgets; raises RateLimitExceeded when one is spent."""
    assert ctx.headers is not None, "runs after auth"
    ctx.user_id = ctx.headers.user_id or body_user
    if worker.limiter.enabled:
        ctx.rate_limit_headers = await worker.limiter.admit(_subjects(ctx), ctx.request_id)


def route(worker: Worker, ctx: RequestContext, body_model: str) -> list[Target]:
    """The request's targets. Precedence: the ``floopy-routing-rule`` header, then the key's
    routing rule, then the model name (``floopy-model-override``, else the body's)."""
    assert ctx.headers is not None and ctx.key is not None, "runs after auth"
    headers = ctx.headers
    ctx.requested_model = headers.model_override or body_model
    ctx.routing_rule = headers.routing_rule or ctx.key.routing_rule
    return worker.router.route(
        ctx.requested_model,
        headers.fallbacks,
        rule=ctx.routing_rule,
        prompt_bytes=len(ctx.body),
    )


async def spend_tokens(worker: Worker, ctx: RequestContext) -> None:
    """Counts the finished request's prompt and completion tokens against its budgets."""
    if worker.limiter.enabled and ctx.usage is not None:
        tokens = ctx.usage.prompt_tokens + ctx.usage.completion_tokens
        await worker.limiter.spend_tokens(_subjects(ctx), tokens, ctx.request_id)


def _subjects(ctx: RequestContext) -> Subjects:
    return Subjects(
        key=ctx.key.id if ctx.key is not None else None,
        organization=ctx.organization,
        project=ctx.project,
        user=ctx.user_id,
    )
