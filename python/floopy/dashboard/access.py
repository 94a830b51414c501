"""Who may see the dashboard: login sessions behind a cookie, and throttled login attempts.

A session is a random token in an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` over
TLS). The dashboard keeps only the token's SHA-256 with its user and expiry, in memory and in
``DATA_DIR/dashboard/sessions.json`` (mode 0600, rewritten whole on each login and logout),
so a login outlives a restart of the process and the file alone logs nobody in; expired
sessions are dropped as it is read and written. SameSite=Strict keeps
other sites' pages from sending it, which is what protects the two forms (login, logout)
from cross-site posts; the server also refuses a POST whose Origin is another site's.

Login attempts are throttled per client address and per user name: past ``MAX_FAILURES``
failures within ``WINDOW`` seconds, further attempts are refused (429) until the oldest
failure leaves the window, whether or not the password would be right.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from floopy.dashboard.users import User

log = logging.getLogger("floopy.dashboard")

COOKIE = "floopy_dashboard"
SESSIONS_FILE = "sessions.json"
MAX_FAILURES = 5
WINDOW = 300.0
MAX_KEYS = 10_000  # addresses and names tracked before the expired ones are dropped


@dataclass(frozen=True)
class Session:
    user: str
    expires: float


class Sessions:
    """Open logins by the SHA-256 of their token. With ``path``, kept in that file too and
    read again when another process (``floopy dashboard`` beside the store's) changed it.
    ``clock`` is wall-clock time: expiries outlive the process."""

    def __init__(
        self, ttl: float, path: Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl = ttl
        self.path = path
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._seen: tuple[int, int] | None = None
        self._lock = threading.Lock()
        with self._lock:
            self._reload()

    def open(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._reload()
            self._drop_expired()
            self._sessions[_digest(token)] = Session(user.name, self.clock() + self.ttl)
            self._save()
        return token

    def user_of(self, token: str | None) -> str | None:
        if not token:
            return None
        key = _digest(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                self._reload()
                session = self._sessions.get(key)
            if session is None:
                return None
            if session.expires <= self.clock():
                del self._sessions[key]
                return None
            return session.user

    def close(self, token: str | None) -> None:
        with self._lock:
            self._reload()
            if self._sessions.pop(_digest(token or ""), None) is not None:
                self._save()

    def _drop_expired(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat() if self.path is not None else None
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size) if stat is not None else None

    def _reload(self) -> None:
        seen = self._stat()
        if self.path is None or seen is None or seen == self._seen:
            return
        try:
            raw = json.loads(self.path.read_text())
            self._sessions = {
                entry["token_sha256"]: Session(str(entry["user"]), float(entry["expires"]))
                for entry in raw.get("sessions", [])
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("dashboard: %s cannot be read (%s); logins start afresh", self.path, exc)
        self._seen = seen
        self._drop_expired()

    def _save(self) -> None:
        if self.path is None:
            return
        body = {
            "sessions": [
                {"token_sha256": key, "user": session.user, "expires": session.expires}
                for key, session in self._sessions.items()
            ]
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(body, handle)
            os.replace(scratch, self.path)
        except OSError as exc:  # the login still holds in this process
            log.error("dashboard: logins cannot be kept in %s: %s", self.path, exc)
            return
        self._seen = self._stat()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie(token: str, ttl: float, secure: bool) -> str:
    parts = [f"{COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={int(ttl)}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def cleared_cookie(secure: bool) -> str:
    return cookie("", 0, secure)


def token_of(cookie_header: str | None) -> str | None:
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


class Throttle:
    """Failed logins per key (a client address, a user name) within a sliding window."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until an attempt for ``keys`` is allowed again; 0 when it is now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                failures = self._recent(key, now)
                if len(failures) >= self.max_failures:
                    wait = max(wait, failures[0] + self.window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > MAX_KEYS:  # guessed names must not grow this forever
                for key in [k for k, f in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[key]
            for key in keys:
                self._recent(key, now).append(now)

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        failures = self._failures.setdefault(key, collections.deque(maxlen=self.max_failures))
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
