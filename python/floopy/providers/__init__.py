"""Providers: one module per wire format, behind the protocol in ``base``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from floopy.providers.anthropic import AnthropicProvider
from floopy.providers.base import Provider
from floopy.providers.echo import EchoProvider
from floopy.providers.gemini import GeminiProvider
from floopy.providers.openai import AzureOpenAIProvider, OpenAIProvider

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
        elif config.kind == "anthropic":
            built[name] = _anthropic(name, settings, session)
        elif config.kind == "gemini":
            built[name] = _gemini(name, settings, session)
        elif config.kind == "azure":
            built[name] = _azure(name, settings, session)
        else:
            raise ValueError(f"PROVIDERS['{name}']: kind '{config.kind}' is not supported yet")
    return built


def _anthropic(name: str, settings: Settings, session: aiohttp.ClientSession) -> Provider:
    config = settings.providers[name]
    # Anthropic requires max_tokens: each model's catalog limit, by the name the provider
    # knows it by, is the default when the client sets none.
    max_output_tokens = {
        model.upstream_model or model_name: model.max_output_tokens
        for model_name, model in settings.models.items()
        if model.provider == name and model.max_output_tokens is not None
    }
    return AnthropicProvider(
        name,
        base_url=config.base_url,
        api_key=config.api_key(),
        extra_headers=dict(config.headers),
        session=session,
        first_byte_timeout=config.first_byte_timeout or settings.upstream_first_byte_timeout,
        total_timeout=config.total_timeout or settings.upstream_total_timeout,
        max_output_tokens=max_output_tokens,
        default_max_tokens=settings.default_max_tokens,
    )


def _gemini(name: str, settings: Settings, session: aiohttp.ClientSession) -> Provider:
    config = settings.providers[name]
    return GeminiProvider(
        name,
        base_url=config.base_url,
        api_key=config.api_key(),
        extra_headers=dict(config.headers),
        session=session,
        first_byte_timeout=config.first_byte_timeout or settings.upstream_first_byte_timeout,
        total_timeout=config.total_timeout or settings.upstream_total_timeout,
    )


def _azure(name: str, settings: Settings, session: aiohttp.ClientSession) -> Provider:
    config = settings.providers[name]
    assert config.api_version is not None, "validated by ProviderConfig"
    return AzureOpenAIProvider(
        name,
        base_url=config.base_url,
        api_key=config.api_key(),
        api_version=config.api_version,
        deployments=dict(config.deployments),
        extra_headers=dict(config.headers),
        session=session,
        first_byte_timeout=config.first_byte_timeout or settings.upstream_first_byte_timeout,
        total_timeout=config.total_timeout or settings.upstream_total_timeout,
    )
