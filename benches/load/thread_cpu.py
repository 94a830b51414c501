"""Where a Floopy worker's CPU goes under load, thread by thread, and the log store
process's beside it.

Starts the load bench's nginx mock and ``floopy serve`` (one worker, logging on or off),
warms it up, runs wrk (closed loop, ``--connections``) and reads the CPU time of every
thread of the worker, and of the log store process, from ``/proc/<pid>/task`` before and
after. Prints requests/s and the CPU per request of each thread name: in the worker ``MAIN``
is the event loop, ``floopy-upstream`` the native client's runtime and ``floopy-otel`` the
trace exporter (``--otel``: export on, to the mock's ``/v1/traces``); in the log store
``MAIN`` carries the journals (reading them, and waiting on its inserts), and the embedded
engine names a thread after its work: ``MergeMutate`` for merges, ``QueryPipelineEx``,
``ThreadPool`` and ``Unknown`` for inserts.

    .venv/bin/python benches/load/thread_cpu.py            # logging on
    .venv/bin/python benches/load/thread_cpu.py --no-log   # logging off
    .venv/bin/python benches/load/thread_cpu.py --otel     # logging on, trace export on
    .venv/bin/python benches/load/thread_cpu.py --source DIR   # another tree's python/ dir

A measuring aid, not part of ``make bench-load``: the machine should be quiet.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run as a script: the sibling modules are not a package

import mock_provider as mock  # noqa: E402
from common import wrk  # noqa: E402
from targets import Floopy  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
DEAD_CLICKHOUSE = "http://127.0.0.1:9/floopy"  # the discard port: nothing listens


def thread_cpu(pid: int) -> Counter[str]:
    """Seconds of CPU (user + system) by thread name; the main thread is ``MAIN``."""
    seconds: Counter[str] = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = "MAIN" if tid == str(pid) else stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds[name] += (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def settings(args: argparse.Namespace, mock_url: str) -> dict[str, str] | None:
    """The worker's settings beyond the target's own, for ``--store-down`` and ``--otel``."""
    extra: dict[str, str] = {}
    if args.store_down:
        extra["CLICKHOUSE_URL"] = repr(DEAD_CLICKHOUSE)
    if args.otel:
        extra["OTEL_ENDPOINT"] = repr(mock_url)  # its nginx accepts and discards
    return extra or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-log", action="store_true", help="LOGGING_ENABLED = False")
    parser.add_argument(
        "--store-down",
        action="store_true",
        help="logging on, ClickHouse unreachable: the rows wait in the journal (the worker's "
        "own cost of logging, without the store's inserts beside it)",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="the OpenTelemetry trace export on, to the mock's /v1/traces (which discards)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        help="a python/ directory to serve floopy from (with its native module)",
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floopy-thread-cpu-") as tmp:
        scratch = Path(tmp)
        with (
            mock.MockProvider(scratch / "mock", 10) as provider,
            Floopy(
                "floopy",
                scratch,
                provider.url,
                logging=not args.no_log,
                extra=settings(args, provider.url),
                source=args.source,
            ) as server,
        ):
            target = server.target
            script = wrk.write_script(
                scratch, "completion", target.completion_path, mock.chat_request(), target.headers
            )
            wrk.run(target.url, script, args.connections, 5)  # warm-up
            processes = {"worker": server.worker_pid()}
            store = server.store_pid()
            if store is not None:
                processes["log store"] = store
            before = {label: thread_cpu(pid) for label, pid in processes.items()}
            run = wrk.run(target.url, script, args.connections, args.seconds)
            after = {label: thread_cpu(pid) for label, pid in processes.items()}
    state = "off" if args.no_log else "on, ClickHouse down" if args.store_down else "on"
    export = ", trace export on" if args.otel else ""
    print(f"logging {state}{export}: {run.rps:,.0f} req/s")
    for label in processes:
        used = {n: after[label][n] - before[label].get(n, 0.0) for n in after[label]}
        total = sum(used.values())
        print(f"{label} CPU {total * 1e6 / run.requests:.0f} µs per request")
        for name, seconds in sorted(used.items(), key=lambda item: -item[1]):
            per_request = seconds * 1e6 / run.requests
            if per_request >= 1:
                print(f"  {name:<18} {per_request:6.0f} µs")


if __name__ == "__main__":
    main()
