"""The provider every gateway in the load bench talks to: nginx answering from memory.

nginx serves a chat completion in a few microseconds, so what a gateway in front of it adds
is the gateway's own cost; its own throughput, measured directly, is reported beside the
gateways'. Two routes, as an OpenAI-compatible provider has them:

- ``/v1/chat/completions``: a ``chat.completion`` JSON body;
- ``/stream/v1/chat/completions``: the same answer as an SSE stream of 50 content chunks,
  then the finish chunk, the usage chunk and ``data: [DONE]``, sent chunked. Each event is
  padded to one size and nginx writes one event per write with a fixed pause after it, so the
  stream arrives the way a model produces it, a chunk every ``chunk_interval_ms``;
- ``GEMINI_STREAM_PATH``: the same answer as Gemini's ``streamGenerateContent?alt=sse``
  sends it (50 events, the last with its finish reason and usage), paced the same way.

Gateways reach the stream through a second provider whose base URL ends in ``/stream/v1``.
The bench's data is built here, not read from recorded files. ``NginxMock`` serves any data
so: the upstream-client bench (``client/nginx_mock.py``) runs it on its recorded fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

from common.nginx import NginxProcess, free_port, nginx_string

COMPLETION_PATH = "/v1/chat/completions"
STREAM_PATH = "/stream/v1/chat/completions"
MODEL = "gpt-4o-mini"  # the model clients ask for, routed to the completion route
STREAM_MODEL = "bench-stream"  # routed to the stream route
GEMINI_MODEL = "bench-gemini"  # routed to the Gemini stream route
GEMINI_ROOT = "/gemini/v1beta"  # a Gemini provider's base URL on the mock
GEMINI_STREAM_PATH = f"{GEMINI_ROOT}/models/{GEMINI_MODEL}:streamGenerateContent"
CONTENT_CHUNKS = 50
# The mock's stream response header: status line, Server, Date (fixed width), Content-Type,
# Transfer-Encoding, Connection. A few bytes off only shortens the first pause by microseconds.
STREAM_HEADER_BYTES = 156
_CREATED = 1741569952
_UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
_REPLY = (
    "Visit the tile museum, ride tram 28 through Alfama, then spend an hour in the oldest "
    "bookshop in the world and finish with a pastel de nata next door while the rain passes"
)
_WORDS = _REPLY.split(" ")


def messages_request(*, model: str = STREAM_MODEL) -> bytes:
    """The same chat as an Anthropic Messages stream request (``POST /v1/messages``)."""
    body = {
        "model": model,
        "max_tokens": 256,
        "stream": True,
        "system": "You are a concise assistant for a travel agency.",
        "messages": [
            {
                "role": "user",
                "content": "Suggest three things to do in Lisbon on a rainy afternoon.",
            }
        ],
    }
    return json.dumps(body).encode()


def chat_request(*, model: str = MODEL, stream: bool = False) -> bytes:
    """What the load generators POST: a short chat, as most real requests are."""
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant for a travel agency."},
            {
                "role": "user",
                "content": "Suggest three things to do in Lisbon on a rainy afternoon.",
            },
        ],
        "temperature": 0.7,
        "max_tokens": 256,
        "user": "bench-user-42",
    }
    if stream:
        body["stream"] = True
    return _compact(body)


def completion() -> bytes:
    reply = " ".join(_WORDS[i % len(_WORDS)] for i in range(CONTENT_CHUNKS)) + "."
    body = {
        "id": "chatcmpl-bench0000000000000000000001",
        "object": "chat.completion",
        "created": _CREATED,
        "model": _UPSTREAM_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(),
        "system_fingerprint": "fp_bench0001",
    }
    return _compact(body)


def stream_events() -> list[bytes]:
    """The SSE events of the streamed answer, each ``data: ...\\n\\n``, unpadded."""
    chunks = []
    for i in range(CONTENT_CHUNKS):
        delta: dict[str, str] = {"content": ("" if i == 0 else " ") + _WORDS[i % len(_WORDS)]}
        if i == 0:
            delta = {"role": "assistant", **delta}
        chunks.append(_chunk({"index": 0, "delta": delta, "finish_reason": None}))
    chunks.append(_chunk({"index": 0, "delta": {}, "finish_reason": "stop"}))
    chunks.append(_chunk(None))
    return [b"data: " + chunk + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]


def gemini_stream_events() -> list[bytes]:
    """The answer as Gemini streams it: text parts, the last event with the finish reason
    and the usage; no sentinel."""
    events = []
    for i in range(CONTENT_CHUNKS):
        text = ("" if i == 0 else " ") + _WORDS[i % len(_WORDS)]
        candidate: dict[str, object] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        doc: dict[str, object] = {"candidates": [candidate], "modelVersion": "gemini-bench"}
        doc["responseId"] = "bench-gemini-0001"
        if i == CONTENT_CHUNKS - 1:
            candidate["finishReason"] = "STOP"
            doc["usageMetadata"] = {
                "promptTokenCount": 41,
                "candidatesTokenCount": CONTENT_CHUNKS,
                "totalTokenCount": 41 + CONTENT_CHUNKS,
            }
        events.append(b"data: " + _compact(doc) + b"\n\n")
    return events


def padded_stream(events: list[bytes] | None = None) -> tuple[bytes, int]:
    """The stream (by default the OpenAI one) with each JSON event padded (JSON allows
    trailing spaces) to one size, so a fixed write size is one event per write; returns the
    body and that size."""
    events = stream_events() if events is None else events
    size = max(len(event) for event in events)

    def pad(event: bytes) -> bytes:
        if event.startswith(b"data: [DONE]"):  # the sentinel stays exact, as clients compare it
            return event
        return event[:-2] + b" " * (size - len(event)) + b"\n\n"

    return b"".join(pad(event) for event in events), size


def _chunk(choice: dict[str, object] | None) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-bench0000000000000000000002",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": _UPSTREAM_MODEL,
        "system_fingerprint": "fp_bench0001",
        "choices": [] if choice is None else [choice],
    }
    if choice is None:
        body["usage"] = _usage()
    return _compact(body)


def _usage() -> dict[str, object]:
    return {
        "prompt_tokens": 41,
        "completion_tokens": CONTENT_CHUNKS,
        "total_tokens": 41 + CONTENT_CHUNKS,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _compact(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


_MOCK_HTTP = """\
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    # A fixed-size response header ("Server: nginx", no version), for limit_rate_after.
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {completion_path} {{
            default_type application/json;
            return 200 '{completion}';
        }}
        # An OTLP/HTTP trace receiver that accepts every export and discards it (the
        # floopy-otel target): an empty body is an empty ExportTraceServiceResponse.
        location = /v1/traces {{
            client_max_body_size 64m;
            default_type application/x-protobuf;
            return 200 '';
        }}
{stream_locations}    }}
"""

_STREAM_LOCATION = """\
        location = {path} {{
            alias {{prefix}}/{file};
            default_type text/event-stream;
            # The static handler refuses POST; its error page is the same file, fetched by GET.
            error_page 405 =200 $uri;
            # A never-matching filter drops Content-Length: the body goes out chunked, as
            # providers stream.
            sub_filter_types text/event-stream;
            sub_filter '<never-in-a-stream>' '';
{pacing}        }}
"""


def pacing(write_size: int, rate: int | str, *, header_bytes: int = 0) -> str:
    """A stream location's directives to send the body ``write_size`` bytes a write, at
    ``rate`` bytes a second (nginx's ``k`` allowed), the first ``header_bytes`` (the
    response header, a write of its own) exempt so that the first write does not wait."""
    lines = [
        "sendfile off;",
        f"output_buffers 1 {write_size};",
        "postpone_output 0;",
        f"limit_rate {rate};",
    ]
    if header_bytes:
        lines.append(f"limit_rate_after {header_bytes};")
    return "".join(f"            {line}\n" for line in lines)


class NginxMock(NginxProcess):
    """nginx as an OpenAI-compatible provider, answering from memory: ``completion`` at
    ``COMPLETION_PATH``, and ``stream`` sent chunked at each path of ``streams``, with that
    path's ``pacing()`` directives ("" for as fast as nginx sends); ``others`` maps more paths
    to a body of their own and its pacing."""

    def __init__(
        self,
        prefix: Path,
        completion: bytes,
        stream: bytes,
        streams: dict[str, str],
        others: dict[str, tuple[bytes, str]] | None = None,
    ) -> None:
        port = free_port()
        self.others = others or {}
        files = {path: "stream.sse" for path in streams}
        files.update({path: f"stream-{n}.sse" for n, path in enumerate(self.others)})
        pacings = {**streams, **{path: paced for path, (_, paced) in self.others.items()}}
        locations = "".join(
            _STREAM_LOCATION.format(path=path, pacing=paced, file=files[path])
            for path, paced in pacings.items()
        )
        http = _MOCK_HTTP.format(
            port=port,
            completion_path=COMPLETION_PATH,
            completion=nginx_string(completion.decode()),
            stream_locations=locations,
        )
        super().__init__(prefix, http, port)
        self.completion = completion
        self.stream = stream

    def __enter__(self) -> Self:
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "stream.sse").write_bytes(self.stream)
        for n, (body, _) in enumerate(self.others.values()):
            (self.prefix / f"stream-{n}.sse").write_bytes(body)
        super().__enter__()
        return self


class MockProvider(NginxMock):
    """``with MockProvider(prefix, chunk_interval_ms) as mock:`` serves both routes."""

    def __init__(self, prefix: Path, chunk_interval_ms: int) -> None:
        stream, self.event_size = padded_stream()
        # One event per write, then a pause of size * 1000 / rate ms (whole ms): pick the rate
        # for the interval.
        rate = self.event_size * 1000 // max(1, chunk_interval_ms)
        paced = pacing(self.event_size, rate, header_bytes=STREAM_HEADER_BYTES)
        gemini, gemini_size = padded_stream(gemini_stream_events())
        gemini_rate = gemini_size * 1000 // max(1, chunk_interval_ms)
        gemini_paced = pacing(gemini_size, gemini_rate, header_bytes=STREAM_HEADER_BYTES)
        others = {GEMINI_STREAM_PATH: (gemini, gemini_paced)}
        super().__init__(prefix, completion(), stream, {STREAM_PATH: paced}, others)


_PROXY_HTTP = """\
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    upstream provider {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://provider;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Relay streams as they come, as every gateway here does.
            proxy_buffering off;
        }}
    }}
"""


class NginxProxy:
    """nginx with ``proxy_pass`` to the mock: the least any proxy can add on this machine."""

    def __init__(self, prefix: Path, upstream_port: int) -> None:
        self.port = free_port()
        http = _PROXY_HTTP.format(port=self.port, upstream_port=upstream_port)
        self._nginx = NginxProcess(prefix, http, self.port)
        self.url = self._nginx.url
        self.pid = 0

    def __enter__(self) -> NginxProxy:
        self._nginx.__enter__()
        self.pid = self._nginx.pid
        return self

    def __exit__(self, *exc: object) -> None:
        self._nginx.__exit__(*exc)
