"""CPU per relayed stream chunk in the gateway's worker, with each stream relay side by side
in one run: ``STREAM_RELAY = "python"`` (the event loop reads, translates, relays and writes
every chunk) and ``"native"`` (the native client's thread reads, translates and relays, the
completion queue's callback writes; no Python step per chunk).

Starts the load bench's nginx mock (50-chunk streams, one chunk per write, a chunk every
``--interval-ms``) and one gateway per relay (one worker, logging off unless ``--log``),
then, in alternating rounds, for each scenario, sends ``--streams`` streams
(``--concurrency`` at a time) and as many whole completions to each, reading the CPU time of
the worker's threads from ``/proc`` around each batch; then ``--ttfb-streams`` streams one
after another, for the time to the first body byte. The scenarios (``--scenarios``):

- ``openai``: an OpenAI stream on ``/v1/chat/completions``, relayed as it comes;
- ``messages``: the same stream asked for on ``/v1/messages``, its chunks translated into
  Anthropic events;
- ``gemini``: a Gemini stream on ``/v1/chat/completions``, translated into OpenAI chunks.

The cost of a chunk is the stream's CPU less a whole chat completion's (the request's own
pipeline), divided by the events the client received per stream:

    per chunk = (CPU per stream - CPU per whole answer) / events per stream

    .venv/bin/python benches/load/stream_cpu.py                 # 3 rounds of 400 streams
    .venv/bin/python benches/load/stream_cpu.py --rounds 1 --streams 50   # a quick check

A measuring aid beside ``make bench-load``: the machine should be quiet; the load average
before and after is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run as a script: the sibling modules are not a package

import mock_provider as mock  # noqa: E402
from common.machine import load_1m, machine  # noqa: E402
from targets import Floopy  # noqa: E402
from thread_cpu import thread_cpu  # noqa: E402

RELAYS = ("python", "native")
# Scenario -> (path, body, how a whole stream ends).
SCENARIOS = {
    "openai": (
        mock.COMPLETION_PATH,
        mock.chat_request(model=mock.STREAM_MODEL, stream=True),
        b"data: [DONE]",
    ),
    "messages": ("/v1/messages", mock.messages_request(), b'data: {"type":"message_stop"}'),
    "gemini": (
        mock.COMPLETION_PATH,
        mock.chat_request(model=mock.GEMINI_MODEL, stream=True),
        b"data: [DONE]",
    ),
}


async def _streams(
    url: str, headers: dict[str, str], body: bytes, count: int, at_once: int, end: bytes
) -> int:
    """Sends ``count`` streams, ``at_once`` at a time; returns the SSE events received."""
    gate = asyncio.Semaphore(at_once)
    events = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal events
        async with gate, client.stream("POST", url, content=body, headers=headers) as reply:
            data = b"".join([piece async for piece in reply.aiter_raw()])
        if reply.status_code != 200 or not data.rstrip().endswith(end):
            raise RuntimeError(f"a stream failed: {reply.status_code} {data[-200:]!r}")
        events += data.count(b"\n\n")

    limits = httpx.Limits(max_connections=at_once, max_keepalive_connections=at_once)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.gather(*(one(client) for _ in range(count)))
    return events


async def _wholes(url: str, headers: dict[str, str], body: bytes, count: int, at_once: int) -> None:
    gate = asyncio.Semaphore(at_once)

    async def one(client: httpx.AsyncClient) -> None:
        async with gate:
            reply = await client.post(url, content=body, headers=headers)
        if reply.status_code != 200:
            raise RuntimeError(f"a completion failed: {reply.status_code} {reply.text[:200]}")

    limits = httpx.Limits(max_connections=at_once, max_keepalive_connections=at_once)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.gather(*(one(client) for _ in range(count)))


async def _first_bytes(url: str, headers: dict[str, str], body: bytes, count: int) -> list[float]:
    """Milliseconds to the first body byte of ``count`` streams sent one after another."""
    took = []
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            async with client.stream("POST", url, content=body, headers=headers) as reply:
                pieces = reply.aiter_raw()
                await pieces.__anext__()
                took.append((time.perf_counter() - started) * 1000)
                async for _ in pieces:
                    pass
    return took


def _cpu(pid: int) -> Counter[str]:
    return thread_cpu(pid)


def _spent(before: Counter[str], after: Counter[str]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def measure(server: Floopy, args: argparse.Namespace, scenario: str) -> dict[str, float]:
    """One round against one gateway: CPU per stream, per whole answer, per chunk (µs)."""
    target, pid = server.target, server.worker_pid()
    path, stream_body, end = SCENARIOS[scenario]
    url = target.url + path
    whole_url = target.url + target.completion_path
    whole_body = mock.chat_request()
    before = _cpu(pid)
    events = asyncio.run(
        _streams(url, target.headers, stream_body, args.streams, args.concurrency, end)
    )
    middle = _cpu(pid)
    asyncio.run(_wholes(whole_url, target.headers, whole_body, args.streams, args.concurrency))
    after = _cpu(pid)
    streamed, whole = _spent(before, middle), _spent(middle, after)
    ttfb = asyncio.run(_first_bytes(url, target.headers, stream_body, args.ttfb_streams))
    per_stream = sum(streamed.values()) * 1e6 / args.streams
    per_whole = sum(whole.values()) * 1e6 / args.streams
    chunks = events / args.streams
    if args.threads:
        for name, seconds in sorted(streamed.items(), key=lambda item: -item[1]):
            print(
                f"  {server.target.name} {scenario} {name:<20} "
                f"{seconds * 1e6 / args.streams:8.0f} µs/stream"
            )
    return {
        "per_stream": per_stream,
        "loop_per_stream": streamed.get("MAIN", 0.0) * 1e6 / args.streams,
        "native_per_stream": streamed.get("floopy-upstream", 0.0) * 1e6 / args.streams,
        "per_whole": per_whole,
        "chunks": chunks,
        "per_chunk": (per_stream - per_whole) / chunks,
        "ttfb_p50_ms": statistics.median(ttfb),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=400, help="streams per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--interval-ms", type=int, default=2, help="pause between chunks")
    parser.add_argument("--log", action="store_true", help="request log on")
    parser.add_argument("--threads", action="store_true", help="print CPU by thread")
    parser.add_argument(
        "--ttfb-streams", type=int, default=40, help="sequential streams for the first byte"
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated: openai,messages,gemini"
    )
    args = parser.parse_args()
    scenarios = [name for name in args.scenarios.split(",") if name]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    load_before = load_1m()
    rows: dict[tuple[str, str], list[dict[str, float]]] = {
        (scenario, relay): [] for scenario in scenarios for relay in RELAYS
    }
    with tempfile.TemporaryDirectory(prefix="floopy-stream-cpu-") as tmp:
        scratch = Path(tmp)
        with mock.MockProvider(scratch / "mock", args.interval_ms) as provider:
            servers = {
                relay: Floopy(
                    f"floopy-{relay}",
                    scratch,
                    provider.url,
                    logging=args.log,
                    extra={"STREAM_RELAY": repr(relay)},
                )
                for relay in RELAYS
            }
            for server in servers.values():
                server.__enter__()
            try:
                warm = argparse.Namespace(**{**vars(args), "streams": 32, "ttfb_streams": 4})
                for server in servers.values():
                    for scenario in scenarios:
                        measure(server, warm, scenario)
                for _ in range(args.rounds):
                    for scenario in scenarios:
                        for relay, server in servers.items():
                            rows[scenario, relay].append(measure(server, args, scenario))
            finally:
                for server in servers.values():
                    server.__exit__()
    report(rows, args, load_before, load_1m())


def report(
    rows: dict[tuple[str, str], list[dict[str, float]]],
    args: argparse.Namespace,
    load_before: float,
    load_after: float,
) -> None:
    info = machine()
    print(
        f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; {info['cpu']}, "
        f"{os.cpu_count()} cores; load average (1 min) {load_before:.2f} before, "
        f"{load_after:.2f} after; {args.rounds} rounds of {args.streams} streams, "
        f"{args.concurrency} at a time, a chunk every {args.interval_ms} ms, "
        f"logging {'on' if args.log else 'off'}"
    )
    print()
    print(
        "| scenario | relay | events per stream | CPU per stream | event loop | native thread "
        "| CPU per whole answer | CPU per chunk (median of rounds) | rounds "
        "| first byte p50 (sequential) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for (scenario, relay), runs in rows.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        each = " / ".join(f"{run['per_chunk']:.1f}" for run in runs)
        print(
            f"| {scenario} | {relay} | {med['chunks']:.0f} | {med['per_stream']:,.0f} µs "
            f"| {med['loop_per_stream']:,.0f} µs | {med['native_per_stream']:,.0f} µs "
            f"| {med['per_whole']:,.0f} µs | {med['per_chunk']:.1f} µs | {each} µs "
            f"| {med['ttfb_p50_ms']:.2f} ms |"
        )


if __name__ == "__main__":
    main()
