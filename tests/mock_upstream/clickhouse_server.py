"""ClickHouse's HTTP interface on loopback, over the real embedded engine (chDB).

Debian's ClickHouse is years too old for the log schema and nothing else may be fetched, so
the server-mode tests talk to this: the same engine the gateway embeds, behind the subset
of the HTTP interface clickhouse-connect uses (``/ping``; ``query`` parameter plus body;
settings as parameters; ``X-ClickHouse-*`` headers; errors with their code; uncompressed
bodies). Killing the
process is a real outage (connection refused); starting it again on the same port and
data path is the recovery.

Run: ``python clickhouse_server.py --port N --path DIR``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import chdb

# Parameters that steer the HTTP exchange rather than the query.
TRANSPORT = {
    "query",
    "database",
    "default_format",
    "session_id",
    "session_timeout",
    "session_check",
    "query_id",
    "quota_key",
    "compress",
    "decompress",
    "wait_end_of_query",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "enable_http_compression",
    "client_protocol_version",
    "buffer_size",
    "user",
    "password",
}
_CODE = re.compile(r"Code: (\d+)")
ENGINE_LOCK = threading.Lock()  # one statement at a time, as chDB handles prefer


class Handler(BaseHTTPRequestHandler):
    path_to_data = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/ping":
            self._reply(200, b"Ok.\n", {})
            return
        self._query(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding"):  # the gateway sends its rows uncompressed
            self._reply(400, b"compressed request bodies are not supported here", {})
            return
        self._query(body)

    def _query(self, body: bytes) -> None:
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        sql = params.get("query", "")
        if body:
            sql = f"{sql}\n{body.decode()}" if sql else body.decode()
        fmt = params.get("default_format", "TabSeparated")
        settings = {k: v for k, v in params.items() if k not in TRANSPORT}
        try:
            with ENGINE_LOCK:
                result = run(self.path_to_data, sql, fmt, settings, params.get("database"))
        except Exception as exc:
            message = str(exc)
            match = _CODE.search(message)
            code = match.group(1) if match else "1001"
            self._reply(500, message.encode(), {"X-ClickHouse-Exception-Code": code})
            return
        headers = {
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Summary": json.dumps({"read_rows": "0", "written_rows": "0"}),
        }
        self._reply(200, result, headers)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def run(path: str, sql: str, fmt: str, settings: dict[str, str], database: str | None) -> bytes:
    """One statement on a connection of its own, so per-query settings never leak."""
    conn = chdb.connect(path)
    try:
        for name, value in settings.items():
            quoted = value.replace("\\", "\\\\").replace("'", "\\'")
            conn.query(f"SET {name} = '{quoted}'")
        if database:
            conn.query(f"USE {database}")
        return bytes(conn.query(sql, fmt).bytes())
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    args = parser.parse_args()
    keep_engine_open = chdb.connect(args.path)  # the engine lives as long as the process
    Handler.path_to_data = args.path
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    try:
        server.serve_forever()
    finally:
        keep_engine_open.close()


if __name__ == "__main__":
    main()
