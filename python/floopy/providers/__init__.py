"""Providers: one module per wire format, behind the capability protocols in ``base``;
``FACTORIES`` builds each configured provider by its kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from floopy.providers.anthropic import AnthropicProvider
from floopy.providers.base import Provider
from floopy.providers.echo import EchoProvider
from floopy.providers.gemini import GeminiProvider
from floopy.providers.http import Timeouts
from floopy.providers.openai import AzureOpenAIProvider, OpenAIProvider

if TYPE_CHECKING:
    from floopy.settings import ProviderConfig, Settings
    from floopy.upstream import Upstream


def timeouts_of(config: ProviderConfig, settings: Settings) -> Timeouts:
    """A provider's own time limits, each falling back to the global ``UPSTREAM_*`` one."""
    return Timeouts(
        connect=config.connect_timeout or settings.upstream_connect_timeout,
        first_byte=config.first_byte_timeout or settings.upstream_first_byte_timeout,
        total=config.total_timeout or settings.upstream_total_timeout,
    )


def build_providers(settings: Settings, upstream: Upstream) -> dict[str, Provider]:
    """One provider object per configured provider, sharing the worker's upstream client."""
    built: dict[str, Provider] = {}
    for name, config in settings.providers.items():
        factory = FACTORIES.get(config.kind)
        if factory is None:
            raise ValueError(f"PROVIDERS['{name}']: kind '{config.kind}' is not supported yet")
        built[name] = factory(name, settings, upstream)
    return built


def _echo(name: str, settings: Settings, upstream: Upstream) -> Provider:
    return EchoProvider(name)


class Wire(TypedDict):
    """What every HTTP provider is built from: where it is, its key, headers and limits."""

    base_url: str
    api_key: str | None
    extra_headers: dict[str, str]
    upstream: Upstream
    timeouts: Timeouts
    content_limit: int  # of a stream's text, kept for the log


def wire_of(name: str, settings: Settings, upstream: Upstream) -> Wire:
    config = settings.providers[name]
    return Wire(
        base_url=config.base_url,
        api_key=config.api_key(),
        extra_headers=dict(config.headers),
        upstream=upstream,
        timeouts=timeouts_of(config, settings),
        content_limit=settings.log_body_max_bytes if settings.log_bodies else 0,
    )


def _openai(name: str, settings: Settings, upstream: Upstream) -> Provider:
    config = settings.providers[name]
    provider = OpenAIProvider(name, config.kind, **wire_of(name, settings, upstream))
    provider.speaks_responses = config.responses == "native"
    provider.relays_natively = settings.stream_relay == "native"
    return provider


def _gemini(name: str, settings: Settings, upstream: Upstream) -> Provider:
    provider = GeminiProvider(name, **wire_of(name, settings, upstream))
    provider.relays_natively = settings.stream_relay == "native"
    return provider


def _anthropic(name: str, settings: Settings, upstream: Upstream) -> Provider:
    # Anthropic requires max_tokens: each model's catalog limit, by the name the provider
    # knows it by, is the default when the client sets none.
    max_output_tokens = {
        model.upstream_model or model_name: model.max_output_tokens
        for model_name, model in settings.models.items()
        if model.provider == name and model.max_output_tokens is not None
    }
    provider = AnthropicProvider(
        name,
        **wire_of(name, settings, upstream),
        max_output_tokens=max_output_tokens,
        default_max_tokens=settings.default_max_tokens,
    )
    provider.relays_natively = settings.stream_relay == "native"
    return provider


def _azure(name: str, settings: Settings, upstream: Upstream) -> Provider:
    config = settings.providers[name]
    assert config.api_version is not None, "validated by ProviderConfig"
    provider = AzureOpenAIProvider(
        name,
        **wire_of(name, settings, upstream),
        api_version=config.api_version,
        deployments=dict(config.deployments),
    )
    provider.speaks_responses = config.responses == "native"
    provider.relays_natively = settings.stream_relay == "native"
    return provider


# Provider kind -> the factory that builds one from its settings.
FACTORIES: dict[str, Callable[[str, Settings, Upstream], Provider]] = {
    "echo": _echo,
    "openai": _openai,
    "openai_compatible": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "azure": _azure,
}
