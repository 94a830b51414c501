"""The dashboard's filters: read from a page's query string, turned into SQL conditions whose
every value is a server-side query parameter (``{name:Type}``), never SQL text.

The same query string drives every page and its API, so a filtered view is a URL that can be
bookmarked and shared:

``range`` (``1h``, ``24h``, ``7d``, ``30d``, ``90d``) or ``from``/``to`` (ISO 8601, UTC
when no offset is given), ``model``, ``provider``, ``project``, ``organization``,
``status`` (a code, ``2xx``..``5xx`` or ``error``), ``cache``, ``tier``, ``firewall``,
``user``, ``session``, and ``prop`` (``key=value``, repeatable).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
DEFAULT_RANGE = "24h"
MAX_VALUE = 512  # characters of one filter value
_STATUS_CLASS = re.compile(r"^([1-5])xx$")

# Filters that are plain equality on one column of the requests table.
COLUMNS = {
    "model": "if(model = '', requested_model, model)",
    "provider": "provider",
    "project": "project",
    "organization": "organization",
    "cache": "cache_status",
    "tier": "cache_tier",
    "firewall": "firewall_verdict",
    "user": "user_id",
    "session": "session_id",
}


class FilterError(ValueError):
    """A filter value the dashboard cannot use (answered 400)."""


@dataclass(frozen=True)
class Filters:
    start: float  # epoch seconds, inclusive
    end: float  # epoch seconds, exclusive
    equal: dict[str, str] = field(default_factory=dict)  # COLUMNS name -> value
    status: str = ""
    properties: tuple[tuple[str, str], ...] = ()

    def used(self) -> set[str]:
        """The names of the filters set, besides the time range."""
        names = set(self.equal)
        if self.status:
            names.add("status")
        if self.properties:
            names.add("prop")
        return names


@dataclass(frozen=True)
class Scope:
    """The organizations a dashboard user sees; None: all of them (an admin)."""

    organizations: tuple[str, ...] | None


def parse(query: Mapping[str, Sequence[str]], now: float) -> Filters:
    def one(name: str) -> str:
        values = query.get(name) or [""]
        value = values[-1].strip()
        if len(value) > MAX_VALUE:
            raise FilterError(f"{name}: at most {MAX_VALUE} characters")
        return value

    span = RANGES.get(one("range") or DEFAULT_RANGE)
    if span is None:
        raise FilterError(f"range: one of {', '.join(RANGES)}")
    end = _time(one("to"), "to") if one("to") else now
    start = _time(one("from"), "from") if one("from") else end - span
    if start >= end:
        raise FilterError("from: must be before to")
    status = one("status").lower()
    if status and not (status.isdigit() or _STATUS_CLASS.match(status) or status == "error"):
        raise FilterError("status: a code like 429, a class like 5xx, or error")
    properties = []
    for item in query.get("prop") or []:
        key, sep, value = item.partition("=")
        if not item.strip():
            continue
        if not sep or not key.strip():
            raise FilterError("prop: key=value")
        properties.append((key.strip(), value.strip()))
    equal = {name: one(name) for name in COLUMNS if one(name)}
    return Filters(start, end, equal, status, tuple(properties))


def _time(text: str, name: str) -> float:
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"{name}: an ISO 8601 time or Unix seconds") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


class Sql:
    """Conditions and the parameters they bind."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.conditions: list[str] = []

    def bind(self, value: Any, type_: str) -> str:
        name = f"v{len(self.params)}"
        self.params[name] = value
        return "{" + name + ":" + type_ + "}"

    def where(self, condition: str) -> None:
        self.conditions.append(condition)

    def clause(self) -> str:
        return " AND ".join(self.conditions) if self.conditions else "1"


def scope_condition(sql: Sql, scope: Scope) -> None:
    if scope.organizations is not None:
        sql.where(f"organization IN {sql.bind(list(scope.organizations), 'Array(String)')}")


def raw_conditions(sql: Sql, filters: Filters, scope: Scope) -> None:
    """Conditions on the requests table."""
    scope_condition(sql, scope)
    sql.where(f"time >= fromUnixTimestamp64Milli({sql.bind(_ms(filters.start), 'Int64')}, 'UTC')")
    sql.where(f"time < fromUnixTimestamp64Milli({sql.bind(_ms(filters.end), 'Int64')}, 'UTC')")
    for name, value in filters.equal.items():
        sql.where(f"{COLUMNS[name]} = {sql.bind(value, 'String')}")
    if filters.status:
        sql.where(status_condition(sql, filters.status))
    for key, value in filters.properties:
        sql.where(f"properties[{sql.bind(key, 'String')}] = {sql.bind(value, 'String')}")


def status_condition(sql: Sql, status: str) -> str:
    if status == "error":
        return "status >= 400"
    if status.isdigit():
        return f"status = {sql.bind(int(status), 'UInt16')}"
    return f"intDiv(status, 100) = {sql.bind(int(status[0]), 'UInt16')}"


def rollup_conditions(
    sql: Sql,
    filters: Filters,
    scope: Scope,
    time_column: str,
    round_to: str,
    columns: Mapping[str, str],
) -> None:
    """Conditions on a rollup whose rows are per ``round_to`` (``toStartOfHour``...): the
    range takes the whole first bucket. ``columns`` maps the filters the rollup can answer
    to its expressions; ``fits`` says whether it can answer these filters at all."""
    dimension_conditions(sql, filters, scope, columns)
    start = sql.bind(int(filters.start), "UInt32")
    end = sql.bind(int(filters.end), "UInt32")
    sql.where(f"{time_column} >= {round_to}(toDateTime({start}, 'UTC'))")
    sql.where(f"{time_column} < toDateTime({end}, 'UTC')")


def dimension_conditions(
    sql: Sql, filters: Filters, scope: Scope, columns: Mapping[str, str]
) -> None:
    """The scope and the equality filters on a rollup, without its time range."""
    scope_condition(sql, scope)
    for name, value in filters.equal.items():
        sql.where(columns[name].format(sql.bind(value, "String")))


def fits(filters: Filters, columns: Mapping[str, str]) -> bool:
    return filters.used() <= set(columns)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
