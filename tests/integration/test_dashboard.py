"""The dashboard, end to end: ``floopy serve`` (its log store process serves the dashboard),
requests made with the official openai SDK, pages driven in Debian's headless Chromium by
playwright.

Two organizations (acme, globex) with a key each, and a dashboard user for each plus an
admin. The tests read what the pages show and what the JSON API answers, and compare the
aggregates with SQL over the raw rows (``floopy logs query``).

Screenshots of every page are taken here; ``make screenshots`` keeps them in
docs/screenshots/ (FLOOPY_SCREENSHOTS names the folder), otherwise they go to a temporary one.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .conftest import TEST_KEY, free_port, start_gateway, stop, write_settings
from .logstore import logs_query, wait_for

pytestmark = pytest.mark.integration

GLOBEX_KEY = "fpk_test_globex_key_0123456789abcdefghijklmnopqrstu"
PASSWORD = "correct-horse-battery"
XSS = "<script>alert(1)</script> and <img src=x onerror=alert(2)> and **bold**"
PAGES = ("overview", "requests", "sessions", "users", "properties")


@dataclass
class Site:
    url: str  # the dashboard
    gateway: str
    settings: Path
    shots: Path


def floopy(settings: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "floopy", *args],
        input=stdin,
        env={**os.environ, "FLOOPY_SETTINGS": str(settings)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def keys_setting() -> str:
    entries = [
        {"id": "acme-key", "hash": f"sha256:{_sha(TEST_KEY)}", "organization": "acme"},
        {"id": "globex-key", "hash": f"sha256:{_sha(GLOBEX_KEY)}", "organization": "globex"},
    ]
    return repr(entries)


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def chat(gateway: str, key: str, prompt: str, **headers: str) -> str:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        extra_headers=headers,
    )
    return str(raw.headers["x-request-id"])


@pytest.fixture(scope="module")
def site(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        with_keys=False,
        API_KEYS=keys_setting(),
        DASHBOARD_PORT=str(port),
    )
    floopy(
        settings,
        "dashboard",
        "users",
        "create",
        "root",
        "--admin",
        "--password-stdin",
        stdin=PASSWORD,
    )
    for name, org in (("alice", "acme"), ("gina", "globex")):
        floopy(
            settings,
            "dashboard",
            "users",
            "create",
            name,
            "--organization",
            org,
            "--password-stdin",
            stdin=PASSWORD,
        )
    gateway, proc = start_gateway(settings, root / "gateway.log")
    shots = Path(os.environ.get("FLOOPY_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield Site(f"http://127.0.0.1:{port}", gateway, settings, shots)
    finally:
        stop(proc)


@dataclass
class Traffic:
    turns: list[str]
    xss: str
    other_org: str
    property_value: str


@pytest.fixture(scope="module")
def traffic(site: Site) -> Traffic:
    """A three-turn session of user ann, a prompt full of markup, and a globex request."""
    turns = [
        chat(
            site.gateway,
            TEST_KEY,
            f"turn {n} of the trip plan",
            **{
                "floopy-user-id": "ann",
                "floopy-session-id": "trip-1",
                "floopy-session-name": "Trip planning",
                "floopy-session-path": f"/step/{n}",
                "floopy-property-feature": "summarize" if n < 3 else "chat",
                "user-agent": f"trip-planner/{n}.0",
            },
        )
        for n in (1, 2, 3)
    ]
    xss = chat(
        site.gateway,
        TEST_KEY,
        XSS,
        **{"floopy-user-id": "mallory", "floopy-property-feature": "chat"},
    )
    other = chat(
        site.gateway,
        GLOBEX_KEY,
        "globex secret plans",
        **{
            "floopy-user-id": "gus",
            "floopy-session-id": "globex-s",
            "floopy-property-feature": "summarize",
        },
    )
    admin = Client(site.url)
    admin.login("root")
    wait_for(lambda: len(admin.get("/api/requests?range=1h")["rows"]) >= 5, "the rows")
    return Traffic(turns, xss, other, "summarize")


class Client:
    """The JSON API, with a cookie jar."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def login(self, name: str, password: str = PASSWORD) -> int:
        body = urllib.parse.urlencode({"username": name, "password": password}).encode()
        return self.status("/login", body)

    def status(self, path: str, body: bytes | None = None) -> int:
        try:
            with self.opener.open(f"{self.url}{path}", data=body, timeout=30) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def get(self, path: str) -> Any:
        with self.opener.open(f"{self.url}{path}", timeout=30) as answer:
            return json.loads(answer.read())


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium (scripts/system-deps.sh installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def logged_in(browser: Browser, site: Site, name: str, path: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(f"{site.url}{path}")
    assert "/login" in page.url
    shoot(page, site, "login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    shown(page)
    return page


def shown(page: Page) -> None:
    """Waits for the page's data, or its error, and fails with what the page says."""
    page.wait_for_selector("body.ready, body.failed", timeout=90_000)
    assert "failed" not in (page.get_attribute("body", "class") or ""), page.inner_text("main")


def shoot(page: Page, site: Site, name: str) -> None:
    path = site.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- access ------------------------------------------------------------------------------


def test_nothing_answers_without_a_login(site: Site) -> None:
    anonymous = Client(site.url)
    for page in PAGES:
        assert anonymous.status(f"/{page}") == 303
    for api in (
        "overview",
        "requests",
        "requests/x",
        "sessions",
        "users",
        "properties",
        "export?format=csv",
        "options",
        "me",
    ):
        assert anonymous.status(f"/api/{api}") == 401
    assert anonymous.status("/static/app.js") == 200
    forged = Client(site.url)
    forged.jar.set_cookie(_cookie("floopy_dashboard", "forged"))
    assert forged.status("/api/requests") == 401


def _cookie(name: str, value: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0,
        name,
        value,
        None,
        False,
        "127.0.0.1",
        False,
        False,
        "/",
        True,
        False,
        None,
        False,
        None,
        None,
        {},
    )


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(site: Site) -> None:
    request = urllib.request.Request(
        f"{site.url}/login",
        data=urllib.parse.urlencode({"username": "alice", "password": PASSWORD}).encode(),
    )
    try:
        urllib.request.build_opener(NoRedirect()).open(request, timeout=30)
    except urllib.error.HTTPError as exc:
        assert exc.code == 303
        cookie = exc.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        csp = exc.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    client = Client(site.url)
    assert client.login("alice") == 303
    assert client.get("/api/me")["user"] == "alice"
    assert client.status("/logout", b"") == 303
    assert client.status("/api/me") == 401


# --- pages -------------------------------------------------------------------------------


def test_a_request_appears_and_filters_find_exactly_the_matching_rows(
    site: Site, traffic: Traffic
) -> None:
    alice = Client(site.url)
    alice.login("alice")

    def ids(query: str) -> set[str]:
        return {r["request_id"] for r in alice.get(f"/api/requests?{query}")["rows"]}

    trip = set(traffic.turns)
    assert ids("user=ann") == trip
    assert ids("session=trip-1") == trip
    assert ids("prop=feature%3Dsummarize") == set(traffic.turns[:2])
    assert ids("model=gpt-4o-mini&status=200") == trip | {traffic.xss}
    assert ids("status=5xx") == set()
    assert ids("range=1h&user=ann") == trip
    assert ids("from=2001-01-01T00:00:00&to=2001-01-02T00:00:00") == set()
    hostile = urllib.parse.quote("' OR 1=1 --")
    assert ids(f"user={hostile}") == set()
    assert ids(f"prop={hostile}%3Dx") == set()
    assert alice.status("/api/requests?status=1%3B%20DROP") == 400


def test_the_requests_page_and_the_detail_panel(
    browser: Browser, site: Site, traffic: Traffic
) -> None:
    page = logged_in(browser, site, "alice", "/requests?user=ann")
    assert page.locator("table.requests tbody tr").count() == 3
    shoot(page, site, "requests")
    page.locator("a.open").last.click()  # the oldest: turn 1
    panel = page.locator("#panel")
    panel.locator(".facts").wait_for()
    text = panel.inner_text()
    assert traffic.turns[0] in text
    assert "turn 1 of the trip plan" in text  # the conversation
    for heading in (
        "Tokens and cost",
        "Latency per stage",
        "Trace",
        "Events",
        "Headers",
        "Properties",
    ):
        assert heading in text
    headers = {
        row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text()
        for row in panel.locator("table.headers tbody tr").all()
    }
    assert headers["user-agent"] == "trip-planner/1.0"  # the headers that were logged
    assert headers["floopy-session-name"] == "Trip planning"
    assert headers["floopy-session-path"] == "/step/1"
    assert headers["floopy-property-feature"] == "summarize"
    assert headers["x-forwarded-for (else the peer address)"] == "127.0.0.1"
    assert TEST_KEY not in text and "authorization" not in {h.lower() for h in headers}
    assert panel.locator(".waterfall li").count() >= 3  # the request and its stages
    assert "provider_attempt" in text and "summarize" in text
    assert "/sessions?id=trip-1" in (
        panel.locator("a", has_text="trip-1").get_attribute("href") or ""
    )
    shoot(page, site, "request-detail")
    page.keyboard.press("Escape")
    assert panel.is_hidden()
    page.goto(f"{site.url}/requests?id={traffic.turns[1]}")
    page.locator("#panel .facts").wait_for()  # a shared link opens the panel
    assert traffic.turns[1] in panel.inner_text()
    page.close()


def test_a_prompt_full_of_markup_renders_as_text(
    browser: Browser, site: Site, traffic: Traffic
) -> None:
    page = logged_in(browser, site, "alice", f"/requests?id={traffic.xss}")
    page.locator("#panel .conversation").wait_for()
    assert XSS in page.locator("#panel .conversation").inner_text()
    assert page.locator("#panel img[src=x]").count() == 0
    assert page.locator("#panel script").count() == 0
    assert page.evaluate("document.querySelectorAll('b').length") == 0
    page.close()


def test_a_three_turn_session_shows_its_turns_in_order(
    browser: Browser, site: Site, traffic: Traffic
) -> None:
    page = logged_in(browser, site, "alice", "/sessions")
    assert "trip-1" in page.locator("#content").inner_text()
    shoot(page, site, "sessions")
    page.click("a:text('trip-1')")
    page.wait_for_selector("body.ready .turns")
    turns = page.locator(".turn-card")
    assert turns.count() == 3
    for n in range(3):
        assert f"turn {n + 1} of the trip plan" in turns.nth(n).inner_text()
    shoot(page, site, "session")
    turns.nth(2).locator("button", has_text="Open request").click()
    page.locator("#panel .facts").wait_for()
    assert traffic.turns[2] in page.locator("#panel").inner_text()
    page.close()


def test_a_users_cost_is_the_sum_of_their_rows(
    browser: Browser, site: Site, traffic: Traffic
) -> None:
    rows = logs_query(
        site.settings,
        "SELECT sum(ifNull(cost_usd, 0)) AS cost, count() AS n FROM floopy.requests "
        "WHERE organization = 'acme' AND user_id = 'ann'",
    )
    alice = Client(site.url)
    alice.login("alice")
    users = {u["user_id"]: u for u in alice.get("/api/users?range=7d")["rows"]}
    assert users["ann"]["requests"] == rows[0]["n"] == 3
    assert users["ann"]["cost"] == pytest.approx(rows[0]["cost"])
    assert users["ann"]["cost"] > 0
    page = logged_in(browser, site, "alice", "/users?range=7d")
    assert "ann" in page.locator("table.users").inner_text()
    shoot(page, site, "users")
    page.click("a:text('ann')")
    page.wait_for_url("**id=ann**")
    shown(page)
    assert page.locator("table.requests tbody tr").count() == 3
    shoot(page, site, "user")
    page.close()


def test_a_property_values_cost_per_day_equals_the_sql_over_raw_rows(
    browser: Browser, site: Site, traffic: Traffic
) -> None:
    admin = Client(site.url)
    admin.login("root")
    answer = admin.get("/api/properties/feature?range=7d")
    got = {(p["t"][:10], p["value"]): p["cost"] for p in answer["series"]}
    rows = logs_query(
        site.settings,
        "SELECT toString(toDate(time)) AS day, properties['feature'] AS value, "
        "sum(ifNull(cost_usd, 0)) AS cost FROM floopy.requests "
        "WHERE mapContains(properties, 'feature') GROUP BY day, value",
    )
    assert got == pytest.approx({(r["day"], r["value"]): r["cost"] for r in rows})
    page = logged_in(browser, site, "root", "/properties?range=7d")
    page.click("a:text('feature')")
    page.wait_for_selector("body.ready table.series")
    assert "summarize" in page.locator("#content").inner_text()
    shoot(page, site, "properties")
    page.goto(f"{site.url}/overview?range=7d")
    shown(page)
    assert "gpt-4o-mini" in page.locator("#content").inner_text()
    shoot(page, site, "overview")
    page.emulate_media(color_scheme="dark")
    shoot(page, site, "overview-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, site, "overview-phone")
    page.close()


def test_an_organizations_user_never_sees_anothers_data(
    browser: Browser, site: Site, traffic: Traffic
) -> None:
    gina = Client(site.url)
    gina.login("gina")
    rows = gina.get("/api/requests?range=7d")["rows"]
    assert {r["request_id"] for r in rows} == {traffic.other_org}
    assert gina.status(f"/api/requests/{traffic.turns[0]}") == 404
    assert gina.status("/api/sessions/trip-1") == 404
    assert [s["session_id"] for s in gina.get("/api/sessions?range=7d")["rows"]] == ["globex-s"]
    assert [u["user_id"] for u in gina.get("/api/users?range=7d")["rows"]] == ["gus"]
    assert gina.status("/api/users/ann?range=7d") == 404
    assert gina.get("/api/overview?range=7d")["totals"]["requests"] == 1
    values = gina.get("/api/properties/feature?range=7d")["values"]
    assert [(v["value"], v["requests"]) for v in values] == [("summarize", 1)]
    assert gina.get("/api/options?range=7d")["organization"] == ["globex"]
    page = logged_in(browser, site, "gina", "/requests?range=7d")
    text = page.locator("#content").inner_text()
    assert "gus" in text and "ann" not in text and "mallory" not in text
    page.close()


def test_export_streams_the_filtered_list_as_jsonl_and_csv(site: Site, traffic: Traffic) -> None:
    alice = Client(site.url)
    alice.login("alice")
    with alice.opener.open(f"{site.url}/api/export?format=jsonl&user=ann", timeout=30) as answer:
        lines = answer.read().decode().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == traffic.turns[::-1]
    with alice.opener.open(
        f"{site.url}/api/export?format=csv&range=7d&limit=2", timeout=30
    ) as answer:
        assert answer.headers["content-type"].startswith("text/csv")
        table = answer.read().decode().splitlines()
    assert table[0].startswith("request_id,time,organization")
    assert len(table) == 3  # the header and the two rows asked for
    assert traffic.other_org not in "\n".join(table)


# Last: the throttle counts failures per client address too, and every test here logs in
# from 127.0.0.1.
def test_a_login_outlives_a_restart_of_the_store_process(site: Site) -> None:
    """Near the end: it kills the store process (the gateway starts another); only the
    throttling test, which reads no rows, follows."""
    client = Client(site.url)
    assert client.login("alice") == 303
    assert client.get("/api/me")["user"] == "alice"
    status_file = site.settings.parent / "data" / "store" / "status.json"
    wait_for(status_file.exists, "the store's status", timeout=30)
    first = int(json.loads(status_file.read_text())["pid"])
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        try:
            pid = int(json.loads(status_file.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return False
        return pid != first and Client(site.url).status("/api/me") == 401

    wait_for(restarted, "a new store process serving the dashboard", timeout=60)
    assert client.get("/api/me")["user"] == "alice"
    assert client.status("/logout", b"") == 303
    assert client.status("/api/me") == 401


def test_failed_logins_are_throttled(site: Site) -> None:
    client = Client(site.url)
    statuses = [client.login("throttled-user", "wrong-password") for _ in range(6)]
    assert statuses == [401] * 5 + [429]
