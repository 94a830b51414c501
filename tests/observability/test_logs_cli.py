"""The command line around the request log: store paths at start-up, ``floopy logs replay``
beside and without a log store process, and the embedded store's one-process rule said
clearly."""

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


def test_startup_output_names_the_real_store_paths(tmp_path: Path) -> None:
    settings = msgspec.structs.replace(load_settings({}), data_dir=str(tmp_path / "d"))
    logs = next(line for line in startup_lines(settings, None) if line.startswith("logs:"))
    assert f"chdb) at {tmp_path / 'd' / 'clickhouse'}" in logs
    assert f"journals at {tmp_path / 'd' / 'journal'}" in logs


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
