"""Boots the real thing: a mock provider process and a granian gateway process on loopback."""

from __future__ import annotations

import gc
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MOCK_SERVER = HERE.parent / "mock_upstream" / "openai_server.py"
TEST_KEY = "fpk_test_integration_key_0123456789abcdefghijklmno"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode}\n{out}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


def worker_pids(main_pid: int) -> list[int]:
    """The granian workers of ``floopy serve``: its children but the log store process."""
    pids = []
    for task in Path(f"/proc/{main_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            if b"store" not in command:
                pids.append(int(child))
    return sorted(pids)


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace") if out else ""


@dataclass
class Gateway:
    url: str
    key: str
    mock_url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(MOCK_SERVER), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/_requests", proc)
        yield url
    finally:
        stop(proc)


def write_settings(
    path: Path, mock_url: str, data_dir: Path, *, with_keys: bool = True, **extra: str
) -> Path:
    key_hash = hashlib.sha256(TEST_KEY.encode()).hexdigest()
    lines = [
        f"DATA_DIR = {str(data_dir)!r}",
        "PROVIDERS = {",
        f"    'mock': {{'kind': 'openai_compatible', 'base_url': '{mock_url}/v1',",
        "              'api_key_env': 'FLOOPY_TEST_MOCK_KEY'},",
        "    'echo': {'kind': 'echo'},",
        "}",
        "MODELS = {",
        "    'gpt-4o-mini': {'provider': 'mock', 'input_price': 0.15, 'output_price': 0.6},",
        "    'mock-alias': {'provider': 'mock', 'upstream_model': 'renamed-upstream'},",
        "    'echo': {'provider': 'echo'},",
        "}",
        "MAX_BODY_BYTES = 1_000_000",
        # A port of its own, so gateways started side by side each serve their dashboard.
        f"DASHBOARD_PORT = {free_port()}",
    ]
    if with_keys:
        lines.append(
            f"API_KEYS = [{{'id': 'test', 'hash': 'sha256:{key_hash}', 'organization': 'acme'}}]"
        )
    lines.extend(f"{name} = {value}" for name, value in extra.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def start_gateway(
    settings: Path, log_path: Path, env_extra: dict[str, str] | None = None, *args: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """Starts ``floopy serve``; its output goes to ``log_path`` (a pipe nobody drains could
    fill up and stall the server)."""
    port = free_port()
    env = {
        **os.environ,
        "FLOOPY_SETTINGS": str(settings),
        "FLOOPY_PORT": str(port),
        "FLOOPY_TEST_MOCK_KEY": "sk-mock-upstream-key",
        **(env_extra or {}),
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "floopy", "serve", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", proc)
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"{exc}\n{log_path.read_text()}") from None
    return url, proc


@pytest.fixture(scope="session")
def gateway(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gateway")
    settings = write_settings(root / "settings.py", mock_upstream, root / "data")
    url, proc = start_gateway(settings, root / "gateway.log")
    gw = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)
    try:
        yield gw
    finally:
        stop(proc)


@pytest.fixture(autouse=True)
def _collect_after() -> Iterator[None]:
    """SDK clients that tests drop keep their idle keep-alive connections to the gateway
    until the garbage collector closes them, with a ResourceWarning that would surface in
    whichever later test happens to be running (an error there). Those are this process's
    test clients, not the gateway (a process of its own): they are collected here, after
    the test that dropped them, quietly."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
