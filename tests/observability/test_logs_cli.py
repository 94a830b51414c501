"""The command line around the request log: the embedded store's one-process rule said
clearly, store paths at start-up, and ``floopy logs replay``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec

from floopy.cli import startup_lines
from floopy.settings import load_settings


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


def test_serve_refuses_several_workers_on_the_embedded_store(tmp_path: Path) -> None:
    result = floopy("serve", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 2
    assert "WORKERS" in result.stderr and "CLICKHOUSE_URL" in result.stderr


def test_startup_output_names_the_real_store_paths(tmp_path: Path) -> None:
    settings = msgspec.structs.replace(load_settings({}), data_dir=str(tmp_path / "d"))
    logs = next(line for line in startup_lines(settings, None) if line.startswith("logs:"))
    assert f"chdb) at {tmp_path / 'd' / 'clickhouse'}" in logs
    assert f"spool at {tmp_path / 'd' / 'spool'}" in logs


HOLD_STORE = textwrap.dedent(
    """
    import sys, time, clickhouse_connect
    client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
    print("open", flush=True)
    time.sleep(60)
    """
)


def test_logs_replay_on_an_idle_store_and_on_a_busy_one(tmp_path: Path) -> None:
    idle = floopy("logs", "replay", cwd=tmp_path, FLOOPY_DATA_DIR=str(tmp_path / "d"))
    assert idle.returncode == 0, idle.stderr
    assert "replayed 0 rows" in idle.stdout
    assert "applying migration 0001 requests" in idle.stdout

    # The context closes the pipe too (an open one is a ResourceWarning, an error here).
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_STORE, str(tmp_path / "d" / "clickhouse")],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
            busy = floopy("logs", "replay", cwd=tmp_path, FLOOPY_DATA_DIR=str(tmp_path / "d"))
        finally:
            holder.kill()
    assert busy.returncode == 1
    assert "in use by another process" in busy.stderr
