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
import time
from pathlib import Path

KEY = "fpk_pipeline_cost_0123456789abcdef"
BODY = b'{"model": "echo", "messages": [{"role": "user", "content": "hello there, how are you?"}]}'
# With --cache miss, each request's prompt ends in its own number, the length kept.
NUMBERED = b'{"model": "echo", "messages": [{"role": "user", "content": "hello there, %012d"}]}'


CACHE_VAR = "FLOOPY_BENCH_CACHE"  # tells the driver the --cache case


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


def settings_file(directory: Path, cache: bool = False, log: bool = False) -> Path:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    path = directory / "settings.py"
    path.write_text(
        f"DATA_DIR = {str(directory / 'data')!r}\nLOGGING_ENABLED = {log}\n"
        f"API_KEYS = [{{'id': 'k', 'hash': 'sha256:{digest}', 'organization': 'o'}}]\n"
        f"CACHE_ENABLED = {cache}\n"
        "CACHE_SEMANTIC_ENABLED = False\n"  # the exact tier's cost; the semantic tier embeds
    )
    return path


async def drive(requests: int) -> float:
    from floopy.app import Gateway

    app, scope, proto = Gateway(), Scope(), Proto()
    proto.numbered = os.environ.get(CACHE_VAR) == "miss"
    await app.__rsgi__(scope, proto)  # the worker starts on the first request
    assert proto.status == 200, proto.status
    started = time.perf_counter()
    for _ in range(requests):
        await app.__rsgi__(scope, proto)  # type: ignore[arg-type]
    return (time.perf_counter() - started) / max(requests, 1) * 1e6


def counted(requests: int, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
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
        text = Path(out, "cg").read_text(errors="replace")
    match = re.search(r"^totals: (\d+)", text, re.MULTILINE) or re.search(
        r"^summary: (\d+)", text, re.MULTILINE
    )
    assert match, "callgrind wrote no totals"
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
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        import uvloop

        uvloop.run(drive(args.run))
        return
    with tempfile.TemporaryDirectory() as scratch:
        settings = settings_file(Path(scratch), cache=args.cache != "off", log=args.log)
        env = {**os.environ, "FLOOPY_SETTINGS": str(settings), CACHE_VAR: args.cache}
        if args.source:
            env["PYTHONPATH"] = args.source
        if args.time:
            os.environ.update(env)
            if args.source:
                sys.path.insert(0, args.source)
            import uvloop

            print(f"{uvloop.run(drive(args.requests)):.1f} µs per request")
            return
        empty, full = counted(0, env), counted(args.requests, env)
    print(f"{(full - empty) / args.requests:,.0f} instructions per request")


if __name__ == "__main__":
    main()
