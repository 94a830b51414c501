"""The load benchmark: Floopy beside direct calls, nginx and LiteLLM, in one run.

One nginx mock provider on loopback (mock.py) answers every target. For each target in turn
(targets.py) the bench checks that it relays the mock's answer, warms it up, then measures:

1. streaming: 50-chunk streams, paced like a model, through ``--stream-connections``
   concurrent connections (oha, closed loop): time to first byte and total time; for the
   gateways also the same stream asked for on ``/v1/messages`` (OpenAI chunks translated
   into Anthropic events) and a Gemini stream translated into OpenAI chunks (``direct``
   runs the mock's Gemini route as their reference);
2. latency at fixed offered rates (oha, open loop with latency correction: no coordinated
   omission), p50, p90 and p99, and the overhead over calling the mock directly;
3. maximum throughput: wrk, ``--connections`` connections (closed loop);
4. the peak resident memory of the target's process tree, and for every run the CPU the
   target used per request and what processes outside the bench took meanwhile.

Then Floopy with logging on, and with it off, runs under load for ``--soak-seconds`` (RSS
sampled as it goes), and with ``--profile`` py-spy records its worker under load. Before
anything is measured the bench waits until the 1-minute load is below ``--max-load``.

    .venv/bin/python benches/load/run.py            # what `make bench-load` runs
    .venv/bin/python benches/load/run.py --quick    # seconds per run, for development

Writes benches/results/load.json, load.md (the tables), load_latency.png and load_rss.png.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run as a script: the sibling modules are not a package

import baseline  # noqa: E402
import litellm_proxy  # noqa: E402
import mock_provider as mock  # noqa: E402
import oha  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402
from common import wrk  # noqa: E402
from common.cpu import ForeignCpu, tree_busy  # noqa: E402
from common.machine import Quiet, load_1m, machine, tool_version  # noqa: E402
from common.memory import RssSampler, tree_peak_rss_mib, tree_pids  # noqa: E402
from targets import Direct, Floopy, NginxGateway, Server, Target  # noqa: E402

ROOT = HERE.parents[1]
RESULTS = ROOT / "benches" / "results"
TARGETS = (
    "direct",
    "nginx",
    "floopy",
    "floopy-otel",
    "floopy-nolog",
    "floopy-aiohttp",
    "floopy-python-relay",
    "litellm",
)
BASELINE_TARGETS = ("floopy-baseline", "floopy-nolog-baseline")  # with --baseline REF
PROFILED = "floopy"


def main() -> None:
    args = parse_args()
    versions = prepare_tools(args)
    quiet = Quiet(args.max_load, args.max_wait)
    quiet.wait()
    meta = describe(args, quiet, versions)
    results: dict[str, Any] = {"meta": meta, "targets": {}}
    with tempfile.TemporaryDirectory(prefix="floopy-bench-load-") as tmp:
        bench = Bench(args, Path(tmp), quiet)
        with mock.MockProvider(bench.scratch / "mock", args.chunk_interval_ms) as provider:
            bench.provider = provider
            for name in args.targets:
                results["targets"][name] = bench.measure_target(name)
            if args.soak_seconds:
                results["soaks"] = [bench.soak(name) for name in args.soak_targets]
            if args.profile:
                results["profile"] = bench.profile(args.profile)
    meta["max_other_cores"] = bench.max_other_cores
    if args.rerun:
        results = merged_into_previous(args, results)
    write_outputs(args, results)


def merged_into_previous(args: argparse.Namespace, rerun: dict[str, Any]) -> dict[str, Any]:
    """The previous results of ``--out`` with the targets (and soaks, profile) measured now
    in their place, the rerun noted in the meta data: to redo a run that other work on the
    machine disturbed without redoing the rest."""
    previous: dict[str, Any] = json.loads((RESULTS / args.out).with_suffix(".json").read_text())
    previous["targets"].update(rerun["targets"])
    for key in ("soaks", "profile"):
        if key in rerun:
            previous[key] = rerun[key]
    meta = rerun["meta"]
    note = {k: meta[k] for k in ("date", "commit", "command", "load_1m_at_start")}
    previous["meta"].setdefault("reruns", []).append(
        note | {"targets": list(rerun["targets"]), "max_other_cores": meta["max_other_cores"]}
    )
    return previous


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--targets", default=",".join(TARGETS), help="comma-separated, of: " + ", ".join(TARGETS))
    add("--quick", action="store_true", help="short runs, no soak: checks the harness")
    add("--connections", type=int, default=32, help="wrk connections, closed loop")
    add("--seconds", type=int, default=15, help="seconds of the closed-loop run")
    add("--rates", default="100,500,1000,2000", help="offered requests/s, open loop")
    add("--rate-seconds", type=int, default=15, help="seconds per offered rate")
    add("--open-connections", type=int, default=64, help="oha connections, open loop")
    add("--stream-connections", type=int, default=16, help="concurrent streams")
    add("--stream-seconds", type=int, default=15, help="seconds of the streaming run")
    add("--chunk-interval-ms", type=int, default=10, help="pause between stream chunks")
    add("--warmup", type=int, default=3, help="seconds of discarded load per target")
    add("--soak-seconds", type=int, default=300, help="seconds of each RSS run; 0 skips")
    add("--soak-targets", default="floopy,floopy-nolog", help="RSS runs, of the floopy targets")
    add("--soak-interval", type=float, default=5.0, help="seconds between RSS samples")
    add("--profile", default="", help="py-spy the floopy worker under load; file name label")
    add("--profile-seconds", type=int, default=20, help="seconds per py-spy recording")
    add("--litellm-version", default=litellm_proxy.DEFAULT_VERSION)
    add("--max-load", type=float, default=0.5, help="wait until the 1-minute load is below")
    add("--max-wait", type=int, default=1200, help="seconds of waiting for quiet, in total")
    add("--out", help="name of the result files in benches/results/ (load; quick: load_quick)")
    add("--rerun", action="store_true", help="replace these targets in the existing --out")
    add(
        "--baseline",
        help="an earlier commit, benched beside the checkout: its targets are "
        + ", ".join(BASELINE_TARGETS),
    )
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    if args.baseline and not set(args.targets) & set(BASELINE_TARGETS):
        args.targets += list(BASELINE_TARGETS)
    if set(args.targets) & set(BASELINE_TARGETS) and not args.baseline:
        parser.error("the baseline targets need --baseline REF")
    unknown = set(args.targets) - set(TARGETS) - set(BASELINE_TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if "floopy-aiohttp" in args.targets and not has_upstream_client_setting():
        print("floopy-aiohttp skipped: this tree has no UPSTREAM_CLIENT setting")
        args.targets.remove("floopy-aiohttp")
    args.rates = [float(r) for r in args.rates.split(",") if r]
    args.soak_targets = [t for t in args.soak_targets.split(",") if t]
    if not set(args.soak_targets) <= {"floopy", "floopy-nolog", "floopy-aiohttp"}:
        parser.error("--soak-targets takes floopy targets only")
    # A quick check must never overwrite the results RESULTS.md shows.
    args.out = args.out or ("load_quick" if args.quick else "load")
    if args.quick:
        args.seconds = args.rate_seconds = args.stream_seconds = 3
        args.warmup, args.soak_seconds, args.max_wait = 1, 0, 0
        args.profile_seconds = min(args.profile_seconds, 5)
    return args


def has_upstream_client_setting() -> bool:
    from floopy.settings import defaults

    return hasattr(defaults, "UPSTREAM_CLIENT")


def prepare_tools(args: argparse.Namespace) -> dict[str, str]:
    """Installs what is missing (Debian packages are scripts/system-deps.sh's job) and
    returns the versions of everything measured or measuring."""
    missing = [t for t in ("nginx", "wrk") if not shutil.which(t, path=_path_with_sbin())]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `bash scripts/system-deps.sh bench`")
    versions = {
        "floopy": _floopy_version(),
        "python": platform.python_version(),
        "granian": importlib.metadata.version("granian"),
        "nginx": tool_version(["nginx", "-v"]).split("/")[-1],
        "wrk": tool_version(["wrk", "-v"]).split()[1],
        "oha": oha.ensure_installed(),
    }
    if "litellm" in args.targets:
        versions["litellm"] = litellm_proxy.ensure_installed(args.litellm_version)
    if args.profile:
        versions["py-spy"] = profiling.ensure_installed()
    return versions


def _path_with_sbin() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin"


def _floopy_version() -> str:
    from floopy import __version__

    return str(__version__)


class Bench:
    """The scratch directory, the request bodies and the mock, shared by every target."""

    def __init__(self, args: argparse.Namespace, scratch: Path, quiet: Quiet) -> None:
        self.args = args
        self.scratch = scratch
        self.quiet = quiet
        self.provider: mock.MockProvider
        self.max_other_cores = 0.0
        self.completion_body = scratch / "completion.json"
        self.completion_body.write_bytes(mock.chat_request())
        self.stream_body = scratch / "stream.json"
        self.stream_body.write_bytes(mock.chat_request(model=mock.STREAM_MODEL, stream=True))
        self.messages_body = scratch / "messages.json"
        self.messages_body.write_bytes(mock.messages_request())
        self.gemini_body = scratch / "gemini.json"
        self.gemini_body.write_bytes(mock.chat_request(model=mock.GEMINI_MODEL, stream=True))
        self.baseline = baseline.export(args.baseline, scratch) if args.baseline else None

    def server(self, name: str) -> Server:
        args, provider = self.args, self.provider
        if name == "direct":
            return Direct(provider)
        if name == "nginx":
            return NginxGateway(self.scratch, provider)
        if name == "litellm":
            return litellm_proxy.LiteLLM(self.scratch, provider.url, args.litellm_version)
        logging = not name.startswith("floopy-nolog")
        client = "aiohttp" if name == "floopy-aiohttp" else None
        source = self.baseline if name.endswith(baseline.SUFFIX) else None
        extra: dict[str, str] | None = None
        if name == "floopy-python-relay":
            extra = {"STREAM_RELAY": "'python'"}
        elif name == "floopy-otel":
            # The export's receiver is the mock's nginx, which accepts and discards.
            extra = {"OTEL_ENDPOINT": repr(provider.url)}
        return Floopy(
            name,
            self.scratch,
            provider.url,
            logging=logging,
            upstream_client=client,
            source=source,
            extra=extra,
        )

    def measure_target(self, name: str) -> dict[str, Any]:
        self.quiet.wait()
        print(f"\n== {name}", flush=True)
        with self.server(name) as server:
            target = server.target
            check(target, self.completion_body, self.stream_body)
            self.warm_up(target)
            data: dict[str, Any] = {"version": target.version}
            data["stream"] = self.stream_run(target)
            data.update(self.translated_streams(target))
            data["open"] = [self.open_run(target, rate) for rate in self.args.rates]
            data["closed"] = self.closed_run(target)
            data["peak_rss_mib"] = round(tree_peak_rss_mib(target.pid), 1)
            data["processes"] = len(tree_pids(target.pid))
            print(f"  peak RSS {data['peak_rss_mib']:.0f} MiB in {data['processes']} processes")
        return data

    def warm_up(self, target: Target) -> None:
        script = self._wrk_script(target)
        wrk.run(target.url, script, self.args.connections, self.args.warmup)
        oha.run(
            target.url + target.stream_path,
            self.stream_body,
            target.request_headers(),
            seconds=self.args.warmup,
            connections=4,
            rate=None,
        )

    def translated_streams(self, target: Target) -> dict[str, Any]:
        """The streams a gateway translates: ``/v1/messages`` over the OpenAI stream, and
        Gemini's; ``direct`` runs the mock's Gemini route (the reference for both)."""
        if target.name == "direct":
            return {
                "stream_gemini": self.stream_run(
                    target, mock.GEMINI_STREAM_PATH, self.gemini_body, "gemini"
                )
            }
        if not target.name.startswith("floopy"):
            return {}
        check_translated(target, self.messages_body, self.gemini_body)
        return {
            "stream_messages": self.stream_run(
                target, "/v1/messages", self.messages_body, "messages"
            ),
            "stream_gemini": self.stream_run(
                target, target.completion_path, self.gemini_body, "gemini"
            ),
        }

    def stream_run(
        self,
        target: Target,
        path: str | None = None,
        body: Path | None = None,
        label: str = "stream",
    ) -> dict[str, Any]:
        def run() -> oha.OhaResult:
            return oha.run(
                target.url + (path or target.stream_path),
                body or self.stream_body,
                target.request_headers(),
                seconds=self.args.stream_seconds,
                connections=self.args.stream_connections,
                rate=None,
            )

        row = self._accounted(target, run)
        print(
            f"  {label} -c{self.args.stream_connections:<3} {row['rps']:>8.1f} streams/s  "
            f"TTFB p50 {row['ttfb_p50_ms']:7.2f} ms  total p50 {row['p50_ms']:7.1f} ms  "
            f"{_cpu_note(row)}",
            flush=True,
        )
        return row

    def open_run(self, target: Target, rate: float) -> dict[str, Any]:
        def run() -> oha.OhaResult:
            return oha.run(
                target.url + target.completion_path,
                self.completion_body,
                target.request_headers(),
                seconds=self.args.rate_seconds,
                connections=self.args.open_connections,
                rate=rate,
            )

        time.sleep(1)  # let the last run's stragglers finish
        row = self._accounted(target, run)
        print(
            f"  {rate:>6.0f}/s  done {row['rps']:>8.0f}/s  p50 {row['p50_ms']:7.2f} ms  "
            f"p90 {row['p90_ms']:7.2f} ms  p99 {row['p99_ms']:8.2f} ms  {_cpu_note(row)}",
            flush=True,
        )
        return row

    def closed_run(self, target: Target) -> dict[str, Any]:
        script = self._wrk_script(target)

        def run() -> wrk.WrkResult:
            return wrk.run(target.url, script, self.args.connections, self.args.seconds)

        time.sleep(1)
        row = self._accounted(target, run)
        print(
            f"  closed -c{self.args.connections:<3} {row['rps']:>8.0f} req/s  "
            f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  {_cpu_note(row)}",
            flush=True,
        )
        return row

    def _wrk_script(self, target: Target) -> Path:
        return wrk.write_script(
            self.scratch,
            f"completion-{target.name}",
            target.completion_path,
            self.completion_body.read_bytes(),
            target.headers,
        )

    def _accounted(self, target: Target, run: Callable[[], Any]) -> dict[str, Any]:
        """Runs ``run`` and adds the CPU the target, the mock and everything outside the
        bench used meanwhile."""
        mock_pid = self.provider.pid
        foreign = ForeignCpu()
        started = time.monotonic()
        server0, mock0 = tree_busy(target.pid), tree_busy(mock_pid)
        result = run()
        elapsed = time.monotonic() - started
        server = tree_busy(target.pid) - server0
        row: dict[str, Any] = result.to_dict()
        row["server_cores"] = round(server / elapsed, 3)
        row["server_cpu_us_per_req"] = round(server * 1e6 / max(1, row["requests"]), 1)
        row["mock_cores"] = round((tree_busy(mock_pid) - mock0) / elapsed, 3)
        row["other_cores"] = round(foreign.cores(), 3)
        self.max_other_cores = max(self.max_other_cores, row["other_cores"])
        return row

    def soak(self, name: str) -> dict[str, Any]:
        """A gateway under closed-loop load for the soak time, its RSS sampled (with logging
        off too, to tell the gateway's memory from the embedded log store's)."""
        args = self.args
        self.quiet.wait()
        print(f"\n== soak: {name}, {args.soak_seconds} s under load", flush=True)
        lag: dict[str, float] = {}
        with self.server(name) as server:
            assert isinstance(server, Floopy)
            target = server.target
            check(target, self.completion_body, self.stream_body)
            script = self._wrk_script(target)
            logged = name != "floopy-nolog"
            gauges = functools.partial(log_gauges, target.url) if logged else None
            with RssSampler(target.pid, args.soak_interval, gauges, server.parts) as sampler:
                run = wrk.run(target.url, script, args.connections, args.soak_seconds).to_dict()
            if logged:
                counters = log_counters(target.url)
                lag = answer_to_row(server.directory / "data", run["requests"])
        print(
            f"  {run['rps']:.0f} req/s; RSS {sampler.samples[0][1]:.0f} -> "
            f"{sampler.samples[-1][1]:.0f} MiB (max {max(m for _, m in sampler.samples):.0f})"
        )
        return {
            "target": name,
            "seconds": args.soak_seconds,
            "connections": args.connections,
            "interval": args.soak_interval,
            "samples": [(round(t, 1), round(m, 1)) for t, m in sampler.samples],
            "parts": {
                part: [(round(t, 1), round(m, 1)) for t, m in samples]
                for part, samples in sampler.parts.items()
            },
            "log_gauges": sampler.also,
            "run": run,
            "log_counters": counters if logged else {},
            "answer_to_row_s": lag,
        }

    def profile(self, label: str) -> dict[str, Any]:
        """py-spy on the floopy worker under wrk load: a flame graph and a summary."""
        args = self.args
        self.quiet.wait()
        print(f"\n== profile: {PROFILED} ({label})", flush=True)
        svg = RESULTS / f"floopy_profile_{label}.svg"
        raw = self.scratch / f"profile_{label}.txt"
        summary: dict[str, Any] = {}
        with self.server(PROFILED) as server:
            assert isinstance(server, Floopy)
            target = server.target
            check(target, self.completion_body, self.stream_body)
            self.warm_up(target)
            worker = server.worker_pid()
            for output, fmt in ((svg, "flamegraph"), (raw, "raw")):
                with _under_load(target, self._wrk_script(target), args, args.profile_seconds):
                    time.sleep(1)
                    recording = profiling.record(worker, args.profile_seconds - 2, output, fmt)
                    _, err = recording.communicate()
                    if recording.returncode != 0:
                        raise RuntimeError(f"py-spy failed: {err.decode()[-1000:]}")
            summary = profiling.summarise(raw)
        print(f"  flame graph: {svg.relative_to(ROOT)}")
        for kind in ("self", "total"):
            print(f"  top by {kind}:")
            for frame, share in summary[kind][:15]:
                print(f"    {share:5.1f}%  {frame}")
        return {"label": label, "svg": str(svg.relative_to(ROOT)), **summary}


@contextmanager
def _under_load(
    target: Target, script: Path, args: argparse.Namespace, seconds: int
) -> Iterator[None]:
    load = threading.Thread(target=wrk.run, args=(target.url, script, args.connections, seconds))
    load.start()
    try:
        yield
    finally:
        load.join()


def _cpu_note(row: dict[str, Any]) -> str:
    errors = row.get("non_2xx", 0) + row.get("errors", 0) + row.get("socket_errors", 0)
    return (
        f"cpu/req {row['server_cpu_us_per_req']:6.0f} us  server {row['server_cores']:.2f} "
        f"mock {row['mock_cores']:.2f} other {row['other_cores']:.2f} cores  errors {errors}"
    )


def check(target: Target, completion_body: Path, stream_body: Path) -> None:
    """Speed means nothing unless the target relays the mock's answer: the completion's text,
    and every chunk of the stream in order, ending in [DONE]."""
    expected = json.loads(mock.completion())["choices"][0]["message"]["content"]
    body = _post(target, target.completion_path, completion_body.read_bytes())
    text = json.loads(body)["choices"][0]["message"]["content"]
    if text != expected:
        raise RuntimeError(f"{target.name}: unexpected completion {body[:300]!r}")
    stream = _post(target, target.stream_path, stream_body.read_bytes())
    events = [line[6:] for line in stream.split(b"\n") if line.startswith(b"data: ")]
    if not events or events[-1].strip() != b"[DONE]":
        raise RuntimeError(f"{target.name}: the stream did not end with [DONE]")
    deltas = [json.loads(e)["choices"] for e in events[:-1]]
    streamed = "".join(c[0]["delta"].get("content") or "" for c in deltas if c)
    if streamed != expected.removesuffix("."):
        raise RuntimeError(f"{target.name}: the stream's text differs: {streamed[:200]!r}")


def check_translated(target: Target, messages_body: Path, gemini_body: Path) -> None:
    """The translated streams carry the answer too: Anthropic events ending in
    message_stop, and OpenAI chunks of the Gemini stream ending in [DONE]."""
    expected = json.loads(mock.completion())["choices"][0]["message"]["content"]
    messages = _post(target, "/v1/messages", messages_body.read_bytes())
    datas = [json.loads(line[6:]) for line in messages.split(b"\n") if line.startswith(b"data: ")]
    text = "".join(d["delta"].get("text", "") for d in datas if d["type"] == "content_block_delta")
    if not datas or datas[-1]["type"] != "message_stop" or text != expected.removesuffix("."):
        raise RuntimeError(f"{target.name}: the /v1/messages stream is wrong: {messages[-300:]!r}")
    gemini = _post(target, target.completion_path, gemini_body.read_bytes())
    events = [line[6:] for line in gemini.split(b"\n") if line.startswith(b"data: ")]
    if not events or events[-1].strip() != b"[DONE]":
        raise RuntimeError(f"{target.name}: the Gemini stream did not end with [DONE]")
    chunks = [json.loads(e)["choices"] for e in events[:-1]]
    streamed = "".join(c[0]["delta"].get("content") or "" for c in chunks if c)
    if streamed != expected.removesuffix("."):
        raise RuntimeError(f"{target.name}: the Gemini stream's text differs: {streamed[:200]!r}")


def _post(target: Target, path: str, body: bytes) -> bytes:
    request = urllib.request.Request(target.url + path, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in target.headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        answer = exc.read()[:500]
        raise RuntimeError(f"{target.name}: {path} answered {exc.code}: {answer!r}") from None


_COUNTER = re.compile(r'^floopy_log_rows_(\w+)_total\{sink="requests"\} (\d+)$', re.MULTILINE)
_GAUGE = re.compile(r'^floopy_log_(journal_bytes)\{sink="(\w+)"\} (\d+)$', re.MULTILINE)
_LAG = re.compile(r'^floopy_log_lag_seconds\{quantile="([\d.]+)"\} (\S+)$', re.MULTILINE)


def _metrics_text(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def log_counters(url: str) -> dict[str, int]:
    """The request sink's row counters from /metrics: journaled, inserted, dropped."""
    return {name: int(value) for name, value in _COUNTER.findall(_metrics_text(url))}


def log_gauges(url: str) -> dict[str, float]:
    """Bytes waiting in the journals per sink, and the log store's recent lag, from
    /metrics."""
    text = _metrics_text(url)
    found = {f"{g}.{sink}": float(value) for g, sink, value in _GAUGE.findall(text)}
    found.update({f"lag.p{float(q) * 100:g}": float(v) for q, v in _LAG.findall(text)})
    return found


def answer_to_row(data_dir: Path, expected: int, timeout: float = 120.0) -> dict[str, float]:
    """Once every row of the soak is in: the seconds from each request's answer to its row
    being queryable (``logged_at``), p50 and p99 over all of them, through the read channel."""
    from floopy.logstore.reads import ChannelClient

    client = ChannelClient(data_dir)
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = int(client.query("SELECT count() FROM floopy.requests").rows[0][0])
        if count >= expected:
            break
        time.sleep(1)
    rows = client.query(
        "SELECT quantiles(0.5, 0.99)(toFloat64(logged_at) - toFloat64(time) - latency_ms / 1000)"
        ", count() FROM floopy.requests"
    ).rows
    (p50, p99), rows_in = rows[0]
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "rows": int(rows_in)}


def describe(args: argparse.Namespace, quiet: Quiet, versions: dict[str, str]) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git(["rev-parse", "--short", "HEAD"]),
        "dirty": bool(_git(["status", "--porcelain", "--untracked-files=no"])),
        "command": " ".join(["benches/load/run.py", *sys.argv[1:]]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("targets",)},
        "load_1m_at_start": load_1m(),
        "waited_for_load_s": quiet.waited,
        "machine": machine(),
        "versions": versions,
    }


def _git(args: list[str]) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def write_outputs(args: argparse.Namespace, results: dict[str, Any]) -> None:
    out = RESULTS / args.out
    tables = report.markdown(results)
    print("\n" + tables)
    report.write_json(out.with_suffix(".json"), results)
    out.with_suffix(".md").write_text(tables)
    meta = results["meta"]
    title = (
        f"{meta['machine']['nproc']} cores, {args.rate_seconds} s per rate, "
        f"commit {meta['commit']}, {meta['date'][:10]}"
    )
    written = [out.with_suffix(".json"), out.with_suffix(".md")]
    latency_png = out.parent / f"{args.out}_latency.png"
    report.latency_chart(latency_png, results, title)
    written.append(latency_png)
    if results.get("soaks"):
        rss_png = out.parent / f"{args.out}_rss.png"
        soak = results["soaks"][0]
        soak_title = (
            f"under wrk -c{soak['connections']} for {soak['seconds']} s, "
            f"commit {meta['commit']}, {meta['date'][:10]}"
        )
        report.soak_chart(rss_png, results["soaks"], soak_title)
        written.append(rss_png)
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))


if __name__ == "__main__":
    main()
