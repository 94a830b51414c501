"""Rollup backfills on a store that already holds rows: they fill the rollups once from what
is logged, and a migration cut short and run again (a restart) counts no row twice, even
with rows inserted through the materialized views in between and a scratch table left over.

chDB admits one data path per process: the module shares one store and closes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import pytest

from floopy.observability.migrations import migrate
from floopy.observability.store import LogStore
from floopy.settings import load_settings

NOW = time.time()
DAY = 86400.0
# Two months at least: the backfill runs a month at a time.
TIMES = [NOW - 1000, NOW - 2 * DAY, NOW - 20 * DAY, NOW - 45 * DAY]


def rows(prefix: str, count: int) -> list[bytes]:
    return [
        msgspec.json.encode(
            {
                "request_id": f"{prefix}-{number}",
                "time": TIMES[number % len(TIMES)] + number,
                "organization": "acme",
                "project": "web",
                "model": ["m1", "m2"][number % 2],
                "provider": "mock",
                "status": 502 if number % 5 == 0 else 200,
                "latency_ms": 10.0 + number,
                "total_tokens": number,
                "prompt_tokens": number,
                "cost_usd": 0.5,
                "user_id": f"u{number % 3}",
                "session_id": f"s{number % 4}",
                "properties": {"feature": ["a", "b"][number % 2]},
            }
        )
        for number in range(count)
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogStore]:
    store = LogStore(None, str(tmp_path_factory.mktemp("backfill")))
    yield store
    store.close()


def totals(store: LogStore) -> dict[str, tuple[int, float]]:
    """Requests and cost per rollup, and over the raw rows as each rollup counts them."""
    queries = {
        "raw": "SELECT count(), sum(cost_usd) FROM {db}.requests",
        "raw with a user": "SELECT count(), sum(cost_usd) FROM {db}.requests WHERE user_id != ''",
        "raw with a session": (
            "SELECT count(), sum(cost_usd) FROM {db}.requests WHERE session_id != ''"
        ),
        "raw per property": (
            "SELECT sum(length(properties)), sum(length(properties) * cost_usd) FROM {db}.requests"
        ),
        "minute": "SELECT sum(requests), sum(cost_usd) FROM {db}.requests_by_minute",
        "hour": "SELECT sum(requests), sum(cost_usd) FROM {db}.requests_by_hour",
        "user hour": "SELECT sum(requests), sum(cost_usd) FROM {db}.requests_by_user_hour",
        "user day": "SELECT sum(requests), sum(cost_usd) FROM {db}.requests_by_user_day",
        "property": "SELECT sum(requests), sum(cost_usd) FROM {db}.requests_by_property_hour",
        "property day": ("SELECT sum(requests), sum(cost_usd) FROM {db}.requests_by_property_day"),
        "session": "SELECT sum(requests), sum(cost_usd) FROM {db}.requests_by_session_day",
    }
    found = {}
    for name, sql in queries.items():
        count, cost = store.rows(sql.format(db=store.database))[0]
        found[name] = (int(count), round(float(cost or 0), 6))
    return found


def assert_counted_once(store: LogStore) -> None:
    found = totals(store)
    assert found["minute"] == found["hour"] == found["raw"]
    assert found["user hour"] == found["user day"] == found["raw with a user"]
    assert found["session"] == found["raw with a session"]
    assert found["property"] == found["property day"] == found["raw per property"]


def forget(store: LogStore, *versions: int) -> None:
    """As if these migrations had been cut short: not recorded as applied."""
    store.command(
        f"ALTER TABLE {store.table('schema_migrations')} DELETE WHERE version IN "
        f"({', '.join(map(str, versions))}) SETTINGS mutations_sync = 2"
    )


def test_backfills_count_every_logged_row_once_however_often_they_run(store: LogStore) -> None:
    said: list[str] = []
    settings = load_settings({})
    migrate(store, settings, said.append)
    store.insert_lines("requests", rows("first", 40))
    # A month of rows that no per-user, per-session or per-property rollup holds.
    bare = {"request_id": "bare", "time": NOW - 70 * DAY, "organization": "acme"}
    store.insert_lines("requests", [msgspec.json.encode(bare)])
    assert totals(store)["raw"][0] == 41
    assert_counted_once(store)  # through the materialized views

    # 0010, 0013 and 0014 run again (cut short before they were recorded, so 0016 was not
    # either), over rows the views already counted: the backfills replace those months
    # instead of adding to them, and 0016 chains the coarse rollups' views once more.
    forget(store, 10, 13, 14, 16)
    said.clear()
    assert migrate(store, settings, said.append) == 4
    assert_counted_once(store)
    assert totals(store)["user day"][0] == 40
    months = {time.strftime("%Y-%m", time.gmtime(moment)) for moment in [*TIMES, NOW - 70 * DAY]}
    # From the raw rows: every month of them, the bare one's partition dropped.
    filled = [line for line in said if "filled requests_by_user_hour" in line]
    assert len(filled) == len(months)
    assert all(f"/{len(months)}," in line for line in filled)

    # Rows arrive, then the migrations are cut short once more, with a scratch table left
    # over holding a half-made month.
    store.insert_lines("requests", rows("second", 25))
    store.command(
        f"CREATE TABLE {store.table('requests_by_user_day_backfill')} "
        f"AS {store.table('requests_by_user_day')}"
    )
    store.command(
        f"INSERT INTO {store.table('requests_by_user_day_backfill')} "
        f"SELECT * FROM {store.table('requests_by_user_day')}"
    )
    forget(store, 10, 13, 14, 16)
    migrate(store, settings, lambda line: None)
    migrate(store, settings, lambda line: None)  # recorded now: nothing runs
    assert_counted_once(store)
    assert totals(store)["raw"][0] == 66
    left = store.rows(
        f"SELECT count() FROM system.tables WHERE database = '{store.database}' "
        "AND name LIKE '%\\_backfill'"
    )
    assert left[0][0] == 0


def test_the_rollups_retention_follows_its_setting(store: LogStore) -> None:
    settings = msgspec.structs.replace(load_settings({}), log_rollups_ttl_days=100)
    said: list[str] = []
    migrate(store, settings, said.append)
    for table in (
        "requests_by_hour",
        "requests_by_user_day",
        "requests_by_property_day",
        "requests_by_session_day",
    ):
        assert f"log schema: {table} now keeps rows 100 days" in said
        create = str(store.command(f"SHOW CREATE TABLE {store.table(table)}"))
        assert "toIntervalDay(100)" in create
