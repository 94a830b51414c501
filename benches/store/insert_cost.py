"""What the log store process spends per logged request: the carrier's rounds over real
journal files into the embedded engine, at a fixed rate, with the background merges.

    .venv/bin/python benches/store/insert_cost.py --rate 1500 --seconds 60

A writer thread appends, through the native journal writer, one row per simulated request
(about 2 KB of fields and bodies, and eight spans), as a worker does, and hands its files
over every ``--interval`` seconds; the main thread runs the store's rounds as ``floopy
store`` does (``Carrier.carry``, then the store's own wait, ``next_wait``). The CPU of the
whole process (every thread: the writer's share measured apart and subtracted; the engine's
merge pool included) is reported
per request, with the wall time of the rounds. ``--tail`` seconds after the load stops are
counted too, so the merges the load left behind are paid for.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import msgspec

from floopy.logstore.process import next_wait
from floopy.observability.carrier import Carrier
from floopy.observability.journal import JournalFile, OwnerLock, journal_dir, new_owner
from floopy.observability.metrics import SinkCounters
from floopy.observability.migrations import migrate
from floopy.observability.record import (
    REQUESTS,
    SINKS,
    RequestRecord,
    SpanRecord,
    encode,
)
from floopy.observability.store import INSERT_SETTINGS, LogStore
from floopy.settings.loader import load_settings

PROMPT = (
    "You are a helpful assistant for an online store. Answer in two short paragraphs. "
    "The customer asks: my order 4471 arrived with a cracked screen protector and the "
    "charging cable is missing; can you send the cable and what do I do with the protector? "
)
ANSWER = (
    "I'm sorry your order arrived incomplete. I've asked the warehouse to send a new charging "
    "cable today; you will get a tracking number by email within a few hours. "
)


SHAPE = {"spans": 8, "body_repeat": 3}  # spans per request; how long the bodies are


def request_row(index: int, now: float) -> bytes:
    repeat = SHAPE["body_repeat"]
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": PROMPT[:80]},
            {"role": "user", "content": PROMPT * repeat},
        ],
        "temperature": 0.2,
    }
    answer = {
        "id": f"chatcmpl-{index}",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER * repeat}}],
        "usage": {"prompt_tokens": 180, "completion_tokens": 95, "total_tokens": 275},
    }
    record = RequestRecord(
        request_id=uuid.uuid4().hex,
        time=now,
        organization=f"org-{index % 3}",
        project=f"project-{index % 5}",
        api_key_id=f"key-{index % 7}",
        user_id=f"user-{index % 1000}",
        session_id=f"session-{index % 5000}",
        session_name="support chat",
        session_path="/support/order",
        properties={"environment": "production", "feature": f"feature-{index % 20}"},
        method="POST",
        path="/v1/chat/completions",
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini-2024-07-18",
        provider="openai",
        fallback_used=False,
        status=200,
        error_code="",
        latency_ms=412.5 + index % 100,
        ttft_ms=None,
        stage_latency_ms={"auth": 0.02, "parse": 0.05, "routing": 0.01, "dispatch": 410.2},
        prompt_tokens=180,
        completion_tokens=95,
        total_tokens=275,
        cached_tokens=0,
        reasoning_tokens=0,
        cache_write_tokens=0,
        cost_usd=0.000084,
        cache_status="",
        cache_tier="",
        cache_similarity=None,
        cache_saved_usd=None,
        firewall_verdict="",
        firewall_score=None,
        firewall_categories=[],
        firewall_backend="",
        firewall_model="",
        firewall_from_cache=False,
        stream=False,
        finish_reason="stop",
        request_body=json.dumps(body),
        response_body=json.dumps(answer),
        client_ip="10.1.2.3",
        user_agent="OpenAI/Python 1.55.0",
        spans=msgspec.Raw(msgspec.json.encode(spans(now))),
    )
    return encode(record)


def spans(now: float) -> list[SpanRecord]:
    names = ["request", "auth", "parse", "ratelimit", "routing", "dispatch", "attempt", "respond"]
    return [
        SpanRecord(
            span_id=uuid.uuid4().hex[:16],
            parent_id="" if i == 0 else "0" * 16,
            name=name,
            start_time=now + i * 0.001,
            duration_ms=0.05 * (i + 1),
            status="ok",
            attributes={"floopy.stage": name, "gen_ai.request.model": "gpt-4o-mini"},
        )
        for i, name in enumerate(names[: SHAPE["spans"]])
    ]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu() -> float:
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


class Writer(threading.Thread):
    """One simulated worker: rows at ``rate`` a second, handed over every ``interval``."""

    def __init__(self, directory: Path, rate: int, seconds: float, interval: float) -> None:
        super().__init__(daemon=True)
        self.owner = new_owner()
        self.lock = OwnerLock(directory, self.owner)
        self.journal = JournalFile(directory, REQUESTS, self.owner, 100 << 20)
        self.rate, self.seconds, self.interval = rate, seconds, interval
        self.written = 0
        self.cpu = 0.0

    def run(self) -> None:
        start = thread_cpu()
        began = time.monotonic()
        next_hand_over = began + self.interval
        tick = 0.01
        while (now := time.monotonic()) < began + self.seconds:
            due = int((now - began) * self.rate) - self.written
            wall = time.time()
            for _ in range(max(due, 0)):
                self.journal.append([request_row(self.written, wall)])
                self.written += 1
            if now >= next_hand_over:
                self.journal.hand_over()
                next_hand_over += self.interval
            time.sleep(tick)
        self.journal.close()
        self.lock.release()
        self.cpu = thread_cpu() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1500, help="requests a second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=1.0, help="hand-over interval")
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="rounds every --interval, not stretched under load as the store's are",
    )
    parser.add_argument("--tail", type=float, default=20, help="seconds counted after the load")
    parser.add_argument("--data-dir", help="default: a new temporary directory")
    parser.add_argument("--spans", type=int, default=8, help="spans per request (at most 8)")
    parser.add_argument("--body-repeat", type=int, default=3, help="body length, in paragraphs")
    parser.add_argument(
        "--insert-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an insert setting to try instead of the store's own (repeatable)",
    )
    parser.add_argument(
        "--after-migrate",
        action="append",
        default=[],
        metavar="SQL",
        help="a statement run after the migrations, $db for the database (repeatable)",
    )
    args = parser.parse_args()

    SHAPE.update(spans=args.spans, body_repeat=args.body_repeat)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="floopy-store-bench-")
    settings = load_settings(
        {**os.environ, "FLOOPY_DATA_DIR": data_dir, "FLOOPY_LOG_FLUSH_INTERVAL": str(args.interval)}
    )
    store = LogStore(None, data_dir, settings.log_store_max_memory)
    migrate(store, settings, lambda line: print(line, file=sys.stderr))
    for statement in args.after_migrate:
        store.command(statement.replace("$db", store.database))
    for setting in args.insert_setting:
        name, _, value = setting.partition("=")
        INSERT_SETTINGS[name] = int(value) if value.isdigit() else value
    directory = journal_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    store_owner = new_owner()
    store_lock = OwnerLock(directory, store_owner)
    journals = {sink: JournalFile(directory, sink, store_owner, 100 << 20) for sink in SINKS}
    counters = {sink: SinkCounters() for sink in journals}
    carrier = Carrier(store, journals, counters, settings.log_batch_size)

    writer = Writer(directory, args.rate, args.seconds, args.interval)
    time.sleep(2)  # the engine's start-up work is not the load's
    cpu_start, wall_start = cpu(), time.monotonic()
    round_wall: list[float] = []
    writer.start()
    while writer.is_alive() or carrier.waiting():
        began = time.monotonic()
        if carrier.waiting():
            carrier.carry()
            round_wall.append(time.monotonic() - began)
        took = time.monotonic() - began
        time.sleep(args.interval if args.fixed else next_wait(settings, took))
    loaded_cpu = cpu() - cpu_start
    time.sleep(args.tail)
    total_cpu = cpu() - cpu_start - writer.cpu
    rows = store.rows(f"SELECT count() FROM {store.table('requests')}")[0][0]
    parts = store.rows(
        "SELECT table, count() FROM system.parts WHERE active AND database = "
        f"'{store.database}' GROUP BY table ORDER BY table"
    )
    round_wall.sort()
    result = {
        "rate": args.rate,
        "seconds": args.seconds,
        "interval": args.interval,
        "rounds_stretched": not args.fixed,
        "shape": SHAPE,
        "row_bytes": len(request_row(0, time.time())),
        "insert_settings": args.insert_setting,
        "after_migrate": args.after_migrate,
        "requests": writer.written,
        "rows_in_store": rows,
        "store_cpu_us_per_request": round(total_cpu / writer.written * 1e6, 1),
        "during_load_us_per_request": round((loaded_cpu - writer.cpu) / writer.written * 1e6, 1),
        "writer_us_per_request": round(writer.cpu / writer.written * 1e6, 1),
        "round_wall_p50_ms": round(round_wall[len(round_wall) // 2] * 1e3, 1),
        "round_wall_max_ms": round(round_wall[-1] * 1e3, 1),
        "rounds": len(round_wall),
        "wall_s": round(time.monotonic() - wall_start, 1),
        "active_parts": dict(parts),
    }
    print(json.dumps(result, indent=2))
    store.close()
    store_lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
