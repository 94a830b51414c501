"""The resilience and tenancy settings: defaults, partial entries, and errors naming them."""

from __future__ import annotations

import pytest

from floopy.settings import SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.retry_attempts == 2
    assert (settings.retry_backoff, settings.retry_backoff_max) == (0.25, 4.0)
    assert settings.upstream_deadline == 600.0
    breaker = settings.circuit_breaker
    assert (breaker.enabled, breaker.failures, breaker.cooldown) == (True, 5, 30.0)
    assert settings.rate_limits == () and settings.organizations == {}


def test_a_partial_breaker_entry_keeps_the_other_defaults() -> None:
    breaker = load_settings({"FLOOPY_CIRCUIT_BREAKER": '{"failures": 2}'}).circuit_breaker
    assert (breaker.failures, breaker.failure_ratio, breaker.min_requests) == (2, 0.5, 20)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLOOPY_CIRCUIT_BREAKER", '{"failure_ratio": 1.5}', "CIRCUIT_BREAKER.failure_ratio"),
        ("FLOOPY_CIRCUIT_BREAKER", '{"cooldwn": 5}', "did you mean cooldown?"),
        ("FLOOPY_RATE_LIMITS", '[{"scope": "team", "requests": 1}]', "RATE_LIMITS[0].scope"),
        ("FLOOPY_RATE_LIMITS", '[{"scope": "user"}]', "needs `requests`, `tokens` or both"),
        ("FLOOPY_RATE_LIMITS", '[{"scope": "user", "tokens": 0}]', "RATE_LIMITS[0].tokens"),
        ("FLOOPY_ORGANIZATIONS", '{"acme": {"projets": []}}', "did you mean projects?"),
        ("FLOOPY_RETRY_ATTEMPTS", "-1", "RETRY_ATTEMPTS"),
        ("FLOOPY_UPSTREAM_DEADLINE", "0", "UPSTREAM_DEADLINE"),
    ],
)
def test_invalid_values_name_the_setting(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("?", r"\?")):
        load_settings({variable: value})


def test_policy_label() -> None:
    settings = load_settings(
        {
            "FLOOPY_RATE_LIMITS": '[{"scope": "organization", "match": "acme", "requests": 5},'
            ' {"scope": "user", "tokens": 9, "window": 30, "name": "chatty users"}]'
        }
    )
    labels = [policy.label for policy in settings.rate_limits]
    assert labels == ["organization acme, 60s window", "chatty users"]
