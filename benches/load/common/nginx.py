"""nginx as a child process from a generated config, and the port helpers every bench uses.

Everything lives in a temporary prefix (config, pid, logs, temp paths) and nginx runs in the
foreground without a master process, so nothing on the machine is touched or left behind.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

# The http-block lines every generated config needs so nginx writes only under the prefix.
PREFIX_PATHS = """\
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
"""

MAIN = """\
daemon off;
# One process, no user switch: the prefix is a private temp dir and nginx runs as us.
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it does not go in time; for processes this bench started."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"  # Debian installs it off users' PATH


def nginx_string(text: str) -> str:
    """Quotes for nginx's `return`, which would otherwise expand `$` and unescape `\\n`."""
    if "$" in text:
        raise ValueError("the mock body must not contain '$' (nginx would expand it)")
    return text.replace("\\", "\\\\").replace("'", "\\'")


class NginxProcess:
    """`with NginxProcess(prefix, http_block, port):` runs nginx on a config of our own.

    ``http_block`` is the inside of the ``http {}`` block; ``{prefix}`` in it is replaced by
    the prefix directory, where the config, logs and temp paths go.
    """

    def __init__(self, prefix: Path, http_block: str, port: int) -> None:
        self.prefix = prefix
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.pid = 0
        self._http_block = http_block
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NginxProcess:
        self.prefix.mkdir(parents=True, exist_ok=True)
        config = self.prefix / "nginx.conf"
        http = (PREFIX_PATHS + self._http_block).replace("{prefix}", str(self.prefix))
        config.write_text(MAIN.format(prefix=self.prefix) + "http {\n" + http + "}\n")
        args = [nginx_binary(), "-p", str(self.prefix), "-c", str(config)]
        args += ["-e", str(self.prefix / "error.log")]
        subprocess.run([*args, "-t", "-q"], check=True)
        self._proc = subprocess.Popen(args)
        self.pid = self._proc.pid
        wait_for_port(self.port, self._proc)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self._proc, timeout=5)
