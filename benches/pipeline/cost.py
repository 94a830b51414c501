"""What one chat request costs the gateway's Python request path, counted in instructions.

An in-process driver sends chat requests through ``Gateway.__rsgi__`` with a stand-in RSGI
scope and protocol (echo provider, logging off, a real API key): every stage runs, nothing
waits on a network. Timing it is at the mercy of whatever else the machine runs, so the
figure that counts is valgrind's instruction count: the driver runs under
``valgrind --tool=callgrind`` with 0 and with N requests, and the difference over N is the
cost of one request, the same on every run of the same code.

    .venv/bin/python benches/pipeline/cost.py                 # instructions per request
    .venv/bin/python benches/pipeline/cost.py --source DIR    # another tree's python/ dir
    .venv/bin/python benches/pipeline/cost.py --time          # microseconds, for a quick look
    .venv/bin/python benches/pipeline/cost.py --cache miss    # the cache on: every request new
    .venv/bin/python benches/pipeline/cost.py --cache hit     # the cache on: every request a hit
    .venv/bin/python benches/pipeline/cost.py --log           # logging on (rows to the journal)
    .venv/bin/python benches/pipeline/cost.py --otel          # trace export on, to a local sink
    .venv/bin/python benches/pipeline/cost.py --log --otel    # both: the export's own cost

With ``--otel`` the trace export posts to a sink in this (uncounted) process that answers
every POST with 200, and the driver closes the worker after its requests, so the exporter
sends everything queued inside the counted run: its thread's encoding and POSTs are part of
the figure, which is then also given by thread (the event loop's, and the rest).

``--source`` points at an exported commit (``git archive REF python | tar -x -C DIR``, plus
a native module built for it) to compare two commits.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

KEY = "fpk_pipeline_cost_0123456789abcdef"
BODY = b'{"model": "echo", "messages": [{"role": "user", "content": "hello there, how are you?"}]}'
# With --cache miss, each request's prompt ends in its own number, the length kept.
NUMBERED = b'{"model": "echo", "messages": [{"role": "user", "content": "hello there, %012d"}]}'


CACHE_VAR = "FLOOPY_BENCH_CACHE"  # tells the driver the --cache case
CLOSE_VAR = "FLOOPY_BENCH_CLOSE"  # tells the driver to close the worker at the end (--otel)


class Headers(dict[str, str]):
    """granian's header map, as far as the gateway uses it."""

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(super().keys())


class Scope:
    method, path, client = "POST", "/v1/chat/completions", "127.0.0.1:50000"
    headers = Headers(
        {
            "authorization": f"Bearer {KEY}",
            "content-type": "application/json",
            "content-length": str(len(BODY)),
        }
    )


class Proto:
    status = 0
    numbered = False  # --cache miss: a new prompt per request
    sent = 0

    async def __call__(self) -> bytes:
        if not self.numbered:
            return BODY
        Proto.sent += 1
        return NUMBERED % Proto.sent

    def response_bytes(self, status: int, headers: object, body: bytes) -> None:
        self.status = status


def settings_file(
    directory: Path, cache: bool = False, log: bool = False, otel: str | None = None
) -> Path:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    path = directory / "settings.py"
    path.write_text(
        f"DATA_DIR = {str(directory / 'data')!r}\nLOGGING_ENABLED = {log}\n"
        f"API_KEYS = [{{'id': 'k', 'hash': 'sha256:{digest}', 'organization': 'o'}}]\n"
        f"CACHE_ENABLED = {cache}\n"
        "CACHE_SEMANTIC_ENABLED = False\n"  # the exact tier's cost; the semantic tier embeds
        f"OTEL_ENDPOINT = {otel!r}\n"
        # Batches sent when full only (and the rest at close), as under load; valgrind's
        # slowness would otherwise make the timer send a few requests at a time.
        "OTEL_BATCH_INTERVAL = 3600.0\n"
        "OTEL_QUEUE_SIZE = 1 << 20\n"
    )
    return path


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that reads each export and answers 200 with an empty body."""

    protocol_version = "HTTP/1.1"  # keeps the exporter's connection alive, as a collector
    posts = 0
    spans_bytes = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Sink.posts += 1
        Sink.spans_bytes += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def sink() -> Iterator[str]:
    """The sink's URL, served from a thread of this process (which valgrind does not count)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def drive(requests: int) -> float:
    from floopy.app import Gateway

    app, scope, proto = Gateway(), Scope(), Proto()
    proto.numbered = os.environ.get(CACHE_VAR) == "miss"
    await app.__rsgi__(scope, proto)  # the worker starts on the first request
    assert proto.status == 200, proto.status
    started = time.perf_counter()
    for _ in range(requests):
        await app.__rsgi__(scope, proto)  # type: ignore[arg-type]
    if os.environ.get(CLOSE_VAR):
        await app.worker.close()  # the exporter sends what is queued before it stops
    return (time.perf_counter() - started) / max(requests, 1) * 1e6


def counted(requests: int, env: dict[str, str]) -> tuple[int, int]:
    """Instructions in all, and in the main thread (the event loop's) alone."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                f"--callgrind-out-file={out}/cg",
                sys.executable,
                __file__,
                "--run",
                str(requests),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        # One file per thread, cg-01 the main thread's (and an empty cg beside them).
        totals = {path.name: _totals(path) for path in Path(out).glob("cg-*")}
    assert "cg-01" in totals, "callgrind wrote no profile of the main thread"
    return sum(totals.values()), totals["cg-01"]


def _totals(path: Path) -> int:
    text = path.read_text(errors="replace")
    match = re.search(r"^totals: (\d+)", text, re.MULTILINE) or re.search(
        r"^summary: (\d+)", text, re.MULTILINE
    )
    assert match, f"callgrind wrote no totals in {path.name}"
    return int(match[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--source", help="a python/ directory to import floopy from")
    parser.add_argument("--time", action="store_true", help="time it instead (noisy)")
    parser.add_argument(
        "--cache",
        choices=("off", "miss", "hit"),
        default="off",
        help="off (the default), or on with a new prompt per request, or with one repeated",
    )
    parser.add_argument(
        "--log",
        action="store_true",
        help="logging on: each request's rows written to the journal (no store runs here)",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="trace export on, to a sink in this process; its thread's work is counted",
    )
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        import uvloop

        uvloop.run(drive(args.run))
        return
    with tempfile.TemporaryDirectory() as scratch, _maybe_sink(args.otel) as endpoint:
        settings = settings_file(
            Path(scratch), cache=args.cache != "off", log=args.log, otel=endpoint
        )
        env = {**os.environ, "FLOOPY_SETTINGS": str(settings), CACHE_VAR: args.cache}
        # numpy's BLAS threads spin a while after they start, for as long as the wall clock
        # says: under valgrind that is noise of thousands of instructions a request.
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        if endpoint is not None:
            env[CLOSE_VAR] = "1"
        if args.source:
            env["PYTHONPATH"] = args.source
        if args.time:
            os.environ.update(env)
            if args.source:
                sys.path.insert(0, args.source)
            import uvloop

            print(f"{uvloop.run(drive(args.requests)):.1f} µs per request")
            return
        empty, empty_main = counted(0, env)
        Sink.posts = Sink.spans_bytes = 0  # the run with requests only
        full, full_main = counted(args.requests, env)
    print(f"{(full - empty) / args.requests:,.0f} instructions per request")
    if args.otel:
        main_thread = (full_main - empty_main) / args.requests
        others = (full - full_main - empty + empty_main) / args.requests
        print(f"  event loop thread {main_thread:,.0f}, other threads {others:,.0f}")
        print(f"  sink: {Sink.posts} exports, {Sink.spans_bytes:,} bytes in the run with requests")


@contextmanager
def _maybe_sink(on: bool) -> Iterator[str | None]:
    if not on:
        yield None
        return
    with sink() as url:
        yield url


if __name__ == "__main__":
    main()
