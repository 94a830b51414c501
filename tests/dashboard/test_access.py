"""Login sessions, their cookie, throttled attempts, and the users file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from floopy.dashboard import access
from floopy.dashboard.users import UserError, UserStore, hash_password, verify_password


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_passwords_are_stored_as_salted_scrypt_hashes() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$") and "correct horse" not in first
    assert first != second  # a salt each
    assert verify_password("correct horse", first)
    assert not verify_password("correct horsE", first)
    assert not verify_password("anything", "not-a-hash")


def test_users_file_is_private_and_read_again_when_it_changes(tmp_path: Path) -> None:
    running, command = UserStore(tmp_path), UserStore(tmp_path)
    assert running.users() == {}
    command.create("alice", "s3cret-pass", ("acme",), admin=False)
    assert stat.S_IMODE(command.path.stat().st_mode) == 0o600
    alice = running.authenticate("alice", "s3cret-pass")
    assert alice is not None and alice.organizations == ("acme",) and not alice.admin
    assert alice.sees("acme") and not alice.sees("globex")
    assert running.authenticate("alice", "wrong-pass") is None
    assert running.authenticate("nobody", "s3cret-pass") is None
    command.create("alice", "new-password", ("acme",), admin=False)
    assert running.authenticate("alice", "s3cret-pass") is None
    assert running.authenticate("alice", "new-password") is not None
    assert command.delete("alice") and running.users() == {}


@pytest.mark.parametrize(
    ("name", "password", "organizations", "admin", "complaint"),
    [
        ("al ice", "long-enough", ("acme",), False, "user name"),
        ("alice", "short", ("acme",), False, "at least 8"),
        ("alice", "long-enough", (), False, "organization"),
    ],
)
def test_unusable_users_are_refused(
    tmp_path: Path,
    name: str,
    password: str,
    organizations: tuple[str, ...],
    admin: bool,
    complaint: str,
) -> None:
    with pytest.raises(UserError, match=complaint):
        UserStore(tmp_path).create(name, password, organizations, admin)


def test_sessions_expire_and_close(tmp_path: Path) -> None:
    clock = Clock()
    user = UserStore(tmp_path).create("root", "long-enough", (), admin=True)
    sessions = access.Sessions(60, clock=clock)
    token = sessions.open(user)
    assert sessions.user_of(token) == "root"
    assert sessions.user_of("forged") is None and sessions.user_of(None) is None
    clock.now += 61
    assert sessions.user_of(token) is None
    token = sessions.open(user)
    sessions.close(token)
    assert sessions.user_of(token) is None


def test_a_login_outlives_a_restart_and_the_file_holds_no_token(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "dashboard" / access.SESSIONS_FILE
    user = UserStore(tmp_path).create("root", "long-enough", (), admin=True)
    token = access.Sessions(60, path, clock).open(user)
    stale = access.Sessions(60, path, clock).open(user)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text() and "root" in path.read_text()

    restarted = access.Sessions(60, path, clock)  # a new process reads the file
    assert restarted.user_of(token) == "root"
    restarted.close(stale)
    assert access.Sessions(60, path, clock).user_of(stale) is None
    clock.now += 61
    assert access.Sessions(60, path, clock).user_of(token) is None

    path.write_text("{not json")  # a damaged file costs the logins, never the dashboard
    assert access.Sessions(60, path, clock).user_of(token) is None


def test_the_cookie_is_http_only_strict_and_secure_over_tls() -> None:
    plain = access.cookie("tok", 3600, secure=False)
    assert "HttpOnly" in plain and "SameSite=Strict" in plain and "Secure" not in plain
    assert "Secure" in access.cookie("tok", 3600, secure=True)
    assert "Max-Age=0" in access.cleared_cookie(False)
    assert access.token_of("a=b; floopy_dashboard=tok; c=d") == "tok"
    assert access.token_of("floopy_dashboard=") is None


def test_failed_logins_are_throttled_until_they_leave_the_window() -> None:
    clock = Clock()
    throttle = access.Throttle(max_failures=3, window=100, clock=clock)
    for _ in range(2):
        throttle.failed("address:1.2.3.4", "user:alice")
    assert throttle.retry_after("address:1.2.3.4", "user:alice") == 0
    throttle.failed("address:1.2.3.4", "user:alice")
    assert throttle.retry_after("address:5.6.7.8", "user:alice") == pytest.approx(100)
    assert throttle.retry_after("address:5.6.7.8", "user:bob") == 0
    clock.now += 100.5
    assert throttle.retry_after("address:1.2.3.4", "user:alice") == 0


def test_the_throttle_forgets_expired_keys_once_it_tracks_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(access, "MAX_KEYS", 3)
    clock = Clock()
    throttle = access.Throttle(max_failures=2, window=10, clock=clock)
    for name in ("a", "b", "c", "d"):
        throttle.failed(f"user:{name}")
    clock.now += 11
    throttle.failed("user:e")
    assert set(throttle._failures) == {"user:e"}
