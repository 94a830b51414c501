"""An nginx stand-in for an OpenAI-compatible provider, for the upstream-client bench.

nginx answers from memory in a few microseconds, so whatever a proxy in front of it adds is
the proxy's own cost. Everything lives in a temporary prefix (config, pid, logs, temp paths)
and nginx runs as a non-daemon child, so nothing on the machine is touched or left behind.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
COMPLETION_PATH = "/v1/chat/completions"
# Streaming requests go to their own location so every proxy can pick its relay by path.
STREAM_PATH = "/stream/v1/chat/completions"
# The same stream, trickled: nginx paces it so it arrives in many reads, as a real one does.
PACED_PATH = "/stream/paced/v1/chat/completions"
PACED_RATE = "256k"

_CONFIG = """\
daemon off;
# One process, no user switch: the prefix is a private temp dir and nginx runs as us.
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {completion_path} {{
            default_type application/json;
            return 200 '{completion}';
        }}
        location = {stream_path} {{
            alias {prefix}/chat_stream.sse;
            default_type text/event-stream;
            # The static handler refuses POST; its error page is the same file, fetched by GET.
            error_page 405 =200 $uri;
            # A never-matching filter drops Content-Length, so the body goes out chunked,
            # the way real providers stream.
            sub_filter_types text/event-stream;
            sub_filter '<never-in-a-stream>' '';
        }}
        location = {paced_path} {{
            alias {prefix}/chat_stream.sse;
            default_type text/event-stream;
            error_page 405 =200 $uri;
            sub_filter_types text/event-stream;
            sub_filter '<never-in-a-stream>' '';
            sendfile off;
            output_buffers 1 320;
            postpone_output 0;
            limit_rate {paced_rate};
        }}
    }}
}}
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


def _nginx_string(text: str) -> str:
    """Quotes for nginx's `return`, which would otherwise expand `$` and unescape `\\n`."""
    if "$" in text:
        raise ValueError("the mock body must not contain '$' (nginx would expand it)")
    return text.replace("\\", "\\\\").replace("'", "\\'")


class NginxMock:
    """`with NginxMock(prefix) as mock:` serves the fixtures at `mock.url`."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = 0
        self.completion = (FIXTURES / "chat_completion.json").read_bytes().strip()
        self.stream = (FIXTURES / "chat_stream.sse").read_bytes()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NginxMock:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian installs it off PATH for users
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "chat_stream.sse").write_bytes(self.stream)
        config = self.prefix / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                prefix=self.prefix,
                port=self.port,
                completion_path=COMPLETION_PATH,
                stream_path=STREAM_PATH,
                paced_path=PACED_PATH,
                paced_rate=PACED_RATE,
                completion=_nginx_string(self.completion.decode().strip()),
            )
        )
        args = [
            nginx,
            "-p",
            str(self.prefix),
            "-c",
            str(config),
            "-e",
            str(self.prefix / "error.log"),
        ]
        subprocess.run([*args, "-t", "-q"], check=True)
        self._proc = subprocess.Popen(args)
        self.pid = self._proc.pid
        wait_for_port(self.port, self._proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
