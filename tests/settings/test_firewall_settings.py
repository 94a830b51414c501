"""FIREWALL and the embedder settings: defaults, the mode per key and project, and errors
naming the setting."""

from __future__ import annotations

import pytest

from floopy.settings import FirewallConfig, SettingsError, load_settings


def test_defaults_screen_nothing_but_let_a_client_ask() -> None:
    settings = load_settings({})
    firewall = settings.firewall
    assert (firewall.mode, firewall.backend, firewall.fail) == ("off", "local", "open")
    assert firewall.verdict_cache_similarity == 0.95 and not firewall.verdict_cache_shared
    assert firewall.can_screen and not firewall.client_may_disable
    assert (settings.embedding_model, settings.embedding_threads) == ("local", 1)


def test_nothing_can_be_screened_when_every_mode_is_off_and_clients_may_not_ask() -> None:
    assert not FirewallConfig(client_may_enable=False).can_screen
    assert FirewallConfig(client_may_enable=False, projects={"web": "flag"}).can_screen


def test_a_key_overrides_its_project_which_overrides_the_default() -> None:
    config = FirewallConfig(mode="flag", projects={"web": "block"}, keys={"ci": "off"})
    assert config.mode_for(None, None) == "flag"
    assert config.mode_for("other", "web") == "block"
    assert config.mode_for("ci", "web") == "off"


def test_an_llm_backend_names_a_catalog_model() -> None:
    settings = load_settings(
        {"FLOOPY_FIREWALL": '{"mode": "block", "backend": "llm", "model": "gpt-4o-mini"}'}
    )
    assert settings.firewall.model == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLOOPY_FIREWALL", '{"mode": "deny"}', "FIREWALL.mode"),
        ("FLOOPY_FIREWALL", '{"backend": "llm"}', "model is required for backend 'llm'"),
        ("FLOOPY_FIREWALL", '{"backend": "llm", "model": "nope"}', "FIREWALL.model: unknown"),
        ("FLOOPY_FIREWALL", '{"verdict_cache_similarity": 1.5}', "verdict_cache_similarity"),
        ("FLOOPY_FIREWALL", '{"fial": "closed"}', "did you mean fail?"),
        ("FLOOPY_FIREWALL", '{"projects": {"web": "loud"}}', "FIREWALL.projects"),
        ("FLOOPY_EMBEDDING_MODEL", "no-such-model", "EMBEDDING_MODEL: 'no-such-model'"),
        ("FLOOPY_EMBEDDING_THREADS", "0", "EMBEDDING_THREADS"),
    ],
)
def test_invalid_values_name_the_setting(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("?", r"\?")):
        load_settings({variable: value})


def test_only_a_mode_that_is_on_screens_by_policy() -> None:
    assert not FirewallConfig().screens_by_policy  # clients may still ask
    assert FirewallConfig(keys={"ci": "flag"}).screens_by_policy
