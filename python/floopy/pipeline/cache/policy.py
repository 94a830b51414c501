"""Whether a request uses the cache, and how: off unless asked.

The settings turn the cache on by default for everyone (``CACHE_ENABLED``), for some API
keys (``CACHE_ENABLED_KEYS``) or projects (``CACHE_ENABLED_PROJECTS``); a request decides
for itself with ``floopy-cache-enabled: true|false``, and ``cache-control: no-store`` or
``no-cache`` turn it off. Only chat completions and ``/v1/messages`` are cached.

TTL: ``CACHE_TTL``, or the request's ``cache-control: max-age=N``, capped at
``CACHE_MAX_TTL``. Buckets: ``floopy-cache-bucket-max-size`` from 1 to 20.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy import errors
from floopy.pipeline.cache.tier import Query

if TYPE_CHECKING:
    from floopy._native import FloopyHeaders
    from floopy.context import RequestContext
    from floopy.pipeline.exchange import Exchange
    from floopy.settings import Settings

MAX_BUCKET_SIZE = 20


class Policy:
    def __init__(self, settings: Settings) -> None:
        self._everyone = settings.cache_enabled
        self._keys = frozenset(settings.cache_enabled_keys)
        self._projects = frozenset(settings.cache_enabled_projects)
        self._ttl = settings.cache_ttl
        self._max_ttl = settings.cache_max_ttl
        self._advanced = settings.cache_advanced_by_default

    @property
    def ever_on(self) -> bool:
        """Whether any request could be cached without asking (for the readiness report)."""
        return self._everyone or bool(self._keys or self._projects)

    def query(self, exchange: Exchange) -> Query | None:
        """The request as the cache sees it, or None when it does not use the cache."""
        ctx, request = exchange.ctx, exchange.parsed()
        headers = ctx.headers
        api = request.cache_api
        if api is None or headers is None or not self._wanted(ctx, headers):
            return None
        size = headers.cache_bucket_max_size
        if size is not None and size > MAX_BUCKET_SIZE:
            raise errors.BadRequest(
                f"floopy-cache-bucket-max-size must be from 1 to {MAX_BUCKET_SIZE}, got {size}",
                param="floopy-cache-bucket-max-size",
            )
        chat = ctx.chat
        return Query(
            api=api,
            body=ctx.body,
            organization=ctx.organization or "",
            project=ctx.project or "",
            routing=f"{headers.model_override or ''}\0{headers.routing_rule or ''}",
            seed=headers.cache_seed,
            ignore_keys=headers.cache_ignore_keys,
            bucket_size=size or 1,
            bucketed=size is not None,
            ttl=self._ttl_of(headers),
            stream=request.stream,
            include_usage=chat.include_usage if chat is not None else False,
            advanced=headers.cache_advanced or self._advanced,
        )

    def _wanted(self, ctx: RequestContext, headers: FloopyHeaders) -> bool:
        if headers.cache_enabled is not None:  # the header, or cache-control no-store
            return headers.cache_enabled
        if self._everyone:
            return True
        key = ctx.key
        return (key is not None and key.id in self._keys) or (ctx.project in self._projects)

    def _ttl_of(self, headers: FloopyHeaders) -> float:
        if headers.cache_max_age is None:
            return float(self._ttl)
        return float(min(headers.cache_max_age, self._max_ttl))
