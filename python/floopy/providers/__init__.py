"""Providers: one module per wire format, behind the protocol in ``base``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.providers.base import Provider
from floopy.providers.echo import EchoProvider
from floopy.providers.openai import OpenAIProvider

if TYPE_CHECKING:
    import aiohttp

    from floopy.settings import Settings

OPENAI_WIRE = ("openai", "openai_compatible")


def build_providers(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Provider]:
    """One provider object per configured provider, sharing the worker's connection pool."""
    built: dict[str, Provider] = {}
    for name, config in settings.providers.items():
        if config.kind == "echo":
            built[name] = EchoProvider(name)
        elif config.kind in OPENAI_WIRE:
            built[name] = OpenAIProvider(
                name,
                config.kind,
                base_url=config.base_url,
                api_key=config.api_key(),
                extra_headers=dict(config.headers),
                session=session,
                first_byte_timeout=config.first_byte_timeout
                or settings.upstream_first_byte_timeout,
                total_timeout=config.total_timeout or settings.upstream_total_timeout,
            )
        else:
            raise ValueError(f"PROVIDERS['{name}']: kind '{config.kind}' is not supported yet")
    return built
