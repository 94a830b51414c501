"""What the load bench measures, side by side: each is a URL, the process tree serving it, and
the paths of the two scenarios (a chat completion, a 50-chunk stream).

direct          the mock provider itself: the ceiling, and the mock's own throughput
nginx           nginx ``proxy_pass`` to the mock: the least any proxy adds on this machine
floopy          ``floopy serve``, one worker, request log on (embedded ClickHouse)
floopy-nolog    the same with ``LOGGING_ENABLED = False``
floopy-aiohttp  logging on, ``UPSTREAM_CLIENT = "aiohttp"`` (only where that setting exists)
floopy-otel     logging on, and the OpenTelemetry export on, to the mock's ``/v1/traces``
                (nginx: accepts and discards), to compare with ``floopy``
litellm         LiteLLM proxy, one worker, in a virtual environment of its own (litellm.py)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import mock_provider as mock
from common.memory import tree_pids
from common.nginx import free_port, stop_process

FLOOPY_KEY = "fpk_bench_load_0123456789abcdefghijklmnopqrstuvwxyz"
PROVIDER_KEY_ENV = "FLOOPY_BENCH_PROVIDER_KEY"


@dataclass
class Target:
    """A running server to measure. ``pid`` roots the tree whose CPU and memory count."""

    name: str
    url: str = ""
    pid: int = 0
    completion_path: str = mock.COMPLETION_PATH
    stream_path: str = mock.STREAM_PATH
    headers: dict[str, str] = field(default_factory=dict)
    version: str = ""
    gateway: bool = True  # False for the mock measured directly

    def request_headers(self) -> list[str]:
        return [f"{name}: {value}" for name, value in self.headers.items()]


class Server(AbstractContextManager["Server"]):
    """A target's process, started on enter and stopped on exit."""

    target: Target

    def __exit__(self, *exc: object) -> None:
        return None


class Direct(Server):
    def __init__(self, provider: mock.MockProvider) -> None:
        self.target = Target("direct", provider.url, provider.pid, gateway=False)
        self.target.version = "nginx mock"


class NginxGateway(Server):
    def __init__(self, scratch: Path, provider: mock.MockProvider) -> None:
        self._proxy = mock.NginxProxy(scratch / "nginx-proxy", provider.port)
        self.target = Target("nginx", self._proxy.url)

    def __enter__(self) -> NginxGateway:
        self._proxy.__enter__()
        self.target.pid = self._proxy.pid
        return self

    def __exit__(self, *exc: object) -> None:
        self._proxy.__exit__(*exc)


def floopy_settings(
    mock_url: str,
    data_dir: Path,
    *,
    logging: bool,
    upstream_client: str | None,
    extra: dict[str, str] | None = None,
) -> str:
    """The settings module of a benched gateway: two OpenAI-compatible providers on the mock
    (completions and streams) and a Gemini one (streams), a real API key, one worker."""
    key_hash = hashlib.sha256(FLOOPY_KEY.encode()).hexdigest()
    lines = [
        f"DATA_DIR = {str(data_dir)!r}",
        "PROVIDERS = {",
        f"    'mock': {{'kind': 'openai_compatible', 'base_url': '{mock_url}/v1',",
        f"             'api_key_env': '{PROVIDER_KEY_ENV}'}},",
        f"    'mock-stream': {{'kind': 'openai_compatible', 'base_url': '{mock_url}/stream/v1',",
        f"                    'api_key_env': '{PROVIDER_KEY_ENV}'}},",
        f"    'mock-gemini': {{'kind': 'gemini', 'base_url': '{mock_url}{mock.GEMINI_ROOT}',",
        f"                    'api_key_env': '{PROVIDER_KEY_ENV}'}},",
        "}",
        "MODELS = {",
        f"    {mock.MODEL!r}: {{'provider': 'mock', 'input_price': 0.15, 'output_price': 0.6}},",
        f"    {mock.STREAM_MODEL!r}: {{'provider': 'mock-stream', 'input_price': 0.15,",
        "                       'output_price': 0.6},",
        f"    {mock.GEMINI_MODEL!r}: {{'provider': 'mock-gemini', 'input_price': 0.15,",
        "                       'output_price': 0.6},",
        "}",
        "API_KEYS = [",
        f"    {{'id': 'bench', 'hash': 'sha256:{key_hash}', 'organization': 'bench'}},",
        "]",
        "WORKERS = 1",
        f"LOGGING_ENABLED = {logging}",
    ]
    if upstream_client is not None:
        lines.append(f"UPSTREAM_CLIENT = {upstream_client!r}")
    lines.extend(f"{name} = {value}" for name, value in (extra or {}).items())
    return "\n".join(lines) + "\n"


class Floopy(Server):
    """``floopy serve`` from the project's virtual environment, on a free port."""

    def __init__(
        self,
        name: str,
        scratch: Path,
        mock_url: str,
        *,
        logging: bool,
        upstream_client: str | None = None,
        source: Path | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.directory = scratch / name
        self.source = source  # another commit's python/ tree (baseline.py), else the checkout
        self.settings_text = floopy_settings(
            mock_url,
            self.directory / "data",
            logging=logging,
            upstream_client=upstream_client,
            extra=extra,
        )
        port = free_port()
        self.port = port
        self.target = Target(name, f"http://127.0.0.1:{port}")
        self.target.stream_path = mock.COMPLETION_PATH  # the model picks the stream provider
        self.target.headers = {"Authorization": f"Bearer {FLOOPY_KEY}"}
        self.target.version = floopy_version() + (" (baseline)" if source else "")
        self.log_path = self.directory / "gateway.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Floopy:
        self.directory.mkdir(parents=True, exist_ok=True)
        settings = self.directory / "settings.py"
        settings.write_text(self.settings_text)
        env = {
            **os.environ,
            "FLOOPY_SETTINGS": str(settings),
            "FLOOPY_HOST": "127.0.0.1",
            "FLOOPY_PORT": str(self.port),
            PROVIDER_KEY_ENV: "sk-bench-provider-key",
        }
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "floopy", "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
            )
        self.target.pid = self._proc.pid
        try:
            wait_until_up(self.target.url + "/healthz", self._proc, timeout=90)
        except RuntimeError as exc:
            self.__exit__()
            raise RuntimeError(f"{exc}\n{self.log_path.read_text()[-3000:]}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self._proc, timeout=60)  # the log drains its queues on the way out

    def store_pid(self) -> int | None:
        """The log store process, from its status file (None with logging off, or before
        its first round)."""
        try:
            status = json.loads((self.directory / "data" / "store" / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return int(status["pid"])

    def worker_pid(self) -> int:
        """The granian worker serving requests: the tree's newest Python process that is not
        the log store."""
        store = self.store_pid()
        pids = [p for p in tree_pids(self.target.pid) if p not in (self.target.pid, store)]
        return max(pids) if pids else self.target.pid

    def parts(self) -> dict[str, int]:
        """The processes whose memory is followed on their own in a soak."""
        found = {"worker": self.worker_pid()}
        store = self.store_pid()
        if store is not None:
            found["log store"] = store
        return found


def floopy_version() -> str:
    try:
        from floopy import __version__
    except ImportError:
        return "unknown"
    return str(__version__)


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")
