"""The dashboard at scale: 1M synthetic requests in the embedded store, each page's API query
timed (p50/p95 over repeats), and each page's time to first paint and to its data in
headless Chromium.

    .venv/bin/python benches/dashboard/run.py [--rows 1000000] [--repeats 20] [--data-dir DIR]

The rows are made by ClickHouse itself (INSERT ... SELECT FROM numbers()), spread over the
last 7 days: 10,000 users, 50,000 sessions of 20 requests, 20 property keys (3 a request),
three organizations and projects, five models, request and response bodies of about 1.5 KB
and 0.8 KB, and 8 spans a request. Inserting into ``requests`` fills the rollups through
their materialized views, as the log store does. The queries run through the same ``Reader``
and ``Pages`` the dashboard uses, as an admin (every organization: the widest scan).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from floopy.dashboard.filters import Scope, parse
from floopy.dashboard.queries import Pages, encode_cursor
from floopy.dashboard.server import Config, DashboardServer
from floopy.dashboard.users import UserStore
from floopy.logstore.reads import Limits, Reader
from floopy.observability.migrations import migrate
from floopy.observability.store import LogStore
from floopy.settings import load_settings

HERE = Path(__file__).parent
CHUNK = 100_000
WEEK_MS = 7 * 86400 * 1000
ADMIN = Scope(None)

REQUESTS_SELECT = """
SELECT
    concat('req_', lower(hex(cityHash64(number))), toString(number)) AS request_id,
    fromUnixTimestamp64Milli(toInt64({now_ms} - intDiv(number * {week_ms}, {rows})), 'UTC')
        AS time,
    ['acme', 'globex', 'initech'][number % 3 + 1] AS organization,
    ['web', 'api', 'batch'][intDiv(number, 3) % 3 + 1] AS project,
    'key-' || toString(number % 3) AS api_key_id,
    'user-' || toString(cityHash64(number, 1) % 10000) AS user_id,
    'sess-' || toString(intDiv(number, 20) % 50000) AS session_id,
    'Session ' || toString(intDiv(number, 20) % 50000) AS session_name,
    '/step/' || toString(number % 20) AS session_path,
    map('feature', ['summarize', 'chat', 'search', 'classify'][number % 4 + 1],
        'prop_' || toString(number % 19), 'v' || toString(cityHash64(number, 2) % 50),
        'prop_' || toString((number + 7) % 19), 'w' || toString(cityHash64(number, 4) % 20))
        AS properties,
    'POST' AS method,
    '/v1/chat/completions' AS path,
    ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'claude-sonnet', 'gemini-flash'][number % 5 + 1]
        AS requested_model,
    requested_model AS model,
    ['openai', 'openai', 'openai', 'anthropic', 'gemini'][number % 5 + 1] AS provider,
    number % 41 = 0 AS fallback_used,
    toUInt16(if(number % 50 = 0, 502, if(number % 97 = 0, 429, 200))) AS status,
    if(status = 200, '', if(status = 502, 'PROVIDER_ERROR', 'RATE_LIMIT_EXCEEDED'))
        AS error_code,
    toFloat64(200 + cityHash64(number, 3) % 3000) AS latency_ms,
    latency_ms * 0.3 AS ttft_ms,
    map('parse', 0.1, 'auth', 0.2, 'rate_limit', 0.05, 'routing', 0.1,
        'dispatch', latency_ms * 0.95, 'respond', 1.5) AS stage_latency_ms,
    toUInt32(100 + cityHash64(number, 5) % 2000) AS prompt_tokens,
    toUInt32(20 + cityHash64(number, 6) % 800) AS completion_tokens,
    prompt_tokens + completion_tokens AS total_tokens,
    toUInt32(if(number % 7 = 0, 64, 0)) AS cached_tokens,
    toUInt32(0) AS reasoning_tokens,
    toUInt32(0) AS cache_write_tokens,
    prompt_tokens * 0.15e-6 + completion_tokens * 0.6e-6 AS cost_usd,
    ['MISS', 'MISS', 'MISS', 'HIT'][number % 4 + 1] AS cache_status,
    if(cache_status = 'HIT', 'exact', '') AS cache_tier,
    ['safe', 'safe', 'safe', 'skipped'][number % 4 + 1] AS firewall_verdict,
    number % 3 = 0 AS stream,
    if(status = 200, 'stop', '') AS finish_reason,
    concat('{"model":"', requested_model, '","messages":[{"role":"system","content":"',
        replaceRegexpAll(randomPrintableASCII(500), '["\\\\\\\\]', ' '),
        '"},{"role":"user","content":"',
        replaceRegexpAll(randomPrintableASCII(900), '["\\\\\\\\]', ' '), '"}]}') AS request_body,
    concat('{"choices":[{"message":{"role":"assistant","content":"',
        replaceRegexpAll(randomPrintableASCII(750), '["\\\\\\\\]', ' '), '"}}]}') AS response_body,
    '10.0.' || toString(number % 250) || '.' || toString(number % 200) AS client_ip,
    'OpenAI/Python 1.50.0' AS user_agent
FROM numbers({start}, {count})
"""

SPANS_SELECT = """
SELECT
    concat('req_', lower(hex(cityHash64(number))), toString(number)) AS request_id,
    if(n = 0, 'root', concat('s', toString(n))) AS span_id,
    if(n = 0, '', if(n = 6, 's5', 'root')) AS parent_id,
    ['request', 'parse', 'auth', 'rate_limit', 'routing', 'dispatch', 'provider_attempt',
     'respond'][n + 1] AS name,
    fromUnixTimestamp64Milli(toInt64({now_ms} - intDiv(number * {week_ms}, {rows})), 'UTC')
        + toIntervalMillisecond(n * 3) AS start_time,
    if(n = 0, 2000.0, 200.0) AS duration_ms,
    'ok' AS status,
    map('provider', 'openai', 'model', 'gpt-4o-mini') AS attributes,
    ['acme', 'globex', 'initech'][number % 3 + 1] AS organization,
    ['web', 'api', 'batch'][intDiv(number, 3) % 3 + 1] AS project
FROM numbers({start}, {count})
ARRAY JOIN range(8) AS n
"""


def load(store: LogStore, rows: int, say: Callable[[str], None]) -> float:
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    for start in range(0, rows, CHUNK):
        values = {
            "now_ms": now_ms,
            "week_ms": WEEK_MS,
            "rows": rows,
            "start": start,
            "count": min(CHUNK, rows - start),
        }
        for table, select in (("requests", REQUESTS_SELECT), ("spans", SPANS_SELECT)):
            columns = ", ".join(_ALIAS.findall(select.partition("FROM numbers")[0]))
            store.command(f"INSERT INTO {store.table(table)} ({columns}) " + _fill(select, values))
        say(f"loaded {start + values['count']:,} requests")
    return time.perf_counter() - started


_ALIAS = re.compile(r"\bAS (\w+),?$", re.MULTILINE)


def _fill(template: str, values: dict[str, int]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def timed(call: Callable[[], Any], repeats: int) -> dict[str, float]:
    call()  # warm: the first read of a column loads its marks
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p95_ms": samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))],
        "max_ms": samples[-1],
    }


def page_queries(
    pages: Pages, store: LogStore, rows: int, repeats: int
) -> dict[str, dict[str, float]]:
    now = time.time()
    week = parse({"range": ["7d"]}, now)
    day = parse({"range": ["24h"]}, now)
    deep = store.rows(
        f"SELECT time, request_id FROM {store.table('requests')} "
        f"ORDER BY time, request_id LIMIT 1 OFFSET {rows // 20}"
    )[0]
    deep_cursor = encode_cursor(deep[0], deep[1])
    ids = [
        row[0]
        for row in store.rows(
            f"SELECT request_id FROM {store.table('requests')} ORDER BY rand() LIMIT {repeats + 1}"
        )
    ]
    picks = iter(ids * 3)
    user = parse({"range": ["7d"], "user": ["user-42"]}, now)
    prop = parse({"range": ["7d"], "prop": ["feature=summarize"]}, now)
    cases: dict[str, Callable[[], Any]] = {
        "overview 7d (rollup)": lambda: pages.overview(week, ADMIN),
        "overview 24h, by property (rows)": lambda: pages.overview(
            parse({"range": ["24h"], "prop": ["feature=chat"]}, now), ADMIN
        ),
        "requests 7d, first page": lambda: pages.requests(week, ADMIN),
        "requests 7d, 95% of the rows deep": lambda: pages.requests(
            week, ADMIN, cursor=deep_cursor
        ),
        "requests 7d by cost": lambda: pages.requests(week, ADMIN, sort="cost"),
        "requests 7d, user filter": lambda: pages.requests(user, ADMIN),
        "requests 7d, property filter": lambda: pages.requests(prop, ADMIN),
        "request detail": lambda: pages.request(next(picks), ADMIN),
        "sessions 7d (rollup)": lambda: pages.sessions(week, ADMIN),
        "session detail (20 turns)": lambda: pages.session("sess-4242", ADMIN),
        "users 7d (rollup)": lambda: pages.users(week, ADMIN),
        "user detail": lambda: pages.user("user-42", week, ADMIN),
        "properties 7d (rollup)": lambda: pages.properties(week, ADMIN),
        "property values 7d (rollup)": lambda: pages.property("feature", week, ADMIN),
        "property values 24h, user filter (rows)": lambda: pages.property(
            "feature", parse({"range": ["24h"], "user": ["user-42"]}, now), ADMIN
        ),
        "filter choices": lambda: pages.options(day, ADMIN),
    }
    return {name: timed(call, repeats) for name, call in cases.items()}


def first_paint(url: str, password: str, repeats: int) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    paths = {
        "login": "/login",
        "overview": "/overview?range=7d",
        "requests": "/requests?range=7d",
        "sessions": "/sessions?range=7d",
        "users": "/users?range=7d",
        "properties": "/properties?range=7d&key=feature",
    }
    found: dict[str, dict[str, float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{url}/login")
        page.fill("input[name=username]", "bench")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_selector("body.ready", timeout=60_000)
        for name, path in paths.items():
            paints, readies = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                page.goto(f"{url}{path}")
                if name != "login":
                    page.wait_for_selector("body.ready", timeout=60_000)
                readies.append((time.perf_counter() - started) * 1000)
                paints.append(
                    page.evaluate(
                        "performance.getEntriesByName('first-contentful-paint')[0]?.startTime"
                        " ?? performance.getEntriesByName('first-paint')[0]?.startTime ?? -1"
                    )
                )
            found[name] = {
                "first_paint_ms": statistics.median(paints),
                "data_shown_ms": statistics.median(readies),
            }
        browser.close()
    return found


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--paint-repeats", type=int, default=5)
    parser.add_argument("--data-dir", help="reuse a loaded store (default: a new temporary one)")
    parser.add_argument("--out", default=str(HERE.parent / "results" / "dashboard.json"))
    args = parser.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="floopy-dashboard-bench-"))
    store = LogStore(None, str(data_dir))
    migrate(store, load_settings({}), print)
    count = int(store.rows(f"SELECT count() FROM {store.table('requests')}")[0][0])
    load_seconds = 0.0
    if count < args.rows:
        load_seconds = load(store, args.rows, lambda line: print(line, flush=True))
    count = int(store.rows(f"SELECT count() FROM {store.table('requests')}")[0][0])
    spans = int(store.rows(f"SELECT count() FROM {store.table('spans')}")[0][0])
    print(f"{count:,} requests, {spans:,} spans in {data_dir}", flush=True)
    reader = Reader(store, Limits(60, 100_000))
    pages = Pages(partial(reader.query, check=False), store.database)
    loads = {"queries": _load_average()}
    queries = page_queries(pages, store, count, args.repeats)
    users = UserStore(data_dir)
    password = "bench-password"
    users.create("bench", password, (), admin=True)
    server = DashboardServer(pages, users, Config("127.0.0.1", 0, 3600, 1000))
    server.start()
    try:
        loads["paint"] = _load_average()
        paints = first_paint(server.url, password, args.paint_repeats)
        # The machine may be shared: every query once more at the end, with its load.
        loads["queries_again"] = _load_average()
        again = page_queries(pages, store, count, args.repeats)
        loads["end"] = _load_average()
    finally:
        server.stop()
        reader.close()
        store.close()
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": count,
        "spans": spans,
        "load_seconds": load_seconds,
        "load_average": loads,
        "queries": queries,
        "queries_again": again,
        "paint": paints,
        # Without --data-dir and --out: no machine's paths in a result kept in the repository.
        "command": f"benches/dashboard/run.py --rows {args.rows} --repeats {args.repeats} "
        f"--paint-repeats {args.paint_repeats}",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    return 0


def _load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def report(result: dict[str, Any]) -> str:
    loads = result["load_average"]
    lines = [
        f"{result['rows']:,} requests, {result['spans']:,} spans; {result['machine']}; "
        f"{result['date']}; load average (1, 5, 15 min) {loads}",
        "",
        "| page API | p50 | p95 | max | again: p50 | p95 | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, sample in result["queries"].items():
        again = result["queries_again"][name]
        lines.append(
            f"| {name} | {sample['p50_ms']:.0f} ms | {sample['p95_ms']:.0f} ms "
            f"| {sample['max_ms']:.0f} ms | {again['p50_ms']:.0f} ms "
            f"| {again['p95_ms']:.0f} ms | {again['max_ms']:.0f} ms |"
        )
    lines += ["", "| page in Chromium | first paint | data shown |", "|---|---:|---:|"]
    for name, sample in result["paint"].items():
        lines.append(
            f"| {name} | {sample['first_paint_ms']:.0f} ms | {sample['data_shown_ms']:.0f} ms |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
