"""An nginx stand-in for an OpenAI-compatible provider, for the upstream-client bench.

nginx answers from memory in a few microseconds, so whatever a proxy in front of it adds is
the proxy's own cost. It runs from a temporary prefix (``common.nginx``).
"""

from __future__ import annotations

from pathlib import Path

from common.nginx import NginxProcess, free_port, nginx_string

FIXTURES = Path(__file__).resolve().parent / "fixtures"
COMPLETION_PATH = "/v1/chat/completions"
# Streaming requests go to their own location so every proxy can pick its relay by path.
STREAM_PATH = "/stream/v1/chat/completions"
# The same stream, trickled: nginx paces it so it arrives in many reads, as a real one does.
PACED_PATH = "/stream/paced/v1/chat/completions"
PACED_RATE = "256k"

_HTTP = """\
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {completion_path} {{
            default_type application/json;
            return 200 '{completion}';
        }}
        location = {stream_path} {{
            alias {{prefix}}/chat_stream.sse;
            default_type text/event-stream;
            # The static handler refuses POST; its error page is the same file, fetched by GET.
            error_page 405 =200 $uri;
            # A never-matching filter drops Content-Length, so the body goes out chunked,
            # the way real providers stream.
            sub_filter_types text/event-stream;
            sub_filter '<never-in-a-stream>' '';
        }}
        location = {paced_path} {{
            alias {{prefix}}/chat_stream.sse;
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
"""


class NginxMock:
    """`with NginxMock(prefix) as mock:` serves the fixtures at `mock.url`."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = 0
        self.completion = (FIXTURES / "chat_completion.json").read_bytes().strip()
        self.stream = (FIXTURES / "chat_stream.sse").read_bytes()
        self._nginx: NginxProcess | None = None

    def __enter__(self) -> NginxMock:
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "chat_stream.sse").write_bytes(self.stream)
        http = _HTTP.format(
            port=self.port,
            completion_path=COMPLETION_PATH,
            stream_path=STREAM_PATH,
            paced_path=PACED_PATH,
            paced_rate=PACED_RATE,
            completion=nginx_string(self.completion.decode().strip()),
        )
        self._nginx = NginxProcess(self.prefix, http, self.port).__enter__()
        self.pid = self._nginx.pid
        return self

    def __exit__(self, *exc: object) -> None:
        if self._nginx is not None:
            self._nginx.__exit__(*exc)
