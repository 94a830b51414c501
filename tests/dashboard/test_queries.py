"""Every page's query against the real embedded engine (chDB), with rows whose answers are
known: the rollups agree with the raw rows, cursors page through every row once, scopes
hide other organizations, and hostile filter values find nothing.

chDB admits one data path per process: the module shares one store and closes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from floopy.dashboard.filters import Filters, Scope, parse
from floopy.dashboard.queries import Pages
from floopy.logstore.reads import Limits, Reader
from floopy.observability.migrations import migrate
from floopy.observability.store import LogStore
from floopy.settings import load_settings

NOW = time.time()
DAY = 86400.0
ALL = Scope(None)
ACME = Scope(("acme",))


def row(number: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request_id": f"r{number:03d}",
        "time": NOW - 3600,
        "organization": "acme",
        "project": "web",
        "model": "gpt-4o-mini",
        "provider": "mock",
        "status": 200,
        "latency_ms": 100.0 + number,
        "total_tokens": 10 * number,
        "prompt_tokens": 6 * number,
        "completion_tokens": 4 * number,
        "cost_usd": 0.01 * number,
        "properties": {},
        "stage_latency_ms": {"dispatch": 80.0, "auth": 1.0},
    }
    return {**base, **fields}


def chat(prompt: str, answer: str) -> dict[str, str]:
    return {
        "request_body": json.dumps({"messages": [{"role": "user", "content": prompt}]}),
        "response_body": json.dumps({"choices": [{"message": {"content": answer}}]}),
    }


ROWS = [
    row(
        1,
        user_id="u1",
        session_id="s1",
        time=NOW - 2.5 * DAY,
        **chat("turn one", "a1"),
        properties={"feature": "summarize"},
    ),
    row(
        2,
        user_id="u1",
        session_id="s1",
        time=NOW - 1.5 * DAY,
        **chat("turn two", "a2"),
        properties={"feature": "summarize"},
    ),
    row(
        3,
        user_id="u1",
        session_id="s1",
        time=NOW - 0.5 * DAY,
        **chat("turn three", "a3"),
        properties={"feature": "chat"},
    ),
    row(
        4,
        user_id="u2",
        status=502,
        model="",
        requested_model="gpt-4.1",
        provider="",
        properties={"feature": "chat", "team": "blue"},
    ),
    row(
        5, user_id="u3", organization="globex", session_id="s9", properties={"feature": "summarize"}
    ),
    row(6, time=NOW - 40 * DAY),  # outside every range used here
]
TRACE = {
    "request_id": "r001",
    "organization": "acme",
    "project": "web",
    "spans": [
        {
            "span_id": "root",
            "parent_id": "",
            "name": "request",
            "start_time": NOW - 2.5 * DAY,
            "duration_ms": 101.0,
            "status": "ok",
            "attributes": {},
        },
        {
            "span_id": "a1",
            "parent_id": "root",
            "name": "provider_attempt",
            "start_time": NOW - 2.5 * DAY + 0.01,
            "duration_ms": 50.0,
            "status": "error",
            "attributes": {"provider": "mock", "model": "gpt-4o-mini", "error.message": "boom"},
        },
    ],
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    store = LogStore(None, str(tmp_path_factory.mktemp("dashboard-store")))
    migrate(store, load_settings({}), lambda line: None)
    store.insert_lines("requests", [msgspec.json.encode(r) for r in ROWS])
    store.insert_lines("traces", [msgspec.json.encode(TRACE)])
    reader = Reader(store, Limits(30, 10_000))
    yield Pages(reader.query, store.database)
    reader.close()
    store.close()


def week(**query: str) -> Filters:
    return parse({"range": ["7d"], **{k: [v] for k, v in query.items()}}, NOW)


def test_overview_from_the_rollup_matches_the_rows(pages: Pages) -> None:
    everything = pages.overview(week(), ALL)
    assert everything["source"] == "rollup"
    totals = everything["totals"]
    assert (totals["requests"], totals["errors"]) == (5, 1)
    assert totals["cost"] == pytest.approx(0.15)
    assert {r["key"]: r["requests"] for r in everything["by_model"]} == {
        "gpt-4o-mini": 4,
        "gpt-4.1": 1,
    }
    assert sum(point["requests"] for point in everything["series"]) == 5
    acme = pages.overview(week(), ACME)["totals"]
    assert acme["requests"] == 4
    by_rows = pages.overview(week(user="u1"), ACME)  # user is no dimension of the rollup
    assert by_rows["source"] == "rows"
    assert by_rows["totals"]["requests"] == 3
    assert by_rows["totals"]["cost"] == pytest.approx(0.06)


def test_the_request_list_pages_by_cursor_through_every_row_once(pages: Pages) -> None:
    seen: list[str] = []
    cursor = ""
    while True:
        page = pages.requests(week(), ALL, cursor=cursor, limit=2)
        seen += [r["request_id"] for r in page["rows"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["r005", "r004", "r003", "r002", "r001"]
    by_cost = pages.requests(week(), ALL, sort="cost", limit=2)
    following = pages.requests(week(), ALL, sort="cost", cursor=by_cost["next_cursor"])
    assert [r["request_id"] for r in by_cost["rows"] + following["rows"]] == [
        "r005",
        "r004",
        "r003",
        "r002",
        "r001",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"user": "u1"}, {"r001", "r002", "r003"}),
        ({"session": "s1", "prop": "feature=summarize"}, {"r001", "r002"}),
        ({"model": "gpt-4.1"}, {"r004"}),
        ({"status": "5xx"}, {"r004"}),
        ({"status": "200", "project": "web"}, {"r001", "r002", "r003"}),
        ({"prop": "team=blue"}, {"r004"}),
        ({"user": "' OR 1=1 --"}, set()),
        ({"prop": "feature' OR '1'='1=x"}, set()),
    ],
)
def test_filters_find_exactly_the_matching_rows(
    pages: Pages, query: dict[str, str], expected: set[str]
) -> None:
    rows = pages.requests(week(**query), ACME)["rows"]
    assert {r["request_id"] for r in rows} == expected


def test_a_time_window_finds_only_its_rows(pages: Pages) -> None:
    filters = parse({"from": [str(NOW - 2 * DAY)], "to": [str(NOW - DAY)]}, NOW)
    assert [r["request_id"] for r in pages.requests(filters, ALL)["rows"]] == ["r002"]


def test_a_request_in_detail_and_only_for_its_organization(pages: Pages) -> None:
    detail = pages.request("r001", ACME)
    assert detail is not None
    assert detail["request"]["total_tokens"] == 10
    assert [t["text"] for t in detail["conversation"]] == ["turn one", "a1"]
    assert [s["name"] for s in detail["spans"]] == ["request", "provider_attempt"]
    assert any("boom" in e["detail"] for e in detail["events"])
    assert pages.request("r005", ACME) is None
    assert pages.request("r005", ALL) is not None


def test_a_session_turn_by_turn(pages: Pages) -> None:
    listing = pages.sessions(week(), ACME)
    assert listing["source"] == "rollup"
    assert [(s["session_id"], s["requests"], s["users"]) for s in listing["rows"]] == [
        ("s1", 3, ["u1"])
    ]
    by_user = pages.sessions(week(user="u1"), ACME)
    assert by_user["source"] == "rollup"
    assert [s["session_id"] for s in by_user["rows"]] == ["s1"]
    assert pages.sessions(week(user="u2"), ACME)["rows"] == []
    session = pages.session("s1", ACME)
    assert session is not None
    assert [(t["prompt"], t["answer"]) for t in session["turns"]] == [
        ("turn one", "a1"),
        ("turn two", "a2"),
        ("turn three", "a3"),
    ]
    assert pages.session("s9", ACME) is None


def test_users_cost_is_the_sum_of_their_rows(pages: Pages) -> None:
    listing = pages.users(week(), ACME)
    assert listing["source"] == "rollup"
    costs = {u["user_id"]: u["cost"] for u in listing["rows"]}
    assert costs == pytest.approx({"u1": 0.06, "u2": 0.04})
    assert [u["user_id"] for u in listing["rows"]] == ["u1", "u2"]  # heaviest first
    assert sum(n for _, n in listing["rows"][0]["trend"]) == 3
    filtered = pages.users(week(prop="feature=chat"), ACME)
    assert filtered["source"] == "rows"
    assert {u["user_id"]: u["requests"] for u in filtered["rows"]} == {"u1": 1, "u2": 1}
    user = pages.user("u1", week(), ACME)
    assert user is not None and user["totals"]["requests"] == 3
    assert pages.user("u3", week(), ACME) is None


def test_a_property_values_cost_per_day_is_the_sum_over_its_rows(pages: Pages) -> None:
    keys = pages.properties(week(), ACME)["rows"]
    assert {k["property"]: k["values"] for k in keys} == {"feature": 2, "team": 1}
    answer = pages.property("feature", week(), ALL)
    assert answer["bucket_seconds"] == DAY
    values = {v["value"]: (v["requests"], v["cost"]) for v in answer["values"]}
    assert values == {"summarize": (3, pytest.approx(0.08)), "chat": (2, pytest.approx(0.07))}
    per_day: dict[tuple[str, str], float] = {}
    for r in ROWS[:5]:
        day = time.strftime("%Y-%m-%d", time.gmtime(r["time"]))
        key = (day, r["properties"]["feature"])
        per_day[key] = per_day.get(key, 0.0) + r["cost_usd"]
    got = {(p["t"].strftime("%Y-%m-%d"), p["value"]): p["cost"] for p in answer["series"]}
    assert got == pytest.approx(per_day)
    assert pages.property("feature", week(), Scope(("nobody",)))["values"] == []


def test_filter_choices_come_from_the_scope_only(pages: Pages) -> None:
    options = pages.options(week(), ACME)
    assert options["organization"] == ["acme"]
    assert options["model"] == ["gpt-4.1", "gpt-4o-mini"]
    assert options["property"] == ["feature", "team"]
