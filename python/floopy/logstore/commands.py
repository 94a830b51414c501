"""``floopy logs query`` and ``floopy logs tail``: the request log while the gateway serves,
through the log store process's read channel (``reads``)."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from floopy.logstore.reads import ChannelClient, ChannelError, Result, sql_string

TAIL_COLUMNS = (
    "request_id",
    "toString(logged_at)",
    "toString(time)",
    "status",
    "model",
    "provider",
    "latency_ms",
    "total_tokens",
    "cost_usd",
    "user_id",
    "session_id",
)
TAIL_BATCH = 1000
SEEN = 10_000  # request ids remembered, so a row seen once is printed once
# Rows become queryable in insert order by logged_at; a query asks again this far back so a
# batch whose insert finished a little after the last one started is not missed.
OVERLAP_SECONDS = 5


def query_command(client: ChannelClient, sql: str, fmt: str, out: TextIO) -> int:
    result = client.query(sql)
    if fmt == "jsonl":
        for row in result.rows:
            out.write(json.dumps(dict(zip(result.columns, row, strict=True)), default=str) + "\n")
    else:
        out.write(table(result) + "\n")
        out.write(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})\n")
    return 0


def table(result: Result) -> str:
    cells = [[_cell(value) for value in row] for row in result.rows]
    widths = [len(name) for name in result.columns]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(name.ljust(width) for name, width in zip(result.columns, widths, strict=True)),
        "  ".join("-" * width for width in widths),
    ]
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


@dataclass(frozen=True)
class TailFilters:
    user: str | None = None
    session: str | None = None
    model: str | None = None
    status: int | None = None

    def sql(self) -> str:
        clauses = []
        if self.user is not None:
            clauses.append(f"user_id = {sql_string(self.user)}")
        if self.session is not None:
            clauses.append(f"session_id = {sql_string(self.session)}")
        if self.model is not None:
            clauses.append(
                f"(model = {sql_string(self.model)} OR requested_model = {sql_string(self.model)})"
            )
        if self.status is not None:
            clauses.append(f"status = {int(self.status)}")
        return "".join(f" AND {clause}" for clause in clauses)


class Tail:
    """Follows new rows: each poll asks for rows logged since a little before the last one
    seen, and prints those not printed yet, oldest first."""

    def __init__(self, client: ChannelClient, database: str, filters: TailFilters) -> None:
        self.client = client
        self.database = database
        self.filters = filters
        self.since = "now64(6)"  # the first poll starts from now: only new requests
        self.seen: OrderedDict[str, None] = OrderedDict()

    def poll(self) -> list[list[Any]]:
        sql = (
            f"SELECT {', '.join(TAIL_COLUMNS)} FROM {self.database}.requests "
            f"WHERE logged_at >= {self.since} - INTERVAL {OVERLAP_SECONDS} SECOND"
            f"{self.filters.sql()} ORDER BY logged_at LIMIT {TAIL_BATCH}"
        )
        rows = self.client.query(sql).rows
        fresh = [row for row in rows if row[0] not in self.seen]
        for row in fresh:
            self.seen[row[0]] = None
            if len(self.seen) > SEEN:
                self.seen.popitem(last=False)
        if rows:
            self.since = f"toDateTime64({sql_string(str(rows[-1][1]))}, 6, 'UTC')"
        elif self.since == "now64(6)":
            self.since = f"toDateTime64({sql_string(_utc_now())}, 6, 'UTC')"
        return fresh


def tail_line(row: Sequence[Any]) -> str:
    request_id, _, started, status, model, provider, latency, tokens, cost, user, session = row
    cost_text = "-" if cost is None else f"${float(cost):.6f}"
    return (
        f"{str(started)[:23]}  {status}  {model or '-'}  {provider or '-'}  "
        f"{float(latency):.0f}ms  {tokens} tok  {cost_text}  "
        f"user={user or '-'}  session={session or '-'}  {request_id}"
    )


def tail_command(
    tail: Tail,
    out: TextIO,
    *,
    interval: float = 0.5,
    polls: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Prints new requests as they land until interrupted (or ``polls`` polls)."""
    done = 0
    while polls is None or done < polls:
        try:
            for row in tail.poll():
                out.write(tail_line(row) + "\n")
            out.flush()
        except ChannelError as exc:
            out.write(f"# {exc}; trying again\n")
            out.flush()
        done += 1
        sleep(interval)
    return 0


def _utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
