"""The log database through clickhouse-connect: embedded or a server, one client code.

``CLICKHOUSE_URL`` unset means clickhouse-connect's in-process chDB backend on
``DATA_DIR/clickhouse``; otherwise a ClickHouse server or cluster over HTTP(S). The database
is the URL's path (``/floopy`` by default); every statement names it, so the client never
depends on it existing before the first migration creates it.

Each thread gets its own client (the carrier inserts while the read channel queries, each on
threads of their own), and a clickhouse-connect client is not meant to be shared across
threads. Every call raises
``StoreUnavailable`` on any failure, so callers handle one exception.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from floopy.settings.display import mask_url

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger("floopy.log")

DEFAULT_DATABASE = "floopy"
EMBEDDED_DIR = "clickhouse"
CONNECT_TIMEOUT = 3
SEND_RECEIVE_TIMEOUT = 30
# Unknown fields are skipped and missing ones take defaults, so journal files written by an
# older or newer version still go in.
INSERT_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "input_format_defaults_for_omitted_fields": 1,
    "date_time_input_format": "best_effort",
    # A batch is a few megabytes: parsing it on the inserting thread costs less than
    # handing it to a pool (measured: about 25 us less CPU per logged request).
    "input_format_parallel_parsing": 0,
    "max_threads": 1,
    "max_insert_threads": 1,
    # Each part is written as it came, not first collapsed by its sorting key (replacing
    # and aggregating tables): the merges and every reader (FINAL, the rollups' -Merge)
    # collapse it anyway. About 10 % less CPU per logged request
    # (benches/store/insert_cost.py: 107 against 119 us).
    "optimize_on_insert": 0,
}


def content_token(lines: Sequence[bytes]) -> str:
    """The deduplication token of a block, from its content: every insert of the same block
    carries the same one, so an insert the store applied but never acknowledged is not
    counted again when the block is read from its journal file again."""
    return hashlib.blake2b(b"\n".join(lines), digest_size=16).hexdigest()


class StoreUnavailable(Exception):
    """ClickHouse could not be reached, or refused the statement."""


class LogStore:
    def __init__(self, url: str | None, data_dir: str, max_memory: int = 0) -> None:
        self.url = url
        self.embedded = url is None
        self.max_memory = max_memory  # the embedded engine's cap, bytes; 0: the engine's own
        self.path = Path(data_dir).resolve() / EMBEDDED_DIR
        self.database = _database_of(url)
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()

    def kind(self) -> str:
        """What the store is, without where: for answers anyone may read."""
        return "embedded" if self.url is None else "server"

    def describe(self) -> str:
        if self.url is None:
            return f"embedded ClickHouse (chdb) at {self.path}"
        return f"ClickHouse at {mask_url(self.url)}"

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        try:
            return self._client().command(sql, settings=settings)
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self._client().query(sql).result_rows]
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def insert_lines(self, table: str, lines: Sequence[bytes], dedup_token: str = "") -> None:
        """Inserts JSON rows (one object per line) into ``table``. With ``dedup_token``, a
        repeat of the same block is skipped by ClickHouse, rollups included."""
        settings: dict[str, Any] = dict(INSERT_SETTINGS)
        if dedup_token:
            settings["insert_deduplication_token"] = dedup_token
            settings["deduplicate_blocks_in_dependent_materialized_views"] = 1
        try:
            self._client().raw_insert(
                self.table(table), None, b"\n".join(lines), settings=settings, fmt="JSONEachRow"
            )
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def ping(self) -> bool:
        try:
            self._client().command("SELECT 1")
        except Exception as exc:
            log.debug("log store does not answer: %s", exc)
            self._forget_client()
            return False
        return True

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # closing a broken client must not stop the others closing
                log.debug("closing a log store client failed", exc_info=True)
        self._local = threading.local()

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._open()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def read_only(self, settings: dict[str, Any]) -> Client:
        """A client of its own for read-only queries: ``readonly = 2`` and ``settings``
        (limits) for its whole session, so no statement through it writes, whatever it
        says. The caller closes it."""
        return self._open({**settings, "readonly": 2})

    def _open(self, settings: dict[str, Any] | None = None) -> Client:
        import clickhouse_connect  # loads numpy and pyarrow: only once a store is used

        try:
            if self.url is None:
                self.path.mkdir(parents=True, exist_ok=True)
                options = engine_options(self.max_memory)
                return clickhouse_connect.get_client(
                    interface="chdb", path=str(self.path), settings=settings, chdb_options=options
                )
            return clickhouse_connect.get_client(**_server_arguments(self.url), settings=settings)
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _forget_client(self) -> None:
        """Drops this thread's client, so the next call reconnects (an embedded engine that
        failed to open, a server that came back on another address)."""
        client = getattr(self._local, "client", None)
        if client is None:
            return
        self._local.client = None
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        try:
            client.close()
        except Exception:
            log.debug("closing a broken log store client failed", exc_info=True)

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        if isinstance(exc, StoreUnavailable):
            return exc
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self.embedded and "EmbeddedServer" in message:
            message = (
                f"the embedded ClickHouse at {self.path} is in use by another process "
                "(one process per data directory: stop it, or set CLICKHOUSE_URL)"
            )
        return StoreUnavailable(f"{self.describe()}: {message}")


# The engine's caches of part metadata (marks, primary and skip indexes) default to 5 GiB
# each and are never evicted for the queries' sake: past the memory cap, a query or merge
# fails instead. Each is bounded to this share of the cap, so they level off well under it.
CACHE_SHARE = 16


def engine_options(max_memory: int) -> dict[str, int] | None:
    """The embedded engine's server options for a memory cap (bytes; 0: the engine's own)."""
    if not max_memory:
        return None
    cache = max_memory // CACHE_SHARE
    return {
        "max_server_memory_usage": max_memory,
        "mark_cache_size": cache,
        "primary_index_cache_size": cache,
        "index_mark_cache_size": cache,
    }


def _database_of(url: str | None) -> str:
    if url is None:
        return DEFAULT_DATABASE
    name = unquote(urlsplit(url).path.strip("/").split("/")[0])
    return name or DEFAULT_DATABASE


def _server_arguments(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    interface = "https" if parts.scheme == "https" else "http"
    dsn = urlunsplit((interface, parts.netloc, "", parts.query, ""))
    return {
        "dsn": dsn,
        "interface": interface,
        "connect_timeout": CONNECT_TIMEOUT,
        "send_receive_timeout": SEND_RECEIVE_TIMEOUT,
        "autogenerate_session_id": False,
        "query_retries": 0,
    }
