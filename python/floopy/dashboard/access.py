"""Who may see the dashboard: login sessions behind a cookie, and throttled login attempts.

A session is a random token in an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` over
TLS); the dashboard keeps it in memory, so a restart logs everyone out. SameSite=Strict keeps
other sites' pages from sending it, which is what protects the two forms (login, logout)
from cross-site posts; the server also refuses a POST whose Origin is another site's.

Login attempts are throttled per client address and per user name: past ``MAX_FAILURES``
failures within ``WINDOW`` seconds, further attempts are refused (429) until the oldest
failure leaves the window, whether or not the password would be right.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from floopy.dashboard.users import User

COOKIE = "floopy_dashboard"
MAX_FAILURES = 5
WINDOW = 300.0
MAX_KEYS = 10_000  # addresses and names tracked before the expired ones are dropped


@dataclass(frozen=True)
class Session:
    user: str
    expires: float


class Sessions:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._drop_expired()
            self._sessions[token] = Session(user.name, self.clock() + self.ttl)
        return token

    def user_of(self, token: str | None) -> str | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires <= self.clock():
                del self._sessions[token]
                return None
            return session.user

    def close(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def _drop_expired(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[token]


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
