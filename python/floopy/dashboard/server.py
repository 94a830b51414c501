"""The dashboard's HTTP server: pages, their JSON API, static files, login and logout.

A ``ThreadingHTTPServer`` on ``HOST:DASHBOARD_PORT``, run by the log store process (which owns
the embedded store) or by ``floopy dashboard`` (beside a ClickHouse server). Nothing is
answered without a login but the login page and the static files. Every answer carries a
Content-Security-Policy that allows scripts, styles, images and fonts from this server only
and no inline script; pages are shells filled by ``/static/app.js``, which puts logged text
in the document as text nodes only.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import html
import io
import logging
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Any

import msgspec

from floopy.dashboard import access
from floopy.dashboard.filters import FilterError, Filters, Scope, parse
from floopy.dashboard.queries import Pages
from floopy.dashboard.users import User, UserStore
from floopy.logstore.reads import QueryRefused
from floopy.observability.store import StoreUnavailable

log = logging.getLogger("floopy.dashboard")

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGES = {
    "overview": "Overview",
    "requests": "Requests",
    "sessions": "Sessions",
    "users": "Users",
    "properties": "Properties",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # Same-origin: a link out carries no filter values; and Chromium sends "Origin: null" on
    # a form post under no-referrer, which the origin check would refuse.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
EXPORT_PAGE = 1000
EXPORT_COLUMNS = (
    "request_id",
    "time",
    "organization",
    "project",
    "user_id",
    "session_id",
    "model",
    "provider",
    "status",
    "error_code",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "cache_status",
    "cache_tier",
    "firewall_verdict",
    "stream",
    "path",
    "properties",
)
MAX_FORM_BYTES = 4096


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    session_ttl: float
    export_max_rows: int
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def secure(self) -> bool:
        return self.tls_cert is not None


class DashboardServer:
    def __init__(
        self,
        pages: Pages,
        users: UserStore,
        config: Config,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pages = pages
        self.users = users
        self.config = config
        self.clock = clock
        self.sessions = access.Sessions(
            config.session_ttl, users.path.with_name(access.SESSIONS_FILE), clock
        )
        self.throttle = access.Throttle()
        self._server = ThreadingHTTPServer((config.host, config.port), _handler(self))
        self._server.daemon_threads = True
        if config.tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(config.tls_cert, config.tls_key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="floopy-dashboard", daemon=True
        )

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.config.secure else 'http'}://{host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def user_of(self, cookie_header: str | None) -> User | None:
        name = self.sessions.user_of(access.token_of(cookie_header))
        return self.users.users().get(name) if name else None


def scope_of(user: User) -> Scope:
    return Scope(None if user.admin else user.organizations)


def _handler(dashboard: DashboardServer) -> type[BaseHTTPRequestHandler]:
    class Handler(DashboardHandler):
        server_version = "floopy-dashboard"

    Handler.dashboard = dashboard
    return Handler


class DashboardHandler(BaseHTTPRequestHandler):
    dashboard: DashboardServer
    protocol_version = "HTTP/1.1"

    # --- routing -------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query)
        if path.startswith("/static/"):
            self._static(path.removeprefix("/static/"))
            return
        if path == "/login":
            self._login_page(200, "", _next_of(query))
            return
        user = self.dashboard.user_of(self.headers.get("cookie"))
        if user is None:
            if path.startswith("/api/"):
                self._json(401, _error("log in first: POST /login", "unauthorized"))
            else:
                target = urllib.parse.quote(self.path, safe="")
                self._redirect(f"/login?next={target}")
            return
        if path == "/":
            self._redirect("/overview")
        elif path.strip("/") in PAGES:
            self._page(path.strip("/"), user)
        elif path.startswith("/api/"):
            self._api(path.removeprefix("/api/"), query, user)
        else:
            self._json(404, _error("no such page", "not_found"))

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        form = self._form()  # read whatever comes: what follows on the connection is a request
        if not self._same_origin():
            self._json(403, _error("a form of another site", "forbidden"))
            return
        if path == "/login":
            self._login(form)
        elif path == "/logout":
            self.dashboard.sessions.close(access.token_of(self.headers.get("cookie")))
            self._redirect("/login", cookie=access.cleared_cookie(self.dashboard.config.secure))
        else:
            self._json(404, _error("no such endpoint", "not_found"))

    # --- login ---------------------------------------------------------------------------

    def _login(self, form: dict[str, list[str]]) -> None:
        name = (form.get("username") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        target = _safe_next((form.get("next") or [""])[0])
        keys = (f"address:{self.client_address[0]}", f"user:{name.lower()}")
        wait = self.dashboard.throttle.retry_after(*keys)
        if wait > 0:
            self._login_page(
                429,
                "Too many failed attempts: try again in a few minutes.",
                target,
                {"retry-after": str(int(wait) + 1)},
            )
            return
        user = self.dashboard.users.authenticate(name, password)
        if user is None:
            self.dashboard.throttle.failed(*keys)
            self._login_page(401, "Wrong user name or password.", target)
            return
        token = self.dashboard.sessions.open(user)
        config = self.dashboard.config
        self._redirect(target, cookie=access.cookie(token, config.session_ttl, config.secure))

    def _login_page(
        self, status: int, message: str, target: str, headers: dict[str, str] | None = None
    ) -> None:
        body = _template("login.html").substitute(
            message=html.escape(message),
            message_class="message" if message else "message empty",
            next=html.escape(target),
        )
        self._send(status, body.encode(), "text/html; charset=utf-8", headers)

    def _form(self) -> dict[str, list[str]]:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_FORM_BYTES:
            self.close_connection = True
            return {}
        return urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))

    def _same_origin(self) -> bool:
        origin = self.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return urllib.parse.urlsplit(origin).netloc == self.headers.get("host")

    # --- pages ---------------------------------------------------------------------------

    def _page(self, page: str, user: User) -> None:
        current = ' aria-current="page"'
        links = "".join(
            f'<a href="/{name}"{current if name == page else ""}>{title}</a>'
            for name, title in PAGES.items()
        )
        body = _template("page.html").substitute(
            page=page,
            title=PAGES[page],
            links=links,
            user=html.escape(user.name),
            role="admin" if user.admin else html.escape(", ".join(user.organizations)),
        )
        self._send(200, body.encode(), "text/html; charset=utf-8")

    def _static(self, name: str) -> None:
        path = STATIC / name
        kind = STATIC_TYPES.get(path.suffix)
        if kind is None or "/" in name or not path.is_file():
            self._json(404, _error("no such file", "not_found"))
            return
        self._send(200, path.read_bytes(), kind, {"cache-control": "no-cache"})

    # --- the JSON API --------------------------------------------------------------------

    def _api(self, route: str, query: dict[str, list[str]], user: User) -> None:
        pages, scope = self.dashboard.pages, scope_of(user)
        name, _, rest = route.partition("/")
        item = urllib.parse.unquote(rest)
        try:
            filters = parse(query, self.dashboard.clock())
            if name == "export" and not rest:
                self._export(filters, scope, _one(query, "format") or "jsonl", query)
                return
            answer = self._answer(name, item, rest != "", filters, scope, query, user, pages)
        except FilterError as exc:
            self._json(400, _error(str(exc), "bad_request"))
            return
        except QueryRefused as exc:
            log.error("dashboard query refused: %s", exc)
            self._json(500, _error(str(exc), "query_error"))
            return
        except StoreUnavailable as exc:
            self._json(503, _error(str(exc), "store_unavailable"))
            return
        if answer is None:
            self._json(404, _error("not found", "not_found"))
        else:
            self._json(200, encode(answer))

    def _answer(
        self,
        name: str,
        item: str,
        has_item: bool,
        filters: Filters,
        scope: Scope,
        query: dict[str, list[str]],
        user: User,
        pages: Pages,
    ) -> Any:
        sort, offset = _one(query, "sort"), _int(query, "offset")
        if name == "me" and not has_item:
            return {"user": user.name, "admin": user.admin, "organizations": user.organizations}
        if name == "overview" and not has_item:
            return pages.overview(filters, scope)
        if name == "options" and not has_item:
            return pages.options(filters, scope)
        if name == "requests":
            if has_item:
                return pages.request(item, scope)
            return pages.requests(
                filters,
                scope,
                sort or "time",
                _one(query, "order") or "desc",
                _one(query, "cursor"),
                _int(query, "limit") or 50,
            )
        if name == "sessions":
            if has_item:
                return pages.session(item, scope)
            return pages.sessions(filters, scope, sort or "last", offset)
        if name == "users":
            if has_item:
                return pages.user(item, filters, scope)
            return pages.users(filters, scope, sort or "cost", offset)
        if name == "properties":
            if has_item:
                return pages.property(item, filters, scope)
            return pages.properties(filters, scope)
        return None

    def _export(
        self, filters: Filters, scope: Scope, kind: str, query: dict[str, list[str]]
    ) -> None:
        if kind not in ("jsonl", "csv"):
            raise FilterError("format: jsonl or csv")
        bodies = _one(query, "bodies") in ("1", "true")
        limit = min(
            _int(query, "limit") or self.dashboard.config.export_max_rows,
            self.dashboard.config.export_max_rows,
        )
        rows = _export_rows(self.dashboard.pages, filters, scope, limit, bodies)
        first = next(rows, None)  # a failing query answers an error, not half a file
        self.send_response(200)
        kind_header = "application/x-ndjson" if kind == "jsonl" else "text/csv; charset=utf-8"
        self.send_header("content-type", kind_header)
        self.send_header("content-disposition", f'attachment; filename="requests.{kind}"')
        self.send_header("connection", "close")
        self._common_headers({"cache-control": "no-store"})
        self.end_headers()
        self.close_connection = True
        columns = list(EXPORT_COLUMNS) + (["request_body", "response_body"] if bodies else [])
        try:
            if kind == "csv":
                self.wfile.write(_csv_line(columns))
            for row in _chain(first, rows):
                if kind == "jsonl":
                    self.wfile.write(encode(row) + b"\n")
                else:
                    self.wfile.write(_csv_line([_csv_value(row.get(c)) for c in columns]))
        except (StoreUnavailable, QueryRefused) as exc:  # the file ends short; say why in the log
            log.error("dashboard export cut short: %s", exc)

    # --- answers -------------------------------------------------------------------------

    def _json(self, status: int, body: bytes) -> None:
        self._send(status, body, "application/json", {"cache-control": "no-store"})

    def _redirect(self, location: str, cookie: str | None = None) -> None:
        headers = {"location": location}
        if cookie is not None:
            headers["set-cookie"] = cookie
        self._send(303, b"", "text/plain", headers)

    def _send(
        self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self._common_headers(headers or {})
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _common_headers(self, headers: dict[str, str]) -> None:
        for name, value in {**SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("dashboard: " + format, *args)


def _export_rows(
    pages: Pages, filters: Filters, scope: Scope, limit: int, bodies: bool
) -> Iterator[dict[str, Any]]:
    cursor, sent = "", 0
    while sent < limit:
        page = pages.requests(
            filters, scope, cursor=cursor, limit=min(EXPORT_PAGE, limit - sent), bodies=bodies
        )
        yield from page["rows"]
        sent += len(page["rows"])
        cursor = page["next_cursor"]
        if not cursor:
            return


def _chain(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]]) -> Iterator[Any]:
    if first is None:
        return
    yield first
    yield from rest


def _csv_line(values: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue().encode()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return encode(value).decode()
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[-1] if values else ""


def _int(query: dict[str, list[str]], name: str) -> int:
    text = _one(query, name)
    if not text:
        return 0
    if not text.isdigit():
        raise FilterError(f"{name}: a whole number")
    return int(text)


def _next_of(query: dict[str, list[str]]) -> str:
    return _safe_next(_one(query, "next"))


def _safe_next(target: str) -> str:
    """Only a path of this dashboard: never another site after a login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/overview"


def _error(message: str, kind: str) -> bytes:
    return encode({"error": {"message": message, "type": kind}})


def encode(value: Any) -> bytes:
    return msgspec.json.encode(value, enc_hook=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
