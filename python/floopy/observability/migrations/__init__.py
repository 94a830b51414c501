"""The log schema as numbered migrations, applied at start-up.

Each ``NNNN_name.sql`` file holds statements separated by a ``;`` at a line end, with
``$db`` and the retention settings (``$requests_ttl_days``, ...) filled in. Every statement
is idempotent (``IF NOT EXISTS``), so two processes migrating at once, or a migration cut
short, are harmless; ``schema_migrations`` records what was applied so each file runs once.

A backfill (a rollup filled once from what is already logged) is an ``INSERT INTO $db.rollup
SELECT ... FROM $db.source WHERE $partition ...`` marked by a ``-- backfill`` line. It runs a
month at a time, and each month replaces that month of the rollup whole:

1. the month's rows are aggregated into a scratch copy of the rollup (``<rollup>_backfill``,
   same engine and partitioning), emptied first;
2. ``ALTER TABLE rollup REPLACE PARTITION`` swaps that month in, atomically, dropping what the
   rollup held for it (including what its materialized view added since it was created:
   those rows are in the source too, so they are counted once); a month with nothing for
   the rollup (no end user ids, say) has its partition dropped instead;
3. a line of progress per month.

So a backfill cut short and run again (a restart mid-migration) recomputes and replaces,
never adds twice. The source and the rollup must both be partitioned by ``toYYYYMM`` of
their time. The store process migrates before it carries any journal, so nothing is inserted
meanwhile.

Retention is part of the schema but is a setting: after the migrations, a table whose TTL
differs from its setting gets ``ALTER TABLE ... MODIFY TTL``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

from floopy.observability.store import LogStore
from floopy.settings import Settings

HERE = Path(__file__).parent
Progress = Callable[[str], None]

_TABLE_TTL = re.compile(r"^TTL .*?toIntervalDay\((\d+)\)", re.MULTILINE)
_COLUMN_TTL = r"`{column}` String CODEC\(ZSTD\(3\)\) TTL .*?toIntervalDay\((\d+)\)"


_BACKFILL_MARK = re.compile(r"^\s*--\s*backfill\b", re.MULTILINE)
_BACKFILL = re.compile(
    r"^INSERT INTO (?P<target>[\w.]+)\s.*?\bFROM (?P<source>[\w.]+)\b", re.DOTALL
)
PARTITION = "$partition"


@dataclass(frozen=True)
class Statement:
    sql: str
    backfill: bool = False


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self, values: dict[str, object]) -> Iterator[Statement]:
        text = Template(self.path.read_text()).substitute(values, partition=PARTITION)
        for statement in re.split(r";\s*\n", text):
            code = "\n".join(
                line for line in statement.splitlines() if not line.lstrip().startswith("--")
            ).strip()
            if code:
                yield Statement(code, bool(_BACKFILL_MARK.search(statement)))


def migrations() -> list[Migration]:
    found = []
    for path in sorted(HERE.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version, _, name = path.stem.partition("_")
        found.append(Migration(int(version), name, path))
    return found


def template_values(store: LogStore, settings: Settings) -> dict[str, object]:
    return {
        "db": store.database,
        "requests_ttl_days": settings.log_requests_ttl_days,
        "spans_ttl_days": settings.log_spans_ttl_days,
        "breaker_events_ttl_days": settings.log_breaker_events_ttl_days,
        "rollups_ttl_days": settings.log_rollups_ttl_days,
        "bodies_ttl_days": settings.log_bodies_ttl_days,
    }


def migrate(store: LogStore, settings: Settings, progress: Progress) -> int:
    """Applies the migrations not yet applied, then the retention settings; returns how
    many migrations ran. Raises StoreUnavailable."""
    store.command(f"CREATE DATABASE IF NOT EXISTS {store.database}")
    store.command(
        f"CREATE TABLE IF NOT EXISTS {store.table('schema_migrations')} "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {
        row[0] for row in store.rows(f"SELECT version FROM {store.table('schema_migrations')}")
    }
    values = template_values(store, settings)
    ran = 0
    for migration in migrations():
        if migration.version in applied:
            continue
        progress(f"log schema: applying migration {migration.version:04d} {migration.name}")
        for statement in migration.statements(values):
            if statement.backfill:
                backfill(store, statement.sql, progress)
            else:
                store.command(statement.sql)
        store.command(
            f"INSERT INTO {store.table('schema_migrations')} VALUES "
            f"({migration.version}, '{migration.name}', {time.time():.3f})"
        )
        ran += 1
    apply_retention(store, settings, progress)
    return ran


def backfill(store: LogStore, sql: str, progress: Progress) -> int:
    """Runs a marked backfill month by month (see the module's docstring); returns the
    number of months replaced."""
    found = _BACKFILL.match(sql)
    if found is None or PARTITION not in sql:
        raise ValueError(f"a backfill is INSERT INTO ... SELECT ... FROM ... $partition: {sql}")
    target, source = found["target"], found["source"]
    scratch = f"{target}_backfill"
    months = [
        str(row[0]) for row in store.rows(f"SELECT DISTINCT _partition_id FROM {source} ORDER BY 1")
    ]
    store.command(f"DROP TABLE IF EXISTS {scratch}")
    store.command(f"CREATE TABLE {scratch} AS {target}")
    try:
        for number, month in enumerate(months, 1):
            started = time.monotonic()
            store.command(f"TRUNCATE TABLE {scratch}")
            insert = sql.replace(f"INSERT INTO {target}", f"INSERT INTO {scratch}", 1)
            store.command(insert.replace(PARTITION, f"_partition_id = '{month}'"))
            if int(store.rows(f"SELECT count() FROM {scratch}")[0][0]):
                store.command(f"ALTER TABLE {target} REPLACE PARTITION ID '{month}' FROM {scratch}")
            else:  # nothing of this month belongs in the rollup (no user ids, say)
                store.command(f"ALTER TABLE {target} DROP PARTITION ID '{month}'")
            progress(
                f"log schema: filled {target.rpartition('.')[2]} for {month[:4]}-{month[4:]} "
                f"from {source.rpartition('.')[2]} ({number}/{len(months)}, "
                f"{time.monotonic() - started:.1f} s)"
            )
    finally:
        store.command(f"DROP TABLE IF EXISTS {scratch}")
    return len(months)


def apply_retention(store: LogStore, settings: Settings, progress: Progress) -> None:
    wanted = {
        "requests": settings.log_requests_ttl_days,
        "spans": settings.log_spans_ttl_days,
        "circuit_breaker_events": settings.log_breaker_events_ttl_days,
        "requests_by_minute": settings.log_rollups_ttl_days,
        "requests_by_hour": settings.log_rollups_ttl_days,
        "requests_by_user_hour": settings.log_rollups_ttl_days,
        "requests_by_user_day": settings.log_rollups_ttl_days,
        "requests_by_property_hour": settings.log_rollups_ttl_days,
        "requests_by_property_day": settings.log_rollups_ttl_days,
        "requests_by_session_day": settings.log_rollups_ttl_days,
    }
    time_column = {
        "spans": "toDateTime(start_time)",
        "requests_by_minute": "minute",
        "requests_by_hour": "hour",
        "requests_by_user_hour": "hour",
        "requests_by_user_day": "day",
        "requests_by_property_hour": "hour",
        "requests_by_property_day": "day",
        "requests_by_session_day": "day",
    }
    for table, days in wanted.items():
        create = str(store.command(f"SHOW CREATE TABLE {store.table(table)}"))
        current = _TABLE_TTL.search(create.replace("\\n", "\n"))
        if current is not None and int(current.group(1)) != days:
            progress(f"log schema: {table} now keeps rows {days} days")
            column = time_column.get(table, "toDateTime(time)")
            store.command(
                f"ALTER TABLE {store.table(table)} MODIFY TTL {column} + INTERVAL {days} DAY"
            )
    _apply_body_retention(store, settings.log_bodies_ttl_days, progress)


def _apply_body_retention(store: LogStore, days: int, progress: Progress) -> None:
    create = str(store.command(f"SHOW CREATE TABLE {store.table('requests')}"))
    for column in ("request_body", "response_body"):
        current = re.search(_COLUMN_TTL.format(column=column), create)
        if current is not None and int(current.group(1)) != days:
            progress(f"log schema: {column} now kept {days} days")
            store.command(
                f"ALTER TABLE {store.table('requests')} MODIFY COLUMN {column} String "
                f"CODEC(ZSTD(3)) TTL toDateTime(time) + INTERVAL {days} DAY"
            )
