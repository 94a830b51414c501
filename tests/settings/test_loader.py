"""Loading settings: defaults, a settings module, FLOOPY_* overrides, and the error messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from floopy.settings import (
    SETTING_NAMES,
    ApiKeyEntry,
    ProviderConfig,
    Settings,
    SettingsError,
    defaults,
    effective_provider,
    load_settings,
    unknown_env_variables,
)

HASH = "sha256:" + "ab" * 32


def write_settings(directory: Path, body: str, name: str = "floopy_settings.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def load_file(tmp_path: Path, body: str, **env: str) -> Settings:
    path = write_settings(tmp_path, body)
    return load_settings({"FLOOPY_SETTINGS": str(path), **env})


def test_defaults_without_a_settings_module() -> None:
    settings = load_settings({})
    assert settings.source == "defaults"
    assert settings.port == 8787
    assert settings.host == "127.0.0.1"
    assert settings.data_dir == "./.floopy"
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.api_keys == ()
    assert settings.providers["openai"].base_url == "https://api.openai.com/v1"
    assert settings.providers["echo"].kind == "echo"
    assert settings.models["gpt-4o-mini"].provider == "openai"
    assert settings.models["echo"].input_price == 0.0


def test_every_default_is_a_setting_and_back() -> None:
    documented = {name for name in vars(defaults) if name.isupper()}
    assert documented == set(SETTING_NAMES)


def test_settings_struct_defaults_match_the_loader() -> None:
    assert Settings() == load_settings({})


def test_module_by_dotted_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_settings(tmp_path, "PORT = 9001\nWORKERS = 3\n", name="dotted_floopy_conf.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = load_settings({"FLOOPY_SETTINGS": "dotted_floopy_conf"})
    assert (settings.port, settings.workers) == (9001, 3)
    assert settings.source == "dotted_floopy_conf"
    assert settings.host == "127.0.0.1"  # untouched names keep their default


def test_module_by_path_ignores_helpers(tmp_path: Path) -> None:
    settings = load_file(
        tmp_path,
        """
        import os
        _KB = 1024
        limit = 5
        MAX_BODY_BYTES = 2 * _KB * limit
        PROVIDERS = {
            "ollama": {"kind": "openai_compatible", "base_url": "http://localhost:11434/v1"},
        }
        MODELS = {"llama3": {"provider": "ollama", "upstream_model": "llama3.1:8b"}}
        """,
    )
    assert settings.max_body_bytes == 10240
    assert settings.models["llama3"].upstream_model == "llama3.1:8b"
    assert set(settings.providers) == {"ollama", "echo"}  # echo is built in
    assert settings.unavailable_providers() == []


def test_unknown_name_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^PROVIDER: not a setting .*did you mean PROVIDERS"):
        load_file(tmp_path, "PROVIDER = {}\n")


def test_wrong_type_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^WORKERS: Expected `int`, got `str`"):
        load_file(tmp_path, "WORKERS = 'four'\n")


def test_nested_error_names_the_entry_and_field(tmp_path: Path) -> None:
    body = "MODELS = {'gpt-4o': {'provider': 'openai', 'input_price': 'cheap'}}\n"
    with pytest.raises(SettingsError, match=r"^MODELS\['gpt-4o'\]\.input_price: Expected"):
        load_file(tmp_path, body)


def test_unknown_field_in_an_entry_suggests_the_field(tmp_path: Path) -> None:
    body = "MODELS = {'m': {'provider': 'echo', 'output_prise': 1}}\n"
    with pytest.raises(SettingsError, match=r"^MODELS\['m'\]: .*output_prise.*output_price"):
        load_file(tmp_path, body)


def test_model_with_unknown_provider(tmp_path: Path) -> None:
    body = "MODELS = {'claude': {'provider': 'anthropc'}}\n"
    with pytest.raises(SettingsError, match=r"^MODELS\['claude'\]\.provider: unknown provider"):
        load_file(tmp_path, body)


def test_replacing_providers_keeps_their_part_of_the_default_catalog(tmp_path: Path) -> None:
    body = "PROVIDERS = {'local': {'kind': 'openai_compatible', 'base_url': 'http://h/v1'}}\n"
    assert set(load_file(tmp_path, body).models) == {"echo"}
    body = """
    PROVIDERS = {"openai": {"kind": "openai", "base_url": "https://api.openai.com/v1",
                            "api_key_env": "OPENAI_API_KEY"}}
    """
    providers = {model.provider for model in load_file(tmp_path, body).models.values()}
    assert providers == {"openai", "echo"}


def test_routing_target_with_unknown_provider(tmp_path: Path) -> None:
    body = """
    ROUTING_RULES = {"cheap": {"targets": [{"provider": "nope", "model": "x"}]}}
    """
    with pytest.raises(SettingsError, match=r"^ROUTING_RULES\['cheap'\]\.targets\[0\]\.provider"):
        load_file(tmp_path, body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("PORT = 0\n", r"^PORT: Expected `int` >= 1"),
        ("PORT = 70000\n", r"^PORT: Expected `int` <= 65535"),
        ("WORKERS = 0\n", r"^WORKERS: Expected `int` >= 1"),
        ("PROVIDERS = {'x': {'kind': 'openai', 'base_url': 'api.x.com'}}\n", r"PROVIDERS\['x'\]"),
        ("API_KEYS = [{'id': 'a', 'hash': 'plaintext-key'}]\n", r"^API_KEYS\[0\]: hash must"),
        ("REDIS_URL = 'localhost:6379'\n", r"^REDIS_URL: expected a URL"),
        (
            "PROVIDERS = {'x': {'kind': 'gemini', 'base_url': 'https://g', 'api_key_env': 'K',"
            " 'responses': 'chat'}}\n",
            r"PROVIDERS\['x'\].*responses is for the OpenAI kinds",
        ),
    ],
)
def test_invalid_values(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        load_file(tmp_path, body)


def test_api_key_routing_rule_must_exist(tmp_path: Path) -> None:
    body = f"API_KEYS = [{{'id': 'a', 'hash': '{HASH}', 'routing_rule': 'fast'}}]\n"
    with pytest.raises(SettingsError, match=r"^API_KEYS\[0\]\.routing_rule: unknown routing rule"):
        load_file(tmp_path, body)


def test_env_overrides_int_bool_and_json(tmp_path: Path) -> None:
    settings = load_file(
        tmp_path,
        "PORT = 9000\n",
        FLOOPY_PORT="9100",
        FLOOPY_ACCESS_LOG="yes",
        FLOOPY_UPSTREAM_TOTAL_TIMEOUT="30",
        FLOOPY_REDIS_URL="redis://cache:6379/0",
        FLOOPY_ROUTING_RULES='{"r": {"strategy": "round_robin", "targets": '
        '[{"provider": "echo", "model": "echo"}]}}',
    )
    assert settings.port == 9100  # the environment wins over the module
    assert settings.access_log is True
    assert settings.upstream_total_timeout == 30.0
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.routing_rules["r"].strategy == "round_robin"
    assert "FLOOPY_PORT" in settings.source


@pytest.mark.parametrize(("raw", "expected"), [("0", False), ("FALSE", False), ("on", True)])
def test_env_booleans(raw: str, expected: bool) -> None:
    assert load_settings({"FLOOPY_ACCESS_LOG": raw}).access_log is expected


def test_empty_env_value_clears_an_optional_setting(tmp_path: Path) -> None:
    settings = load_file(tmp_path, "QDRANT_URL = 'http://q:6333'\n", FLOOPY_QDRANT_URL="")
    assert settings.qdrant_url is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FLOOPY_PORT": "eighty"}, r"^PORT: FLOOPY_PORT='eighty' is not an integer"),
        ({"FLOOPY_PORT": "0"}, r"^PORT: .*\(from FLOOPY_PORT\)"),
        ({"FLOOPY_ACCESS_LOG": "maybe"}, r"^ACCESS_LOG: .* is not a boolean"),
        ({"FLOOPY_MODELS": "{not json"}, r"^MODELS: FLOOPY_MODELS is not valid JSON"),
    ],
)
def test_bad_env_values(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        load_settings(env)


def test_provider_key_variable_with_floopy_prefix_is_not_a_typo(tmp_path: Path) -> None:
    body = """
    PROVIDERS = {"openai": {"kind": "openai", "base_url": "https://api.openai.com/v1",
                            "api_key_env": "FLOOPY_OPENAI_KEY"}}
    """
    settings = load_file(tmp_path, body, FLOOPY_OPENAI_KEY="sk-test")
    assert settings.providers["openai"].api_key_env == "FLOOPY_OPENAI_KEY"


def test_settings_module_that_fails_to_import(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^FLOOPY_SETTINGS: cannot load .*ZeroDivisionError"):
        load_file(tmp_path, "PORT = 1 / 0\n")
    with pytest.raises(SettingsError, match=r"^FLOOPY_SETTINGS: no settings file"):
        load_settings({"FLOOPY_SETTINGS": str(tmp_path / "missing.py")})


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.providers["openai"].base_url = "http://evil"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.models["gpt-4o"].input_price = 0  # type: ignore[misc]


def test_unavailable_providers_follow_their_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings({})
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    assert settings.unavailable_providers() == ["anthropic", "gemini", "openai"]
    assert effective_provider(settings, "gpt-4o") == "echo"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert settings.unavailable_providers() == ["anthropic", "gemini"]
    assert settings.effective_provider("gpt-4o") == "openai"
    with pytest.raises(KeyError):
        settings.effective_provider("no-such-model")


def test_provider_needs_key() -> None:
    assert not ProviderConfig(kind="echo").needs_key
    local = ProviderConfig(kind="openai_compatible", base_url="http://localhost:11434/v1")
    assert not local.needs_key
    hosted = msgspec.structs.replace(local, api_key_env="GROQ_API_KEY")
    assert hosted.needs_key


def test_api_key_entry_validates_its_hash() -> None:
    assert ApiKeyEntry(id="a", hash=HASH).organization == "default"
    with pytest.raises(ValueError, match="hash must be"):
        ApiKeyEntry(id="a", hash="sha256:" + "AB" * 32)


def test_unknown_env_variables_are_reported_not_fatal() -> None:
    env = {"FLOOPY_WROKERS": "2", "FLOOPY_PORT": "9000", "FLOOPY_KEY": "fpk_x"}
    settings = load_settings(env)
    assert settings.port == 9000 and settings.workers == 1
    reports = unknown_env_variables(settings, env)
    assert len(reports) == 2
    assert reports[1].startswith("FLOOPY_WROKERS is not a setting") and "WORKERS" in reports[1]


def test_the_trace_export_settings_load_from_the_environment_and_show_masked() -> None:
    from floopy.settings import load_settings
    from floopy.settings.display import masked_settings

    settings = load_settings(
        {
            "FLOOPY_OTEL_ENDPOINT": "https://user:pw@collector.example:4318",
            "FLOOPY_OTEL_HEADERS": '{"x-api-key": "secret-value"}',
            "FLOOPY_OTEL_QUEUE_SIZE": "10",
        }
    )
    assert settings.otel_headers == {"x-api-key": "secret-value"}
    assert settings.otel_queue_size == 10
    shown = masked_settings(settings)
    assert shown["OTEL_HEADERS"] == {"x-api-key": "***"}
    assert "pw" not in shown["OTEL_ENDPOINT"]
    with pytest.raises(SettingsError, match="OTEL_ENDPOINT"):
        load_settings({"FLOOPY_OTEL_ENDPOINT": "collector:4318"})
