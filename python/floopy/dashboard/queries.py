"""The queries behind every page, one function each; the JSON API answers with what they
return, and the pages render the same.

Overview, Users, Properties and the Sessions list read the rollups (migrations 0004, 0010,
0013 and 0014) whenever the filters set are dimensions of the rollup; a filter that is not
(a custom property on the Users page, say) makes that page read the raw rows instead, with
the same answer's shape. Overview reads the hourly rollup for the whole hours inside the
range and the per-minute one for its edges, so a week costs a few thousand rows, not one per
request; its totals, breakdowns and chart come from one round trip (``GROUPING SETS``).
Users and Properties beyond two days read the daily rollups. The Sessions list finds the
page's sessions from their sort value alone, then reads names and users for those only. The
request list pages by cursor (the last row's sort value and id), so a page deep in millions
of rows costs what the first one does; a request's detail is read by its primary key.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from floopy.dashboard import conversation
from floopy.dashboard.filters import (
    FilterError,
    Filters,
    Scope,
    Sql,
    dimension_conditions,
    fits,
    raw_conditions,
    rollup_conditions,
    scope_condition,
)
from floopy.logstore.reads import Result

Run = Callable[[str, dict[str, Any]], Result]
PAGE = 50
MAX_PAGE = 1000
LIST_LIMIT = 100  # rows of the aggregate tables (users, sessions, property values)
SESSION_TURNS = 500
SPAN_SLACK_MS = 60_000  # spans looked for this long before and after their request

# The requests list: columns shown per row.
LIST_COLUMNS = (
    "request_id, time, organization, project, user_id, session_id, "
    "if(model = '', requested_model, model) AS model, provider, status, error_code, "
    "latency_ms, ttft_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd, "
    "cache_status, cache_tier, firewall_verdict, stream, path, properties"
)
SORTS = {
    "time": ("time", "DateTime64(3, 'UTC')"),
    "latency": ("latency_ms", "Float64"),
    "cost": ("ifNull(cost_usd, 0)", "Float64"),
    "tokens": ("total_tokens", "UInt32"),
}
# What the rollups can filter on, as a condition with {} for the bound value.
MINUTE_COLUMNS = {
    "organization": "organization = {}",
    "project": "project = {}",
    "model": "model = {}",
    "provider": "provider = {}",
}
USER_COLUMNS = {
    "organization": "organization = {}",
    "project": "project = {}",
    "user": "user_id = {}",
}
USER_DAY_COLUMNS = {"organization": "organization = {}", "user": "user_id = {}"}
PROPERTY_COLUMNS = {"organization": "organization = {}", "project": "project = {}"}
SESSION_COLUMNS = {
    "organization": "organization = {}",
    "user": "has(user_ids, {})",
    "session": "session_id = {}",
}


@dataclass(frozen=True)
class Tier:
    """A rollup read for part of a range: its table, time column and bucket."""

    table: str
    time_column: str
    seconds: int


MINUTE = Tier("requests_by_minute", "minute", 60)
HOUR = Tier("requests_by_hour", "hour", 3600)
OVERVIEW_COLUMNS = (
    "organization, project, model, provider, requests, errors, cost_usd, prompt_tokens, "
    "completion_tokens, total_tokens, latency_ms"
)
USER_MEASURES = (
    "sum(requests) AS requests, sum(errors) AS errors, sum(cost_usd) AS cost, "
    "sum(total_tokens) AS total_tokens, max(last_seen) AS last_seen"
)
# grouping(model, provider, project) * 2 + 1: a bit set per column left out of the set;
# 14 is the chart's rows.
OVERVIEW_SETS = {15: "total", 7: "model", 11: "provider", 13: "project", 14: "series"}


def tier_ranges(
    start: float, end: float, fine: Tier, coarse: Tier | None
) -> list[tuple[Tier, int, int]]:
    """The parts of [start of the fine bucket holding ``start``, ``end``) each tier reads:
    the coarse one for its whole buckets inside, the fine one for the edges."""
    low = int(start) // fine.seconds * fine.seconds
    high = int(end)
    if coarse is None:
        return [(fine, low, high)]
    inner_low = -(-low // coarse.seconds) * coarse.seconds
    inner_high = high // coarse.seconds * coarse.seconds
    if inner_low >= inner_high:
        return [(fine, low, high)]
    parts = [(fine, low, inner_low)] if low < inner_low else []
    parts.append((coarse, inner_low, inner_high))
    if inner_high < high:
        parts.append((fine, inner_high, high))
    return parts


@dataclass(frozen=True)
class Pages:
    run: Run
    database: str

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        result = self.run(sql, params)
        return [
            {name: _utc(value) for name, value in zip(result.columns, row, strict=True)}
            for row in result.rows
        ]

    def tiered(
        self, sql: Sql, filters: Filters, fine: Tier, coarse: Tier | None, columns: str
    ) -> str:
        """A subquery over rollups covering the range (``tier_ranges``), each part under
        the conditions ``sql`` holds so far; the rows' time is ``at``."""
        where = sql.clause()
        parts = []
        for tier, low, high in tier_ranges(filters.start, filters.end, fine, coarse):
            bounds = [f"toDateTime({sql.bind(edge, 'UInt32')}, 'UTC')" for edge in (low, high)]
            column = tier.time_column
            parts.append(
                f"SELECT toDateTime({column}, 'UTC') AS at, {columns} "
                f"FROM {self.table(tier.table)} WHERE {where} "
                f"AND {column} >= {bounds[0]} AND {column} < {bounds[1]}"
            )
        return "(" + " UNION ALL ".join(parts) + ")"

    # --- Overview ------------------------------------------------------------------------

    def overview(self, filters: Filters, scope: Scope) -> dict[str, Any]:
        bucket = bucket_seconds(filters)
        sql = Sql()
        if fits(filters, MINUTE_COLUMNS):
            source = "rollup"
            dimension_conditions(sql, filters, scope, MINUTE_COLUMNS)
            coarse = HOUR if bucket % HOUR.seconds == 0 else None
            table = self.tiered(sql, filters, MINUTE, coarse, OVERVIEW_COLUMNS)
            state, merge = "quantilesTDigestMergeState", "quantilesTDigestMerge"
        else:
            source = "rows"
            raw_conditions(sql, filters, scope)
            table = (
                "(SELECT time AS at, project, if(model = '', requested_model, model) AS model, "
                "provider, 1 AS requests, status >= 400 AS errors, "
                "ifNull(cost_usd, 0) AS cost_usd, prompt_tokens, completion_tokens, "
                f"total_tokens, latency_ms FROM {self.table('requests')} "
                f"WHERE {sql.clause()})"
            )
            state, merge = "quantilesState", "quantilesMerge"
        step = sql.bind(bucket, "UInt32")
        sums = (
            "sum(requests) AS requests, sum(errors) AS errors, sum(cost_usd) AS cost_usd, "
            "sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, "
            "sum(total_tokens) AS total_tokens"
        )
        totals = (
            "sum(requests) AS requests, sum(errors) AS errors, sum(cost_usd) AS cost, "
            "sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, "
            "sum(total_tokens) AS total_tokens"
        )
        # Merging latency digests is what costs: merge them once per model, provider and
        # project combination, then the totals and breakdowns from those few (GROUPING
        # SETS); the chart, without latency, from the same rows by time.
        grouped = self.rows(
            "SELECT grouping(model, provider, project) * 2 + 1 AS grouping_set, "
            "toString(multiIf(grouping_set = 7, toString(model), grouping_set = 11, "
            "toString(provider), grouping_set = 13, toString(project), '')) AS key, "
            f"toDateTime(0, 'UTC') AS t, {totals}, "
            f"CAST({merge}(0.5, 0.9, 0.95, 0.99)(latency) AS Array(Float64)) AS latency "
            f"FROM (SELECT model, provider, project, {sums}, "
            f"{state}(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency "
            f"FROM {table} GROUP BY model, provider, project) "
            "GROUP BY GROUPING SETS ((), (model), (provider), (project)) "
            "UNION ALL "
            f"SELECT 14 AS grouping_set, '' AS key, "
            f"toStartOfInterval(at, toIntervalSecond({step})) AS t, {totals}, "
            f"emptyArrayFloat64() AS latency FROM {table} GROUP BY t",
            sql.params,
        )
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in OVERVIEW_SETS.values()}
        for row in grouped:
            found[OVERVIEW_SETS[row.pop("grouping_set")]].append(row)
        series = sorted(found["series"], key=lambda row: row["t"])
        answer: dict[str, Any] = {
            "source": source,
            "start": filters.start,
            "end": filters.end,
            "bucket_seconds": bucket,
            "series": [
                {name: row[name] for name in ("t", "requests", "errors", "cost", "total_tokens")}
                for row in series
            ],
        }
        total = [_with_latency(row) for row in found["total"]]
        answer["totals"] = total[0] if total else {}
        for dim in ("model", "provider", "project"):
            answer[f"by_{dim}"] = sorted(
                (_with_latency(row) for row in found[dim]), key=lambda row: -row["requests"]
            )
        return answer

    # --- Requests ------------------------------------------------------------------------

    def requests(
        self,
        filters: Filters,
        scope: Scope,
        sort: str = "time",
        order: str = "desc",
        cursor: str = "",
        limit: int = PAGE,
        bodies: bool = False,
    ) -> dict[str, Any]:
        if sort not in SORTS:
            raise FilterError(f"sort: one of {', '.join(SORTS)}")
        if order not in ("asc", "desc"):
            raise FilterError("order: asc or desc")
        limit = max(1, min(limit, MAX_PAGE))
        expression, type_ = SORTS[sort]
        sql = Sql()
        raw_conditions(sql, filters, scope)
        if cursor:
            value, last_id = decode_cursor(cursor)
            compare = "<" if order == "desc" else ">"
            sql.where(
                f"({expression}, request_id) {compare} "
                f"({sql.bind(value, type_)}, {sql.bind(last_id, 'String')})"
            )
        columns = LIST_COLUMNS + (", request_body, response_body" if bodies else "")
        direction = order.upper()
        rows = self.rows(
            f"SELECT {columns}, {expression} AS sort_value FROM {self.table('requests')} "
            f"WHERE {sql.clause()} ORDER BY sort_value {direction}, request_id {direction} "
            f"LIMIT {limit + 1}",
            sql.params,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = ""
        if more:
            last = rows[-1]
            next_cursor = encode_cursor(last["sort_value"], last["request_id"])
        for row in rows:
            row.pop("sort_value")
        return {"rows": rows, "next_cursor": next_cursor}

    def request(self, request_id: str, scope: Scope) -> dict[str, Any] | None:
        sql = Sql()
        scope_condition(sql, scope)
        sql.where(f"request_id = {sql.bind(request_id, 'String')}")
        # The row by its primary key: its organization, project and hour are found first
        # from the narrow columns (the request_id skip index, 0011), then one granule read.
        key = "organization, project, toStartOfHour(time), request_id"
        found = self.rows(
            f"SELECT * FROM {self.table('requests')} WHERE ({key}) IN "
            f"(SELECT {key} FROM {self.table('requests')} WHERE {sql.clause()}) LIMIT 1",
            sql.params,
        )
        if not found:
            return None
        row = found[0]
        # By the spans' primary key; the request's time keeps the read to its month's parts.
        started = int(row["time"].timestamp() * 1000)
        spans = self.rows(
            "SELECT span_id, parent_id, name, start_time, duration_ms, status, attributes "
            f"FROM {self.table('spans')} WHERE request_id = {{id:String}} "
            "AND start_time >= fromUnixTimestamp64Milli({start:Int64}, 'UTC') "
            "AND start_time <= fromUnixTimestamp64Milli({end:Int64}, 'UTC') "
            "ORDER BY start_time, span_id LIMIT 1000",
            {
                "id": request_id,
                "start": started - SPAN_SLACK_MS,
                "end": started + int(row["latency_ms"]) + SPAN_SLACK_MS,
            },
        )
        providers = sorted(
            {s["attributes"].get("provider", "") for s in spans} - {""} | {row["provider"]} - {""}
        )
        breaker = self.rows(
            "SELECT time, provider, model, from_state, to_state, reason "
            f"FROM {self.table('circuit_breaker_events')} "
            "WHERE provider IN {providers:Array(String)} "
            "AND time >= fromUnixTimestamp64Milli({start:Int64}, 'UTC') "
            "AND time <= fromUnixTimestamp64Milli({end:Int64}, 'UTC') "
            "ORDER BY time LIMIT 100",
            {
                "providers": providers,
                "start": int(row["time"].timestamp() * 1000) - 1000,
                "end": int(row["time"].timestamp() * 1000 + row["latency_ms"]) + 1000,
            },
        )
        return {
            "request": row,
            "conversation": conversation.of(row["request_body"], row["response_body"]),
            "spans": spans,
            "events": events(row, spans, breaker),
        }

    # --- Sessions ------------------------------------------------------------------------

    def sessions(
        self, filters: Filters, scope: Scope, sort: str = "last", offset: int = 0
    ) -> dict[str, Any]:
        orders = {
            "last": "last_time",
            "cost": "cost",
            "requests": "requests",
            "first": "first_time",
        }
        if sort not in orders:
            raise FilterError(f"sort: one of {', '.join(orders)}")
        sql = Sql()
        if fits(filters, SESSION_COLUMNS):
            source = "rollup"
            rollup_conditions(sql, filters, scope, "day", "toDate", SESSION_COLUMNS)
            table = self.table("requests_by_session_day")
            measures = {
                "name": "anyLast(session_name)",
                "path": "anyLast(session_path)",
                "first_time": "min(first_time)",
                "last_time": "max(last_time)",
                "requests": "sum(requests)",
                "errors": "sum(errors)",
                "total_tokens": "sum(total_tokens)",
                "cost": "sum(cost_usd)",
                "users": "groupUniqArrayArray(64)(user_ids)",
            }
        else:
            source = "rows"
            raw_conditions(sql, filters, scope)
            sql.where("session_id != ''")
            table = self.table("requests")
            measures = {
                "name": "anyLast(session_name)",
                "path": "anyLast(session_path)",
                "first_time": "min(time)",
                "last_time": "max(time)",
                "requests": "count()",
                "errors": "countIf(status >= 400)",
                "total_tokens": "sum(total_tokens)",
                "cost": "sum(ifNull(cost_usd, 0))",
                "users": "groupUniqArrayIf(64)(user_id, user_id != '')",
            }
        # The page's sessions by their sort value alone, then everything else for those:
        # names, paths and users of every session in the range are not worth reading.
        order = orders[sort]
        where = sql.clause()
        page = (
            f"SELECT session_id FROM {table} WHERE {where} GROUP BY session_id "
            f"ORDER BY {measures[order]} DESC, session_id "
            f"LIMIT {LIST_LIMIT + 1} OFFSET {sql.bind(max(0, offset), 'UInt32')}"
        )
        columns = ", ".join(f"{expression} AS {name}" for name, expression in measures.items())
        rows = self.rows(
            f"SELECT session_id, {columns} FROM {table} "
            f"WHERE {where} AND session_id IN ({page}) GROUP BY session_id "
            f"ORDER BY {order} DESC, session_id",
            sql.params,
        )
        return _listing(rows, offset, source)

    def session(self, session_id: str, scope: Scope) -> dict[str, Any] | None:
        sql = Sql()
        scope_condition(sql, scope)
        sql.where(f"session_id = {sql.bind(session_id, 'String')}")
        rows = self.rows(
            "SELECT request_id, time, user_id, session_name, session_path, "
            "if(model = '', requested_model, model) AS model, provider, status, latency_ms, "
            "total_tokens, cost_usd, request_body, response_body "
            f"FROM {self.table('requests')} WHERE {sql.clause()} "
            f"ORDER BY time, request_id LIMIT {SESSION_TURNS}",
            sql.params,
        )
        if not rows:
            return None
        turns = []
        for row in rows:
            talk = conversation.of(row.pop("request_body"), row.pop("response_body"))
            row["prompt"] = conversation.last_user_text(talk)
            row["answer"] = conversation.answer_text(talk)
            turns.append(row)
        summary = {
            "session_id": session_id,
            "name": next((r["session_name"] for r in reversed(rows) if r["session_name"]), ""),
            "first_time": rows[0]["time"],
            "last_time": rows[-1]["time"],
            "requests": len(rows),
            "cost": sum(r["cost_usd"] or 0 for r in rows),
            "total_tokens": sum(r["total_tokens"] for r in rows),
            "users": sorted({r["user_id"] for r in rows} - {""}),
        }
        return {"session": summary, "turns": turns}

    # --- Users ---------------------------------------------------------------------------

    def users(
        self, filters: Filters, scope: Scope, sort: str = "cost", offset: int = 0
    ) -> dict[str, Any]:
        orders = {
            "cost": "cost",
            "requests": "requests",
            "tokens": "total_tokens",
            "errors": "errors",
            "last": "last_seen",
        }
        if sort not in orders:
            raise FilterError(f"sort: one of {', '.join(orders)}")
        sql = Sql()
        source, table = self._user_source(sql, filters, scope)
        rows = self.rows(
            f"SELECT user_id, {USER_MEASURES} FROM {table} GROUP BY user_id "
            f"ORDER BY {orders[sort]} DESC, user_id "
            f"LIMIT {LIST_LIMIT + 1} OFFSET {sql.bind(max(0, offset), 'UInt32')}",
            sql.params,
        )
        answer = _listing(rows, offset, source)
        names = [row["user_id"] for row in answer["rows"]]
        if names:
            trend_sql = Sql()
            trend_sql.where(f"user_id IN {trend_sql.bind(names, 'Array(String)')}")
            _, table = self._user_source(trend_sql, filters, scope)
            step = trend_sql.bind(trend_bucket(filters), "UInt32")
            counts = self.rows(
                f"SELECT user_id, toStartOfInterval(at, toIntervalSecond({step})) AS t, "
                f"sum(requests) AS requests FROM {table} GROUP BY user_id, t ORDER BY t",
                trend_sql.params,
            )
            trends: dict[str, list[Any]] = {}
            for row in counts:
                trends.setdefault(row["user_id"], []).append([row["t"], row["requests"]])
            for row in answer["rows"]:
                row["trend"] = trends.get(row["user_id"], [])
        return answer

    def user(self, user_id: str, filters: Filters, scope: Scope) -> dict[str, Any] | None:
        sql = Sql()
        sql.where(f"user_id = {sql.bind(user_id, 'String')}")
        source, table = self._user_source(sql, filters, scope)
        totals = self.rows(f"SELECT {USER_MEASURES} FROM {table} HAVING requests > 0", sql.params)
        if not totals:
            return None
        step = sql.bind(trend_bucket(filters), "UInt32")
        series = self.rows(
            f"SELECT toStartOfInterval(at, toIntervalSecond({step})) AS t, {USER_MEASURES} "
            f"FROM {table} GROUP BY t ORDER BY t",
            sql.params,
        )
        return {"user_id": user_id, "source": source, "totals": totals[0], "series": series}

    def _user_source(self, sql: Sql, filters: Filters, scope: Scope) -> tuple[str, str]:
        """Where the Users pages read (``rollup`` or ``rows``), as a subquery of rows with
        ``at``, ``user_id`` and the measures, under the conditions ``sql`` holds and these
        filters. Ranges beyond two days (charted per day) read the daily rollup from the
        start of their first day, unless filtered by project; others the hourly one."""
        columns = "user_id, requests, errors, cost_usd, total_tokens, last_seen"
        if fits(filters, USER_DAY_COLUMNS) and trend_bucket(filters) == 86400:
            rollup_conditions(sql, filters, scope, "day", "toDate", USER_DAY_COLUMNS)
            return "rollup", (
                f"(SELECT toDateTime(day, 'UTC') AS at, {columns} "
                f"FROM {self.table('requests_by_user_day')} WHERE {sql.clause()})"
            )
        if fits(filters, USER_COLUMNS):
            rollup_conditions(sql, filters, scope, "hour", "toStartOfHour", USER_COLUMNS)
            return "rollup", (
                f"(SELECT hour AS at, {columns} "
                f"FROM {self.table('requests_by_user_hour')} WHERE {sql.clause()})"
            )
        raw_conditions(sql, filters, scope)
        sql.where("user_id != ''")
        return "rows", (
            "(SELECT time AS at, user_id, 1 AS requests, status >= 400 AS errors, "
            "ifNull(cost_usd, 0) AS cost_usd, total_tokens, time AS last_seen "
            f"FROM {self.table('requests')} WHERE {sql.clause()})"
        )

    # --- Properties ----------------------------------------------------------------------

    def properties(self, filters: Filters, scope: Scope) -> dict[str, Any]:
        sql = Sql()
        if fits(filters, PROPERTY_COLUMNS):
            source = "rollup"
            table, _ = self._property_rollup(sql, filters, scope)
            query = (
                "SELECT property, sum(requests) AS requests, sum(cost_usd) AS cost, "
                f"uniqExact(value) AS values FROM {table} WHERE {sql.clause()} "
                "GROUP BY property"
            )
        else:
            source = "rows"
            raw_conditions(sql, filters, scope)
            query = (
                "SELECT property, count() AS requests, sum(ifNull(cost_usd, 0)) AS cost, "
                f"uniqExact(value) AS values FROM {self.table('requests')} "
                "ARRAY JOIN mapKeys(properties) AS property, mapValues(properties) AS value "
                f"WHERE {sql.clause()} GROUP BY property"
            )
        rows = self.rows(f"{query} ORDER BY requests DESC, property LIMIT 1000", sql.params)
        return {"source": source, "rows": rows}

    def property(self, key: str, filters: Filters, scope: Scope) -> dict[str, Any]:
        sql = Sql()
        if fits(filters, PROPERTY_COLUMNS):
            source = "rollup"
            table, column = self._property_rollup(sql, filters, scope)
            sql.where(f"property = {sql.bind(key, 'String')}")
            source_sql = (
                f"SELECT toDateTime({column}, 'UTC') AS at, value, requests, errors, "
                f"total_tokens, cost_usd FROM {table} WHERE {sql.clause()}"
            )
        else:
            source = "rows"
            raw_conditions(sql, filters, scope)
            bound = sql.bind(key, "String")
            sql.where(f"mapContains(properties, {bound})")
            source_sql = (
                f"SELECT time AS at, properties[{bound}] AS value, 1 AS requests, "
                "status >= 400 AS errors, total_tokens, ifNull(cost_usd, 0) AS cost_usd "
                f"FROM {self.table('requests')} WHERE {sql.clause()}"
            )
        values = self.rows(
            "SELECT value, sum(requests) AS requests, sum(errors) AS errors, "
            "sum(total_tokens) AS total_tokens, sum(cost_usd) AS cost "
            f"FROM ({source_sql}) GROUP BY value ORDER BY cost DESC, requests DESC, value "
            f"LIMIT {LIST_LIMIT}",
            sql.params,
        )
        step = sql.bind(trend_bucket(filters), "UInt32")
        shown = sql.bind([row["value"] for row in values[:10]], "Array(String)")
        series = self.rows(
            "SELECT toStartOfInterval(at, toIntervalSecond("
            f"{step})) AS t, value, sum(requests) AS requests, sum(total_tokens) AS total_tokens, "
            f"sum(cost_usd) AS cost FROM ({source_sql}) WHERE value IN {shown} "
            "GROUP BY t, value ORDER BY t, value",
            sql.params,
        )
        return {
            "property": key,
            "source": source,
            "bucket_seconds": trend_bucket(filters),
            "values": values,
            "series": series,
        }

    def _property_rollup(self, sql: Sql, filters: Filters, scope: Scope) -> tuple[str, str]:
        """The property rollup for this range, under its conditions: per day beyond two
        days (charted per day, from the start of the first day), per hour otherwise. Returns
        the table and its time column."""
        if trend_bucket(filters) == 86400:
            rollup_conditions(sql, filters, scope, "day", "toDate", PROPERTY_COLUMNS)
            return self.table("requests_by_property_day"), "day"
        rollup_conditions(sql, filters, scope, "hour", "toStartOfHour", PROPERTY_COLUMNS)
        return self.table("requests_by_property_hour"), "hour"

    # --- Filter choices ------------------------------------------------------------------

    def options(self, filters: Filters, scope: Scope) -> dict[str, Any]:
        """The values the filter form offers: models, providers, projects, organizations
        seen in the range, and property keys."""
        sql = Sql()
        scope_condition(sql, scope)
        table = self.tiered(sql, filters, MINUTE, HOUR, "organization, project, model, provider")
        kinds = ("model", "provider", "project", "organization")
        found = self.rows(
            "SELECT "
            + ", ".join(f"groupUniqArray(200)(toString({name})) AS {name}" for name in kinds)
            + f" FROM {table}",
            sql.params,
        )[0]
        answer = {name: sorted(found[name]) for name in kinds}
        answer["property"] = [
            row["property"] for row in self.properties(_range_only(filters), scope)["rows"]
        ]
        return answer


def _utc(value: Any) -> Any:
    """Every time in the log is UTC; say so, so a browser shows it in its own zone."""
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


def _range_only(filters: Filters) -> Filters:
    return Filters(filters.start, filters.end)


def _listing(rows: list[dict[str, Any]], offset: int, source: str) -> dict[str, Any]:
    more = len(rows) > LIST_LIMIT
    return {
        "source": source,
        "rows": rows[:LIST_LIMIT],
        "next_offset": offset + LIST_LIMIT if more else None,
    }


def _with_latency(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row.pop("t", None)
    latency = row.pop("latency") or [0, 0, 0, 0]
    row["p50_ms"], row["p90_ms"], row["p95_ms"], row["p99_ms"] = (float(v) for v in latency)
    return row


def bucket_seconds(filters: Filters) -> int:
    """A chart's bucket: about 60 of them over the range, at least a minute, in whole
    minutes, hours or days."""
    span = filters.end - filters.start
    for step in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400):
        if span / step <= 72:
            return step
    return 86400 * max(1, round(span / 86400 / 60))


def trend_bucket(filters: Filters) -> int:
    """Trends and property series: hourly up to two days, daily beyond."""
    return 3600 if filters.end - filters.start <= 2 * 86400 else 86400


def encode_cursor(value: Any, request_id: str) -> str:
    if hasattr(value, "isoformat"):
        value = value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    raw = json.dumps([value, request_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, request_id = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise FilterError("cursor: not one this dashboard made") from exc
    if not isinstance(request_id, str) or not isinstance(value, str | int | float):
        raise FilterError("cursor: not one this dashboard made")
    return value, request_id


def events(
    row: dict[str, Any], spans: list[dict[str, Any]], breaker: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What happened to the request besides its answer: provider attempts that failed (and
    so retries or a fallback), the cache's and the firewall's outcome, circuit-breaker
    changes of its providers while it ran."""
    found: list[dict[str, Any]] = []
    attempts = [s for s in spans if s["name"] == "provider_attempt"]
    for number, span in enumerate(attempts, 1):
        attributes = span["attributes"]
        target = f"{attributes.get('provider', '?')}/{attributes.get('model', '?')}"
        if span["status"] != "ok":
            message = attributes.get("error.message") or attributes.get("error.code") or ""
            found.append(
                {
                    "time": span["start_time"],
                    "kind": "attempt failed",
                    "detail": f"attempt {number} to {target}: {span['status']} {message}".strip(),
                }
            )
        elif number > 1:
            found.append(
                {"time": span["start_time"], "kind": "retry", "detail": f"{target} answered"}
            )
    if row.get("fallback_used"):
        found.append(
            {
                "time": row["time"],
                "kind": "fallback",
                "detail": f"answered by {row['provider']}/{row['model']}",
            }
        )
    if row.get("cache_status"):
        tier = f" ({row['cache_tier']})" if row.get("cache_tier") else ""
        found.append(
            {"time": row["time"], "kind": "cache", "detail": f"{row['cache_status']}{tier}"}
        )
    if row.get("firewall_verdict"):
        score = row.get("firewall_score")
        found.append(
            {
                "time": row["time"],
                "kind": "firewall",
                "detail": row["firewall_verdict"]
                + (f" (score {score:.2f})" if score is not None else "")
                + (f" by {row['firewall_backend']}" if row.get("firewall_backend") else ""),
            }
        )
    for event in breaker:
        found.append(
            {
                "time": event["time"],
                "kind": "circuit breaker",
                "detail": f"{event['provider']}/{event['model']}: {event['from_state']} -> "
                f"{event['to_state']} {event['reason']}".strip(),
            }
        )
    found.sort(key=lambda event: str(event["time"]))
    return found
