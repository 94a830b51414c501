"""Which upstream HTTP client should carry the gateway's hot path? This measures it.

Each client sits in a minimal RSGI proxy (proxy_*.py) under granian (one worker, uvloop) and
forwards a chat completion to an nginx mock on loopback; wrk drives it at several connection
counts, and nginx is also measured directly as the ceiling. Every configuration runs
`--repeats` times in separate rounds and the best is kept, so a burst of load from something
else on the machine costs one round, not the verdict. Each run records the 1-minute load.

    .venv/bin/python benches/load/client/run.py            # what `make bench-client` runs
    .venv/bin/python benches/load/client/run.py --clients aiohttp,rust --duration 5

Writes benches/results/client.json and client.png; benches/RESULTS.md is written by hand.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
# Run as a script: the sibling modules and benches/load/common are not an installed package.
sys.path[:0] = [str(HERE), str(HERE.parent)]

import report  # noqa: E402
from common import wrk  # noqa: E402
from common.cpu import ForeignCpu, tree_busy  # noqa: E402
from common.machine import Quiet, load_1m, machine, tool_version  # noqa: E402
from common.nginx import free_port, stop_process, wait_for_port  # noqa: E402
from mock_provider import COMPLETION_PATH, STREAM_PATH, NginxMock  # noqa: E402
from nginx_mock import FIXTURES, PACED_PATH, fixture_mock  # noqa: E402

ROOT = HERE.parents[2]
RESULTS = ROOT / "benches" / "results"
CRATE = HERE / "rust_client" / "Cargo.toml"
# "nginx" is the mock measured without a proxy: the ceiling every client is compared with.
PROXIES = {
    "nginx": None,
    "aiohttp": "proxy_aiohttp:app",
    "httpx": "proxy_httpx:app",
    "rust": "proxy_rust:app",
    "rust-pipe": "proxy_rust_pipe:app",
    # The gateway's own client (rust/upstream behind floopy.upstream), the prototype's heir.
    "native": "proxy_native:app",
}


def main() -> None:
    args = parse_args()
    require_tools()
    if args.build or not importlib.util.find_spec("floopy_bench_client"):
        build_native()
    quiet = Quiet(args.max_load, args.max_wait)
    quiet.wait()
    meta = describe(args, quiet)
    runs = measure_all(args, quiet)
    best = best_runs(runs, args)
    print()
    print(report.table(best))
    report.write_json(args.json, meta, runs, best)
    cpu, nproc = meta["machine"]["cpu"], meta["machine"]["nproc"]
    title = f"{cpu} x{nproc}: wrk {args.duration}s per run, best of {args.repeats}"
    report.write_chart(args.png, best, title)
    print(f"\nwrote {shown(args.json)} and {shown(args.png)}")


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", default=",".join(PROXIES), help="comma-separated, of: " + ", ".join(PROXIES)
    )
    parser.add_argument(
        "--connections", default="1,8,32", help="wrk -c values for the JSON response"
    )
    parser.add_argument(
        "--stream-connections", default="1,8,32", help="wrk -c values for the SSE stream ('' skips)"
    )
    parser.add_argument(
        "--paced-connections", default="32", help="wrk -c values for the trickled stream ('' skips)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds of discarded load per proxy start"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="rounds; the best of them is reported"
    )
    parser.add_argument(
        "--max-load", type=float, default=0.7, help="wait until the 1-minute load is below this"
    )
    parser.add_argument(
        "--max-wait", type=int, default=1200, help="seconds of waiting for that, in total"
    )
    parser.add_argument("--build", action="store_true", help="rebuild the Rust bench client first")
    parser.add_argument("--json", type=Path, default=RESULTS / "client.json")
    parser.add_argument("--png", type=Path, default=RESULTS / "client.png")
    args = parser.parse_args()
    args.clients = [c for c in args.clients.split(",") if c]
    unknown = set(args.clients) - set(PROXIES)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    args.plan = [("json", int(c)) for c in args.connections.split(",") if c]
    args.plan += [("stream", int(c)) for c in args.stream_connections.split(",") if c]
    args.plan += [("paced", int(c)) for c in args.paced_connections.split(",") if c]
    args.json, args.png = args.json.resolve(), args.png.resolve()
    return args


def require_tools() -> None:
    missing = [
        tool
        for tool in ("nginx", "wrk")
        if not shutil.which(tool, path=os.environ["PATH"] + ":/usr/sbin")
    ]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `bash scripts/system-deps.sh bench`")


def build_native() -> None:
    maturin = Path(sys.executable).with_name("maturin")
    env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
    subprocess.run(
        [str(maturin), "develop", "--release", "-q", "-m", str(CRATE)], check=True, env=env
    )
    importlib.invalidate_caches()


def measure_all(args: argparse.Namespace, quiet: Quiet) -> list[dict[str, Any]]:
    request = (FIXTURES / "chat_request.json").read_bytes().strip()
    streamed = {**json.loads(request), "stream": True}
    stream_request = json.dumps(streamed, separators=(",", ":")).encode()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="floopy-bench-client-") as tmp:
        scratch = Path(tmp)
        scripts = {
            "json": wrk.write_script(scratch, "json", COMPLETION_PATH, request),
            "stream": wrk.write_script(scratch, "stream", STREAM_PATH, stream_request),
            "paced": wrk.write_script(scratch, "paced", PACED_PATH, stream_request),
        }
        with fixture_mock(scratch / "nginx") as mock:
            for round_no in range(1, args.repeats + 1):
                for client in args.clients:
                    quiet.wait()
                    print(f"round {round_no}/{args.repeats}: {client}", flush=True)
                    module = PROXIES[client]
                    if module is None:
                        runs += measure(client, round_no, mock, scripts, args)
                        continue
                    with Granian(module, mock.url, scratch / f"{client}.log") as proxy:
                        check(proxy.url, mock, request)
                        for mode in {m for m, _ in args.plan}:
                            wrk.run(proxy.url, scripts[mode], 32, args.warmup)
                        runs += measure(client, round_no, proxy, scripts, args)
    return runs


class Server(Protocol):
    url: str
    pid: int


def measure(
    client: str, round_no: int, server: Server, scripts: dict[str, Path], args: argparse.Namespace
) -> list[dict[str, Any]]:
    runs = []
    for mode, connections in args.plan:
        load, foreign, server_cpu = load_1m(), ForeignCpu(), tree_busy(server.pid)
        result = wrk.run(server.url, scripts[mode], connections, args.duration)
        # CPU per request of the server's whole tree (granian, its worker, the tokio thread):
        # a client that only moved work to another thread would show it here.
        cpu_us = (tree_busy(server.pid) - server_cpu) * 1e6 / max(1, result.requests)
        row = {"client": client, "mode": mode, "connections": connections, "round": round_no}
        row |= {"load_1m": load, "other_cpu": round(foreign.cores(), 3)}
        row |= {"server_cpu_us_per_req": round(cpu_us, 1)} | result.to_dict()
        print(
            f"  {mode:<6} -c{connections:<3} {result.rps:>9.0f} req/s  "
            f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  cpu/req {cpu_us:6.1f} us  "
            f"other cpu {row['other_cpu']:.2f}  errors {result.non_2xx + result.socket_errors}",
            flush=True,
        )
        runs.append(row)
    return runs


# One worker, so the client and not the process count is what differs between runs.
GRANIAN = ["--interface", "rsgi", "--loop", "uvloop", "--workers", "1"]
GRANIAN += ["--no-ws", "--log-level", "warning"]


class Granian:
    """One granian worker serving a proxy module on a free loopback port."""

    def __init__(self, module: str, upstream: str, log: Path) -> None:
        self.module, self.upstream, self.log = module, upstream, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Granian:
        args = [sys.executable, "-m", "granian", *GRANIAN, "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--working-dir", str(HERE), self.module]
        env = {**os.environ, "FLOOPY_BENCH_UPSTREAM": self.upstream}
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.pid = self._proc.pid
        try:
            wait_for_port(self.port, self._proc, timeout=30)
        except RuntimeError:
            self.__exit__()
            raise RuntimeError(f"granian did not start:\n{self.log.read_text()[-2000:]}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self._proc)  # granian stops its worker on SIGTERM


def check(url: str, mock: NginxMock, request: bytes) -> None:
    """Speed means nothing unless the proxy relays the upstream bytes unchanged."""
    bodies = {COMPLETION_PATH: mock.completion, STREAM_PATH: mock.stream, PACED_PATH: mock.stream}
    for path, expected in bodies.items():
        post = urllib.request.Request(url + path, data=request, method="POST")
        with urllib.request.urlopen(post, timeout=10) as resp:
            body = resp.read()
        if resp.status != 200 or body != expected:
            raise RuntimeError(
                f"{url}{path}: status {resp.status}, {len(body)} bytes differ from the mock's"
            )


def best_runs(runs: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    best: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in runs:
        key = (row["client"], row["mode"], row["connections"])
        if key not in best or row["rps"] > best[key]["rps"]:
            best[key] = row
    order = {(mode, c): i for i, (mode, c) in enumerate(args.plan)}
    return sorted(
        best.values(),
        key=lambda r: (order[(r["mode"], r["connections"])], args.clients.index(r["client"])),
    )


def describe(args: argparse.Namespace, quiet: Quiet) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "png", "plan")},
        "load_1m_at_start": load_1m(),
        "waited_for_load_s": quiet.waited,
        "machine": machine(),
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("granian", "aiohttp", "httpx", "uvloop"):
        found[package] = importlib.metadata.version(package)
    found["nginx"] = tool_version(["nginx", "-v"]).split("/")[-1]
    found["wrk"] = tool_version(["wrk", "-v"]).split()[1]
    found["rustc"] = tool_version(["rustc", "--version"]).split()[1]
    lock = CRATE.with_name("Cargo.lock")
    if lock.exists():
        for crate in ("pyo3", "pyo3-async-runtimes", "tokio", "hyper", "hyper-util"):
            match = re.search(
                rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock.read_text()
            )
            if match:
                found[crate] = match.group(1)
    return found


if __name__ == "__main__":
    main()
