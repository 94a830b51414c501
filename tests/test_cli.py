"""The floopy command, run as users run it: as a separate process."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from floopy.cli import startup_lines
from floopy.keys import ensure_dev_key, hash_key
from floopy.settings import Settings


def floopy(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLOOPY_")}
    return subprocess.run(
        [sys.executable, "-m", "floopy", *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_create_prints_the_key_then_its_entry(tmp_path: Path) -> None:
    result = floopy(
        "keys",
        "create",
        "--organization",
        "acme",
        "--project",
        "web",
        "--locked",
        "--name",
        "ci bot",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    key = lines[0]
    assert key.startswith("fpk_") and " " not in key
    entry_line = next(line for line in lines[1:] if line.startswith("{"))
    entry = ast.literal_eval(entry_line.rstrip(","))
    assert entry["hash"] == hash_key(key)
    assert entry["organization"] == "acme"
    assert entry["project"] == "web" and entry["locked_to_project"] is True
    assert key not in "\n".join(lines[1:])


def test_keys_create_entry_is_accepted_by_the_settings(tmp_path: Path) -> None:
    lines = floopy("keys", "create", cwd=tmp_path).stdout.splitlines()
    entry_line = next(line for line in lines[1:] if line.startswith("{"))
    settings_file = tmp_path / "site_settings.py"
    settings_file.write_text(f"API_KEYS = [\n    {entry_line}\n]\n")
    result = floopy("settings", "check", "--settings", str(settings_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert hash_key(lines[0]) in result.stdout


def test_serve_with_an_invalid_setting_exits_2_naming_it(tmp_path: Path) -> None:
    settings_file = tmp_path / "bad_settings.py"
    settings_file.write_text("PORT = 'eighty'\n")
    result = floopy("serve", "--settings", str(settings_file), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("floopy: invalid setting: PORT:")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".floopy").exists()  # nothing was created before validation


def test_unknown_env_setting_is_a_warning_naming_the_setting(tmp_path: Path) -> None:
    result = floopy("settings", "check", cwd=tmp_path, FLOOPY_WORKRES="2")
    assert result.returncode == 0
    assert "FLOOPY_WORKRES is not a setting" in result.stderr and "WORKERS" in result.stderr


def test_settings_check_masks_secrets(tmp_path: Path) -> None:
    settings_file = tmp_path / "prod_settings.py"
    settings_file.write_text(
        "REDIS_URL = 'redis://:hunter2@cache:6379/0'\n"
        "PROVIDERS = {'groq': {'kind': 'openai_compatible',"
        " 'base_url': 'https://api.groq.com/openai/v1', 'api_key_env': 'GROQ_API_KEY',"
        " 'headers': {'X-Org-Token': 'tok-secret'}}}\n"
        "MODELS = {'llama': {'provider': 'groq'}}\n"
    )
    result = floopy("settings", "check", "--settings", str(settings_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "tok-secret" not in result.stdout
    assert "redis://:***@cache:6379/0" in result.stdout
    assert "unavailable (key not set), answered by echo: groq" in result.stdout


def test_keys_create_locked_needs_a_project(tmp_path: Path) -> None:
    result = floopy("keys", "create", "--locked", cwd=tmp_path)
    assert result.returncode == 2 and "--project" in result.stderr
    assert result.stdout == ""


def test_startup_output_shows_the_dev_key_only_when_just_created(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), redis_url="redis://:hunter2@cache:6379/0")
    first = "\n".join(startup_lines(settings, ensure_dev_key(tmp_path)))
    later = "\n".join(startup_lines(settings, ensure_dev_key(tmp_path)))
    key = first.split("development key: ", 1)[1].split()[0]
    assert key.startswith("fpk_")
    assert key not in later and "delete that file" in later
    assert "listening on http://127.0.0.1:8787" in first
    assert "hunter2" not in first and "redis://:***@cache:6379/0" in first


def test_startup_output_brackets_ipv6_hosts() -> None:
    lines = startup_lines(Settings(host="::", api_keys=()), dev_key=None)
    assert "listening on http://[::]:8787" in lines
