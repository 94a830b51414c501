"""The queries behind every page, one function each; the JSON API answers with what they
return, and the pages render the same.

Overview, Users, Properties and the Sessions list read the rollups (migrations 0004 and
0010) whenever the filters set are dimensions of the rollup; a filter that is not (a custom
property on the Users page, say) makes that page read the raw rows instead, with the same
answer's shape. The request list pages by cursor (the last row's sort value and id), so a
page deep in millions of rows costs what the first one does.
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
PROPERTY_COLUMNS = {"organization": "organization = {}", "project": "project = {}"}
SESSION_COLUMNS = {
    "organization": "organization = {}",
    "user": "has(user_ids, {})",
    "session": "session_id = {}",
}


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

    # --- Overview ------------------------------------------------------------------------

    def overview(self, filters: Filters, scope: Scope) -> dict[str, Any]:
        bucket = bucket_seconds(filters)
        sql = Sql()
        if fits(filters, MINUTE_COLUMNS):
            source = "rollup"
            rollup_conditions(sql, filters, scope, "minute", "toStartOfMinute", MINUTE_COLUMNS)
            table = self.table("requests_by_minute")
            measures = (
                "sum(requests) AS requests, sum(errors) AS errors, sum(cost_usd) AS cost, "
                "sum(prompt_tokens) AS prompt_tokens, "
                "sum(completion_tokens) AS completion_tokens, "
                "sum(total_tokens) AS total_tokens, "
                "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency"
            )
            time_column = "minute"
            dims = {"model": "model", "provider": "provider", "project": "project"}
        else:
            source = "rows"
            raw_conditions(sql, filters, scope)
            table = self.table("requests")
            measures = (
                "count() AS requests, countIf(status >= 400) AS errors, "
                "sum(ifNull(cost_usd, 0)) AS cost, sum(prompt_tokens) AS prompt_tokens, "
                "sum(completion_tokens) AS completion_tokens, "
                "sum(total_tokens) AS total_tokens, "
                "quantiles(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency"
            )
            time_column = "time"
            dims = {
                "model": "if(model = '', requested_model, model)",
                "provider": "provider",
                "project": "project",
            }
        where = sql.clause()
        parts = [f"SELECT 'total' AS dim, '' AS key, {measures} FROM {table} WHERE {where}"]
        parts += [
            f"SELECT '{name}' AS dim, toString({expression}) AS key, {measures} "
            f"FROM {table} WHERE {where} GROUP BY key"
            for name, expression in dims.items()
        ]
        grouped = self.rows(" UNION ALL ".join(parts), sql.params)
        step = sql.bind(bucket, "UInt32")
        series = self.rows(
            f"SELECT toStartOfInterval({time_column}, toIntervalSecond({step})) AS t, "
            "sum(requests) AS requests, sum(errors) AS errors, sum(cost) AS cost, "
            "sum(total_tokens) AS total_tokens FROM ("
            f"SELECT {time_column}, "
            + (
                "requests, errors, cost_usd AS cost, total_tokens"
                if source == "rollup"
                else "1 AS requests, status >= 400 AS errors, ifNull(cost_usd, 0) AS cost, "
                "total_tokens"
            )
            + f" FROM {table} WHERE {where}) GROUP BY t ORDER BY t",
            sql.params,
        )
        answer: dict[str, Any] = {
            "source": source,
            "start": filters.start,
            "end": filters.end,
            "bucket_seconds": bucket,
            "series": series,
        }
        for dim in ("total", *dims):
            answer[dim if dim == "total" else f"by_{dim}"] = [
                _with_latency(row) for row in grouped if row["dim"] == dim
            ]
        total = answer.pop("total")
        answer["totals"] = total[0] if total else {}
        for dim in dims:
            answer[f"by_{dim}"].sort(key=lambda row: -row["requests"])
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
        found = self.rows(
            f"SELECT * FROM {self.table('requests')} WHERE {sql.clause()} LIMIT 1", sql.params
        )
        if not found:
            return None
        row = found[0]
        spans = self.rows(
            "SELECT span_id, parent_id, name, start_time, duration_ms, status, attributes "
            f"FROM {self.table('spans')} WHERE request_id = {{id:String}} "
            "ORDER BY start_time, span_id LIMIT 1000",
            {"id": request_id},
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
            query = (
                "SELECT session_id, anyLast(session_name) AS name, "
                "anyLast(session_path) AS path, min(first_time) AS first_time, "
                "max(last_time) AS last_time, sum(requests) AS requests, "
                "sum(errors) AS errors, sum(total_tokens) AS total_tokens, "
                "sum(cost_usd) AS cost, groupUniqArrayArray(64)(user_ids) AS users "
                f"FROM {self.table('requests_by_session_day')} WHERE {sql.clause()} "
                "GROUP BY session_id"
            )
        else:
            source = "rows"
            raw_conditions(sql, filters, scope)
            sql.where("session_id != ''")
            query = (
                "SELECT session_id, anyLast(session_name) AS name, "
                "anyLast(session_path) AS path, min(time) AS first_time, "
                "max(time) AS last_time, count() AS requests, "
                "countIf(status >= 400) AS errors, sum(total_tokens) AS total_tokens, "
                "sum(ifNull(cost_usd, 0)) AS cost, "
                "groupUniqArrayIf(64)(user_id, user_id != '') AS users "
                f"FROM {self.table('requests')} WHERE {sql.clause()} GROUP BY session_id"
            )
        rows = self.rows(
            f"{query} ORDER BY {orders[sort]} DESC, session_id "
            f"LIMIT {LIST_LIMIT + 1} OFFSET {sql.bind(max(0, offset), 'UInt32')}",
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
        source, table, measures, time_column = self._user_source(sql, filters, scope)
        rows = self.rows(
            f"SELECT user_id, {measures} FROM {table} WHERE {sql.clause()} GROUP BY user_id "
            f"ORDER BY {orders[sort]} DESC, user_id "
            f"LIMIT {LIST_LIMIT + 1} OFFSET {sql.bind(max(0, offset), 'UInt32')}",
            sql.params,
        )
        answer = _listing(rows, offset, source)
        names = [row["user_id"] for row in answer["rows"]]
        if names:
            trend_sql = Sql()
            self._user_source(trend_sql, filters, scope)
            trend_sql.where(f"user_id IN {trend_sql.bind(names, 'Array(String)')}")
            step = trend_sql.bind(trend_bucket(filters), "UInt32")
            counts = self.rows(
                f"SELECT user_id, toStartOfInterval({time_column}, toIntervalSecond({step})) "
                f"AS t, {_requests_measure(source)} AS requests FROM {table} "
                f"WHERE {trend_sql.clause()} GROUP BY user_id, t ORDER BY t",
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
        source, table, measures, time_column = self._user_source(sql, filters, scope)
        sql.where(f"user_id = {sql.bind(user_id, 'String')}")
        totals = self.rows(
            f"SELECT {measures} FROM {table} WHERE {sql.clause()} HAVING requests > 0",
            sql.params,
        )
        if not totals:
            return None
        step = sql.bind(trend_bucket(filters), "UInt32")
        series = self.rows(
            f"SELECT toStartOfInterval({time_column}, toIntervalSecond({step})) AS t, "
            f"{measures} FROM {table} WHERE {sql.clause()} GROUP BY t ORDER BY t",
            sql.params,
        )
        return {"user_id": user_id, "source": source, "totals": totals[0], "series": series}

    def _user_source(self, sql: Sql, filters: Filters, scope: Scope) -> tuple[str, str, str, str]:
        if fits(filters, USER_COLUMNS):
            rollup_conditions(sql, filters, scope, "hour", "toStartOfHour", USER_COLUMNS)
            return (
                "rollup",
                self.table("requests_by_user_hour"),
                "sum(requests) AS requests, sum(errors) AS errors, sum(cost_usd) AS cost, "
                "sum(total_tokens) AS total_tokens, max(last_seen) AS last_seen",
                "hour",
            )
        raw_conditions(sql, filters, scope)
        sql.where("user_id != ''")
        return (
            "rows",
            self.table("requests"),
            "count() AS requests, countIf(status >= 400) AS errors, "
            "sum(ifNull(cost_usd, 0)) AS cost, sum(total_tokens) AS total_tokens, "
            "max(time) AS last_seen",
            "time",
        )

    # --- Properties ----------------------------------------------------------------------

    def properties(self, filters: Filters, scope: Scope) -> dict[str, Any]:
        sql = Sql()
        if fits(filters, PROPERTY_COLUMNS):
            source = "rollup"
            rollup_conditions(sql, filters, scope, "hour", "toStartOfHour", PROPERTY_COLUMNS)
            query = (
                "SELECT property, sum(requests) AS requests, sum(cost_usd) AS cost, "
                "uniqExact(value) AS values "
                f"FROM {self.table('requests_by_property_hour')} WHERE {sql.clause()} "
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
            rollup_conditions(sql, filters, scope, "hour", "toStartOfHour", PROPERTY_COLUMNS)
            sql.where(f"property = {sql.bind(key, 'String')}")
            source_sql = (
                "SELECT hour AS at, value, requests, errors, total_tokens, cost_usd "
                f"FROM {self.table('requests_by_property_hour')} WHERE {sql.clause()}"
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

    # --- Filter choices ------------------------------------------------------------------

    def options(self, filters: Filters, scope: Scope) -> dict[str, Any]:
        """The values the filter form offers: models, providers, projects, organizations
        seen in the range, and property keys."""
        sql = Sql()
        rollup_conditions(sql, filters, scope, "minute", "toStartOfMinute", {})
        where = sql.clause()
        table = self.table("requests_by_minute")
        rows = self.rows(
            " UNION ALL ".join(
                f"SELECT '{name}' AS kind, groupUniqArray(200)(toString({name})) AS found "
                f"FROM {table} WHERE {where}"
                for name in ("model", "provider", "project", "organization")
            ),
            sql.params,
        )
        answer = {row["kind"]: sorted(row["found"]) for row in rows}
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


def _requests_measure(source: str) -> str:
    return "sum(requests)" if source == "rollup" else "count()"


def _listing(rows: list[dict[str, Any]], offset: int, source: str) -> dict[str, Any]:
    more = len(rows) > LIST_LIMIT
    return {
        "source": source,
        "rows": rows[:LIST_LIMIT],
        "next_offset": offset + LIST_LIMIT if more else None,
    }


def _with_latency(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row.pop("dim", None)
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
