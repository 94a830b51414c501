"""The cache under load, in one run: an exact hit beside a miss, and a miss with the cache
on beside the same request with it off.

One nginx mock provider (mock_provider.py) answers; one Floopy worker, request log off (so
the numbers are the cache's and the pipeline's, not the log store's), is started per case,
with the exact tier only (``CACHE_SEMANTIC_ENABLED = False``; ``benches/cache/lookup.py``
measures the semantic tier):

- ``off``: ``CACHE_ENABLED = False``, every request a new prompt;
- ``miss``: ``CACHE_ENABLED = True``, every request a new prompt (looked up, missed,
  stored once answered);
- ``hit``: ``CACHE_ENABLED = True``, one prompt repeated (after the first, every request is
  an exact hit).

The three run side by side and are measured in turn, ``--rounds`` times over, each round
starting with the next case (the median round is reported, so that a burst of other work
on the machine does not decide a comparison): throughput with wrk ``--connections``
connections (closed loop), and latency with one connection (``-c1``: each request alone, so
p50 and p99 are the service time seen from the client, loopback included). wrk's Lua script
writes a new prompt into every request for ``off`` and ``miss``.

Then the hit's server time: a worker with the request log on serves hits at ``-c1``, and
the p50 of the log's ``latency_ms`` (from the request's arrival to its last byte, as the
gateway times it) and of its ``cache`` stage are read back.

    nice .venv/bin/python benches/load/cache.py [--seconds 10] [--connections 32] [--rounds 3]

Writes benches/results/cache.json (every run) and cache.md (the tables), and prints the
table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Protocol

import mock_provider as mock
import targets
from common import wrk
from common.machine import machine

HERE = Path(__file__).resolve().parent


class Scripts(Protocol):
    def fresh(self) -> Path: ...


RESULTS = HERE.parent / "results"

# A new prompt per request, never seen before: the script's run id (new for every wrk run,
# since wrk's Lua random numbers repeat from run to run), the thread's number and a counter.
_UNIQUE_LUA = """\
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
wrk.method = "POST"
wrk.path = "{path}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local counter = 0
request = function()
  counter = counter + 1
  local body = '{{"model":"{model}","messages":[{{"role":"user","content":"fresh {run} ' ..
    tostring(thread_id) .. ' ' .. counter .. '"}}]}}'
  return wrk.format(nil, nil, nil, body)
end
"""


class UniqueScript:
    """Hands out a new script, with a new run id, for every wrk run."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def fresh(self) -> Path:
        run = uuid.uuid4().hex
        script = self._directory / f"unique-{run}.lua"
        script.write_text(
            _UNIQUE_LUA.format(
                path=mock.COMPLETION_PATH, key=targets.FLOOPY_KEY, model=mock.MODEL, run=run
            )
        )
        return script


class RepeatScript:
    def __init__(self, directory: Path) -> None:
        headers = {"Authorization": f"Bearer {targets.FLOOPY_KEY}"}
        self._script = wrk.write_script(
            directory, "repeat", mock.COMPLETION_PATH, mock.chat_request(), headers
        )

    def fresh(self) -> Path:
        return self._script


def gateway(scratch: Path, name: str, mock_url: str, *, cache: bool, logging: bool = False) -> Any:
    return targets.Floopy(
        name,
        scratch,
        mock_url,
        logging=logging,
        # The exact tier's costs: the semantic tier, which embeds every miss, is measured
        # by benches/cache/lookup.py.
        extra={
            "CACHE_ENABLED": str(cache),
            "CACHE_SEMANTIC_ENABLED": "False",
            "LOG_FLUSH_INTERVAL": "0.1",
        },
    )


def check_cache_header(url: str, expected: str) -> None:
    done = subprocess.run(
        [
            "curl", "-s", "-D", "-", "-o", "/dev/null", "-H",
            f"Authorization: Bearer {targets.FLOOPY_KEY}", "-H", "Content-Type: application/json",
            "--data-binary", mock.chat_request().decode(), f"{url}{mock.COMPLETION_PATH}",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    if f"floopy-cache: {expected}" not in done.stdout.lower():
        raise SystemExit(f"expected floopy-cache: {expected} from {url}, got:\n{done.stdout}")


def cache_counts(url: str) -> dict[str, int]:
    """The exact tier's hits and misses so far, from the gateway's /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.findall(r'^floopy_cache_(hits|misses)_total\{tier="exact"\} (\d+)$', text, re.M)
    return {name: int(value) for name, value in found}


def check_outcomes(cases: dict[str, tuple[str, Scripts]]) -> dict[str, dict[str, int]]:
    """Every miss case request was a miss, every hit case request after the first a hit."""
    counts = {case: cache_counts(url) for case, (url, _) in cases.items() if case != "off"}
    if counts["miss"]["hits"] != 0 or counts["hit"]["misses"] != 1:
        raise SystemExit(f"the cases did not do what they say: {counts}")
    return counts


def measure(case: str, url: str, scripts: Scripts, args: argparse.Namespace) -> dict[str, Any]:
    throughput = wrk.run(url, scripts.fresh(), args.connections, args.seconds)
    alone = wrk.run(url, scripts.fresh(), 1, args.seconds)
    for run in (throughput, alone):
        if run.non_2xx or run.socket_errors:
            raise SystemExit(f"{case}: {run.non_2xx} non-2xx answers, {run.socket_errors} errors")
    print(
        f"{case}: {throughput.rps:.0f} req/s at -c{args.connections}; "
        f"-c1 p50 {alone.p50_ms:.3f} ms, p99 {alone.p99_ms:.3f} ms",
        flush=True,
    )
    return {"throughput": throughput.to_dict(), "alone": alone.to_dict()}


def median_round(rounds: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "rps": statistics.median(r["throughput"]["rps"] for r in rounds),
        "p50_ms": statistics.median(r["alone"]["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["alone"]["p99_ms"] for r in rounds),
    }


def server_time_of_hits(
    scratch: Path, mock_url: str, script: RepeatScript, seconds: int
) -> dict[str, Any]:
    """The request log's own timing of exact hits: p50 of latency_ms and of the cache stage."""
    floopy = gateway(scratch, "hit-logged", mock_url, cache=True, logging=True)
    with floopy:
        check_cache_header(floopy.target.url, "miss")
        wrk.run(floopy.target.url, script.fresh(), 1, seconds)
        time.sleep(1.0)  # the last batch reaches the store before it stops
    import clickhouse_connect

    client = clickhouse_connect.get_client(
        interface="chdb", path=str(floopy.directory / "data" / "clickhouse")
    )
    try:
        row = client.query(
            "SELECT count(), quantile(0.5)(latency_ms), quantile(0.99)(latency_ms), "
            "quantile(0.5)(stage_latency_ms['cache']) "
            "FROM floopy.requests WHERE cache_status = 'HIT'"
        ).result_rows[0]
    finally:
        client.close()
    return {"hits": row[0], "latency_p50_ms": row[1], "latency_p99_ms": row[2],
            "cache_stage_p50_ms": row[3]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "seconds": args.seconds,
            "connections": args.connections,
            "rounds": args.rounds,
        },
        "cases": {},
        "rounds": {"off": [], "miss": [], "hit": []},
    }
    with tempfile.TemporaryDirectory(prefix="floopy-bench-cache-") as tmp:
        scratch = Path(tmp)
        unique, repeat = UniqueScript(scratch), RepeatScript(scratch)
        with mock.MockProvider(scratch / "mock", 10) as provider, contextlib.ExitStack() as stack:
            cases: dict[str, tuple[str, Scripts]] = {}
            for case, cache, script in (
                ("off", False, unique),
                ("miss", True, unique),
                ("hit", True, repeat),
            ):
                floopy = stack.enter_context(gateway(scratch, case, provider.url, cache=cache))
                cases[case] = (floopy.target.url, script)
            check_cache_header(cases["miss"][0], "miss")
            check_cache_header(cases["hit"][0], "miss")
            check_cache_header(cases["hit"][0], "hit; tier=exact")
            for url, scripts in cases.values():
                wrk.run(url, scripts.fresh(), args.connections, 2)  # warm-up
            order = list(cases)
            for round_ in range(args.rounds):
                # Each round starts with another case, so no case always runs first.
                for case in order[round_ % 3 :] + order[: round_ % 3]:
                    url, script = cases[case]
                    results["rounds"][case].append(measure(case, url, script, args))
            results["cases"] = {case: median_round(r) for case, r in results["rounds"].items()}
            results["outcomes"] = check_outcomes(cases)
            results["hit_server_time"] = server_time_of_hits(
                scratch, provider.url, repeat, args.seconds
            )
    print(json.dumps(results["hit_server_time"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cache.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "cache.md").write_text(report(results))
    print(table(results))


def report(results: dict[str, Any]) -> str:
    meta, served = results["meta"], results["hit_server_time"]
    rounds = "\n".join(
        f"- {case}: " + ", ".join(f"{r['throughput']['rps']:,.0f}" for r in runs) + " req/s"
        for case, runs in results["rounds"].items()
    )
    return (
        f"# Cache under load\n\n`{meta['command']}`, {meta['date']}, {meta['machine']['cpu']} "
        f"({meta['machine']['nproc']} cores). Median of {meta['rounds']} rounds:\n\n"
        f"{table(results)}\n\nEach round (-c{meta['connections']}):\n\n{rounds}\n\n"
        f"Outcomes counted in /metrics: {results['outcomes']}\n\n"
        f"Hit server time (request log, {served['hits']} hits at -c1): latency_ms p50 "
        f"{served['latency_p50_ms']:.3f} ms, p99 {served['latency_p99_ms']:.3f} ms; cache stage "
        f"p50 {served['cache_stage_p50_ms']:.3f} ms\n"
    )


def table(results: dict[str, Any]) -> str:
    cases = results["cases"]
    lines = [
        "| case | req/s (wrk -c{c}) | p50 ms (-c1) | p99 ms (-c1) |".format(
            c=results["meta"]["connections"]
        ),
        "| --- | ---: | ---: | ---: |",
    ]
    for name in ("off", "miss", "hit"):
        run = cases[name]
        lines.append(f"| {name} | {run['rps']:,.0f} | {run['p50_ms']:.3f} | {run['p99_ms']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
