"""The read channel: read-only, bounded SQL against the log store, for ``floopy logs`` and
the dashboard.

What makes a query safe to run, in layers:

1. It is one ``SELECT`` (``WITH`` and ``UNION`` included) and nothing else: ClickHouse's own
   parser (``EXPLAIN AST``) reads it, and the tree must be a select with no ``SETTINGS``,
   ``FORMAT`` or ``INTO OUTFILE`` clause, no table function in any ``FROM`` (``file``,
   ``url``, ``s3``, ``remote``, ``executable``, ...), no function that reads files, and no
   table outside the log's database and ``system``.
2. It runs on a client whose whole session is ``readonly = 2`` with the limits set
   (``max_execution_time``, ``max_result_rows`` with ``result_overflow_mode = 'throw'``), so
   even a query the check let through cannot write or run unbounded.
3. The channel listens on loopback only, on a port the process picks, and answers only a
   request with its credential: both are in ``DATA_DIR/store/channel.json``, readable by the
   user that runs Floopy only.
"""

from __future__ import annotations

import datetime
import decimal
import hmac
import json
import logging
import os
import queue
import re
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from floopy.observability.status import store_dir
from floopy.observability.store import LogStore, StoreUnavailable

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger("floopy.log")

CHANNEL_FILE = "channel.json"
READERS = 2  # queries run at once; more wait their turn
MAX_SQL_BYTES = 64 * 1024
# Functions that read outside the database, wherever they appear.
FORBIDDEN_FUNCTIONS = frozenset({"file", "url", "executable", "input", "filesystem"})
_NODE = re.compile(r"^(?P<indent> *)(?P<kind>\w+)(?: (?P<name>[^\s(]+))?")


class QueryRefused(Exception):
    """The query is not one read-only SELECT over the log."""


class QueryFailed(QueryRefused):
    """ClickHouse answered, and refused the query (a limit, a mistake in it)."""


@dataclass(frozen=True)
class Limits:
    timeout: float  # seconds of execution
    max_rows: int

    def settings(self) -> dict[str, Any]:
        return {
            "max_execution_time": max(1, round(self.timeout)),
            "max_result_rows": self.max_rows,
            "result_overflow_mode": "throw",
        }


@dataclass(frozen=True)
class Result:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]

    def to_json(self) -> bytes:
        return msgspec.json.encode(
            {"columns": self.columns, "types": self.types, "rows": self.rows}, enc_hook=_plain
        )


def check_select(ast: list[str], database: str) -> None:
    """Raises QueryRefused unless ``ast`` (``EXPLAIN AST`` lines) is one read of the log."""
    nodes = [_parse_node(line) for line in ast if line.strip()]
    if not nodes or nodes[0] != (0, "SelectWithUnionQuery", None):
        raise QueryRefused("only a SELECT is allowed")
    for index, (depth, kind, name) in enumerate(nodes):
        if depth == 1 and kind not in ("ExpressionList", "Identifier"):
            raise QueryRefused("INTO OUTFILE and such clauses are not allowed")
        if depth == 1 and kind == "Identifier" and name != "Native":
            raise QueryRefused("a FORMAT clause is not allowed: choose the output format instead")
        if kind == "Set":
            raise QueryRefused("a SETTINGS clause is not allowed")
        if kind == "Function" and (name or "").lower() in FORBIDDEN_FUNCTIONS:
            raise QueryRefused(f"the function {name} is not allowed")
        if kind == "TableExpression":
            _check_table(nodes, index, database)


def _check_table(nodes: list[tuple[int, str, str | None]], index: int, database: str) -> None:
    depth = nodes[index][0]
    child = next((node for node in nodes[index + 1 :] if node[0] == depth + 1), None)
    if child is None or child[1] == "Subquery":
        return
    if child[1] != "TableIdentifier":
        raise QueryRefused(f"table functions are not allowed ({child[2] or child[1]})")
    schema, dot, _ = (child[2] or "").partition(".")
    if dot and schema not in (database, "system"):
        raise QueryRefused(f"only the tables of {database} (and system) can be read")


def _parse_node(line: str) -> tuple[int, str, str | None]:
    match = _NODE.match(line)
    if match is None:
        return (-1, "", None)
    return (len(match["indent"]), match["kind"], match["name"])


class Reader:
    """Runs checked queries on a small pool of read-only clients (in the store process, or
    against a ClickHouse server from anywhere)."""

    def __init__(self, store: LogStore, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self._clients: queue.Queue[Client] = queue.Queue()
        self._opened = 0
        self._lock = threading.Lock()

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, *, check: bool = True
    ) -> Result:
        """Raises QueryRefused, or StoreUnavailable (which names ClickHouse's complaint).

        ``parameters`` fill the query's ``{name:Type}`` placeholders on the server side:
        values never become SQL text (the dashboard's filters reach ClickHouse only so).
        ``check=False`` skips the parser check (a round trip), for SQL written in this
        code base with every outside value a parameter; the client stays read-only with its
        limits."""
        sql = _one_statement(sql)
        with self._client() as client:
            if check:
                try:
                    ast = [
                        str(row[0])
                        for row in client.query(
                            f"EXPLAIN AST {sql}", parameters=parameters
                        ).result_rows
                    ]
                except Exception as exc:
                    raise QueryRefused(_first_line(exc)) from exc
                check_select(ast, self.store.database)
            try:
                answer = client.query(sql, parameters=parameters)
            except Exception as exc:
                if self.store.ping():
                    raise QueryFailed(_first_line(exc)) from exc
                raise StoreUnavailable(_first_line(exc)) from exc
        return Result(
            columns=list(answer.column_names),
            types=[t.name for t in answer.column_types],
            rows=[list(row) for row in answer.result_rows],
        )

    def close(self) -> None:
        while True:
            try:
                client = self._clients.get_nowait()
            except queue.Empty:
                return
            client.close()

    @contextmanager
    def _client(self) -> Iterator[Client]:
        with self._lock:
            open_one = self._clients.empty() and self._opened < READERS
            if open_one:
                self._opened += 1
        if open_one:
            try:
                client = self.store.read_only(self.limits.settings())
            except StoreUnavailable:
                with self._lock:
                    self._opened -= 1
                raise
        else:
            client = self._clients.get()
        try:
            yield client
        finally:
            self._clients.put(client)


def _one_statement(sql: str) -> str:
    if len(sql.encode()) > MAX_SQL_BYTES:
        raise QueryRefused(f"the query is longer than {MAX_SQL_BYTES} bytes")
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise QueryRefused("the query is empty")
    if _unquoted_semicolon(sql):
        raise QueryRefused("one statement only: nothing may follow a ';'")
    return sql


def _unquoted_semicolon(sql: str) -> bool:
    """Whether ``sql`` has a ``;`` outside quotes and comments."""
    quote = ""
    index = 0
    while index < len(sql):
        char = sql[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif sql.startswith("--", index) or char == "#":
            index = sql.find("\n", index)
            if index < 0:
                return False
        elif sql.startswith("/*", index):
            index = sql.find("*/", index + 2)
            if index < 0:
                return False
            index += 1
        elif char == ";":
            return True
        index += 1
    return False


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | Path):
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


# --- the channel: HTTP on loopback -------------------------------------------------------------


class ChannelServer:
    """``POST /v1/query`` ``{"sql": "..."}`` with ``Authorization: Bearer <credential>``;
    answers ``{"columns", "types", "rows"}`` or ``{"error": {"message", "type"}}``."""

    def __init__(self, reader: Reader, data_dir: str | Path, host: str = "127.0.0.1") -> None:
        self.reader = reader
        self.credential = secrets.token_urlsafe(32)
        self._server = ThreadingHTTPServer((host, 0), _handler(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.path = store_dir(data_dir) / CHANNEL_FILE
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="floopy-read-channel", daemon=True
        )

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_name(f".{CHANNEL_FILE}.{os.getpid()}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(
                {"port": self.port, "credential": self.credential, "pid": os.getpid()}, handle
            )
        os.replace(scratch, self.path)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.credential.encode()
        )


def _handler(channel: ChannelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "floopy-store"
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if not channel.authorized(self.headers.get("authorization")):
                self._answer(401, _error("a valid credential is required", "unauthorized"))
                return
            if self.path != "/v1/query":
                self._answer(404, _error(f"no such endpoint: {self.path}", "not_found"))
                return
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_SQL_BYTES + 1024:
                self._answer(413, _error("the query is too large", "refused"))
                return
            try:
                sql = str(json.loads(self.rfile.read(length) or b"{}")["sql"])
            except (ValueError, KeyError, TypeError):
                self._answer(400, _error('the body must be {"sql": "SELECT ..."}', "refused"))
                return
            try:
                result = channel.reader.query(sql)
            except QueryRefused as exc:
                self._answer(400, _error(str(exc), "refused"))
                return
            except StoreUnavailable as exc:
                self._answer(503, _error(str(exc), "store_error"))
                return
            self._answer(200, result.to_json())

        def do_GET(self) -> None:
            self._answer(405, _error("use POST /v1/query", "not_found"))

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("read channel: " + format, *args)

    return Handler


def _error(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind}}).encode()


class ChannelError(Exception):
    """The read channel refused the query, or could not be reached."""


class ChannelClient:
    """The client side, for ``floopy logs``: finds the channel from ``DATA_DIR``."""

    def __init__(self, data_dir: str | Path, timeout: float = 60.0) -> None:
        path = store_dir(data_dir) / CHANNEL_FILE
        try:
            found = json.loads(path.read_text())
            self.url = f"http://127.0.0.1:{int(found['port'])}/v1/query"
            self.credential = str(found["credential"])
        except (OSError, ValueError, KeyError) as exc:
            raise ChannelError(
                f"no log store process is serving {Path(data_dir).resolve()} "
                "(start the gateway with `floopy serve`, or the store alone with `floopy store`)"
            ) from exc
        self.timeout = timeout

    def query(self, sql: str) -> Result:
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"sql": sql}).encode(),
            headers={
                "authorization": f"Bearer {self.credential}",
                "content-type": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            with exc:  # the answer's connection goes with it
                raise ChannelError(_message_of(exc)) from exc
        except OSError as exc:
            raise ChannelError(f"the log store process does not answer: {exc}") from exc
        return Result(columns=body["columns"], types=body["types"], rows=body["rows"])


def _message_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code}"


def sql_string(value: str) -> str:
    """``value`` as a ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
