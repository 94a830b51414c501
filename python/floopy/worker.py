"""Everything one worker process holds, opened inside the worker (granian forks workers, so
nothing holding a socket or a file is created at import time)."""

from __future__ import annotations

import logging
import time

import aiohttp
import msgspec

from floopy.pipeline.auth import KeyStore
from floopy.pipeline.context import RequestContext
from floopy.pipeline.dispatch import Dispatcher
from floopy.pipeline.parse import Parser
from floopy.pipeline.routing import Router
from floopy.providers import build_providers
from floopy.providers.base import Provider
from floopy.settings import Settings, load_settings
from floopy.upstream import open_session

log = logging.getLogger("floopy")


class Worker:
    """Configured native parsers, keys, router and providers of one worker process."""

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

    @classmethod
    async def start(cls) -> Worker:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
        session = open_session(settings.upstream_pool_size, settings.upstream_connect_timeout)
        return cls(settings, session)

    def finished(self, ctx: RequestContext) -> None:
        """Stage 9, log: called once per request after its response ended, whatever the
        outcome. Must never block or raise."""

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        await self.session.close()


def _models_list(settings: Settings) -> bytes:
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": model.provider}
        for name, model in sorted(settings.models.items())
    ]
    return msgspec.json.encode({"object": "list", "data": data})
