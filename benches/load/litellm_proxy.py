"""LiteLLM proxy as the bench runs it: installed into a virtual environment of its own (it is
no project dependency), one worker, the local cost map, no database, no callbacks, a master
key checked on every request, and two models routed to the mock provider."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mock_provider as mock
from common.nginx import free_port, stop_process
from targets import Server, Target, wait_until_up

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-litellm"
# The version the reference figure was measured with; --litellm-version changes it.
DEFAULT_VERSION = "1.106.2"
MASTER_KEY = "sk-bench-litellm-master-key-0123456789"

_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {mock_url}/v1
      api_key: sk-bench-provider-key
  - model_name: {stream_model}
    litellm_params:
      model: openai/{stream_model}
      api_base: {mock_url}/stream/v1
      api_key: sk-bench-provider-key
general_settings:
  master_key: {master_key}
litellm_settings:
  drop_params: true
"""


def python() -> Path:
    return VENV / "bin" / "python"


def installed_version() -> str | None:
    if not python().exists():
        return None
    done = subprocess.run(
        [str(python()), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def ensure_installed(version: str) -> str:
    """Creates the environment and installs ``litellm[proxy]==version`` unless it is there."""
    if installed_version() == version:
        return version
    if not python().exists():
        print(f"creating {VENV.relative_to(HERE.parents[1])}", flush=True)
        # The base interpreter, not this venv's: the new environment must not inherit ours.
        base = Path(getattr(sys, "_base_executable", sys.executable))
        subprocess.run([str(base), "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python()), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True
        )
    print(f"installing litellm[proxy]=={version} (a few minutes the first time)", flush=True)
    subprocess.run(
        [str(python()), "-m", "pip", "install", "-q", f"litellm[proxy]=={version}"], check=True
    )
    found = installed_version()
    if found != version:
        raise RuntimeError(f"litellm {version} did not install (found {found})")
    return found


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # never fetch the cost map
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "PATH": f"{VENV / 'bin'}:{env.get('PATH', '')}",
    }
    for variable in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL"):
        env.pop(variable, None)  # no database, no shared cache: the proxy alone
    return env


class LiteLLM(Server):
    def __init__(self, scratch: Path, mock_url: str, version: str) -> None:
        self.directory = scratch / "litellm"
        self.mock_url = mock_url
        self.port = free_port()
        self.target = Target("litellm", f"http://127.0.0.1:{self.port}")
        self.target.completion_path = self.target.stream_path = "/v1/chat/completions"
        self.target.headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        self.target.version = version
        self.log_path = self.directory / "litellm.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiteLLM:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yaml"
        config.write_text(
            _CONFIG.format(
                model=mock.MODEL,
                stream_model=mock.STREAM_MODEL,
                mock_url=self.mock_url,
                master_key=MASTER_KEY,
            )
        )
        args = [str(VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--num_workers", "1", "--telemetry", "False"]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=environment(), cwd=self.directory
            )
        self.target.pid = self._proc.pid
        try:
            wait_until_up(self.target.url + "/health/liveliness", self._proc, timeout=180)
        except RuntimeError as exc:
            self.__exit__()
            raise RuntimeError(f"{exc}\n{self.log_path.read_text()[-3000:]}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self._proc, timeout=30)
