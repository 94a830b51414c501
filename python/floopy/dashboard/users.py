"""Dashboard users: names, scrypt password hashes, organizations, admin or not.

Kept in ``DATA_DIR/dashboard/users.json`` (mode 0600), written by ``floopy dashboard users
create`` and read again by the running dashboard whenever the file changes, so a user added
while it runs can log in at once. A password is never stored, only its scrypt hash with a
salt of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

USERS_FILE = "users.json"
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8
# scrypt's cost: about 50 ms and 16 MiB a check, the cost a guess pays too.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class UserError(ValueError):
    """A user name or password that cannot be used."""


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    organizations: tuple[str, ...]
    admin: bool

    def sees(self, organization: str) -> bool:
        return self.admin or organization in self.organizations


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        got = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


# A hash that no password matches, checked when the name is unknown, so a failed login takes
# as long whether or not the user exists.
_NOBODY = hash_password(secrets.token_urlsafe(16))


class UserStore:
    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "dashboard" / USERS_FILE
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._seen: tuple[int, int] | None = None

    def users(self) -> dict[str, User]:
        with self._lock:
            try:
                stat = self.path.stat()
                seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                seen = None
            if seen != self._seen:
                self._users = self._read() if seen is not None else {}
                self._seen = seen
            return dict(self._users)

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.users().get(name)
        ok = verify_password(password, user.password_hash if user else _NOBODY)
        return user if ok and user is not None else None

    def create(self, name: str, password: str, organizations: tuple[str, ...], admin: bool) -> User:
        """Adds the user, or replaces the one of that name (a new password, say)."""
        if not NAME.match(name):
            raise UserError("the user name takes 1 to 64 letters, digits, and _ . @ -")
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
        if not admin and not organizations:
            raise UserError("a user who is not an admin needs at least one organization")
        user = User(name, hash_password(password), tuple(organizations), admin)
        users = self.users()
        users[name] = user
        self._write(users)
        return user

    def delete(self, name: str) -> bool:
        users = self.users()
        if users.pop(name, None) is None:
            return False
        self._write(users)
        return True

    def _read(self) -> dict[str, User]:
        raw = json.loads(self.path.read_text())
        return {
            entry["name"]: User(
                entry["name"],
                entry["password_hash"],
                tuple(entry.get("organizations", ())),
                bool(entry.get("admin", False)),
            )
            for entry in raw.get("users", [])
        }

    def _write(self, users: dict[str, User]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "users": [
                {
                    "name": user.name,
                    "password_hash": user.password_hash,
                    "organizations": list(user.organizations),
                    "admin": user.admin,
                }
                for user in users.values()
            ]
        }
        scratch = self.path.with_name(f".{USERS_FILE}.{os.getpid()}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(body, handle, indent=1)
        os.replace(scratch, self.path)
