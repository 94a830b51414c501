"""A model name into a target: the catalog, then provider/model, then the family's prefix."""

from __future__ import annotations

from typing import Any

import pytest

from floopy import errors
from floopy.pipeline.routing import Router, Target
from floopy.settings import ModelConfig, ProviderConfig, Settings


def provider(kind: str, **extra: Any) -> ProviderConfig:
    if kind == "echo":
        return ProviderConfig(kind="echo")
    return ProviderConfig(kind=kind, base_url="https://x", api_key_env="K", **extra)  # type: ignore[arg-type]


def router(unavailable: set[str] | None = None, **providers: ProviderConfig) -> Router:
    providers.setdefault("echo", provider("echo"))
    models = {"gpt-4o": ModelConfig(provider=next(iter(providers)), upstream_model="gpt-4o-x")}
    return Router(Settings(providers=providers, models=models), unavailable or set())


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("gpt-4o", Target("openai", "gpt-4o-x", "gpt-4o")),  # the catalog first
        ("gpt-4.1-nano", Target("openai", "gpt-4.1-nano", "gpt-4.1-nano")),
        ("chatgpt-4o-latest", Target("openai", "chatgpt-4o-latest", "chatgpt-4o-latest")),
        ("o1", Target("openai", "o1", "o1")),
        ("o3-mini", Target("openai", "o3-mini", "o3-mini")),
        ("o4-mini-2025-04-16", Target("openai", "o4-mini-2025-04-16", "o4-mini-2025-04-16")),
        (
            "text-embedding-3-small",
            Target("openai", "text-embedding-3-small", "text-embedding-3-small"),
        ),
        ("claude-haiku-4-5", Target("claude", "claude-haiku-4-5", "claude-haiku-4-5")),
        ("gemini-2.5-pro", Target("google", "gemini-2.5-pro", "gemini-2.5-pro")),
        ("google/gemini-2.5-pro", Target("google", "gemini-2.5-pro", "google/gemini-2.5-pro")),
        ("claude/anything", Target("claude", "anything", "claude/anything")),
    ],
)
def test_resolution(name: str, target: Target) -> None:
    routed = router(
        openai=provider("openai"),
        azure=provider("azure", api_version="2024-10-21"),
        claude=provider("anthropic"),
        google=provider("gemini"),
    )
    assert routed.resolve(name) == target


@pytest.mark.parametrize("name", ["o5", "o1x", "llama-3", "gpt4", "openai/gpt-4o"])
def test_not_a_family_and_not_configured(name: str) -> None:
    routed = router(claude=provider("anthropic"))
    with pytest.raises(errors.BadRequest) as caught:
        routed.resolve(name)
    assert caught.value.param == "model"
    assert "claude-* (by claude)" in caught.value.message
    assert "gpt-*" not in caught.value.message  # no openai-kind provider serves it


def test_the_provider_named_after_the_kind_serves_its_family() -> None:
    routed = router(backup=provider("gemini"), gemini=provider("gemini"))
    assert routed.resolve("gemini-2.0-flash").provider == "gemini"
    routed = router(first=provider("gemini"), second=provider("gemini"))
    assert routed.resolve("gemini-2.0-flash").provider == "first"


def test_azure_does_not_serve_openai_names() -> None:
    with pytest.raises(errors.BadRequest):
        router(azure=provider("azure", api_version="v")).resolve("gpt-4.1")


def test_a_family_provider_without_its_key_is_answered_by_echo() -> None:
    routed = router({"google"}, openai=provider("openai"), google=provider("gemini"))
    assert routed.resolve("gemini-2.5-flash") == Target(
        "echo", "gemini-2.5-flash", "gemini-2.5-flash"
    )
