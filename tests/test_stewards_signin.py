"""Sign-in, sessions, CSRF, one-time password links, rate limits and API tokens (issue 11,
item 8), on the real server (2 gunicorn workers) with real clients.

Rate limits are per account and per client address: each test that makes sign-ins fail connects
from its own loopback address (127.0.0.2, 127.0.0.3...), which the server sees as the client's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import sqlite3
import time
import urllib.parse

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.conftest import start_server, stop_server, taza
from tests.stewards_support import (
    RUN_PROFILE,
    STATE_PROFILES,
    _holds_socket,
    _socket_inode,
    api_environment,  # noqa: F401 (an autouse fixture)
    assert_state_on_its_engine,
    password_of,
    running_api,
    state_profile,
    stored_text,
    workers,
)

ACCOUNT_FAILURES, ADDRESS_FAILURES, WINDOW = 3, 4, 60
COOKIE = "taza_session"


@pytest.fixture(scope="module", params=RUN_PROFILE)
def api(request, tmp_path_factory):
    """The server (on the run's profile); tests marked `on_both_engines` run on each engine."""
    home = tmp_path_factory.mktemp("stewards-signin")
    with state_profile(request, "stewards_signin") as profile, running_api(
            home, workers=2, TAZA_SIGNIN_ACCOUNT_FAILURES=ACCOUNT_FAILURES,
            TAZA_SIGNIN_ADDRESS_FAILURES=ADDRESS_FAILURES, TAZA_SIGNIN_WINDOW_SECONDS=WINDOW,
            **profile) as running:
        yield running


class FromAddress(HTTPAdapter):
    """Connections from a chosen loopback address, one at a time (so one keep-alive
    connection, hence one gunicorn worker, serves every request of a client)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Browser:
    """A client the way the stewards' page is one: session cookie, CSRF token in a header."""

    def __init__(self, server_url: str, address: str = "127.0.0.1"):
        self.url = server_url
        self.http = requests.Session()
        self.http.mount("http://", FromAddress(address))
        self.csrf: str | None = None
        self.local_port: int | None = None
        self.pinned = False  # once pinned, every request must use the same connection

    def sign_in(self, name: str, password: str | None = None) -> requests.Response:
        answer = self.request("POST", "/api/session",
                              json={"name": name, "password": password or password_of(name)})
        if answer.status_code == 201:
            self.csrf = answer.json()["csrf_token"]
        return answer

    def request(self, method: str, path: str, csrf: bool = True, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        answer = self.http.request(method, self.url + path, headers=headers, timeout=60,
                                   stream=True, **kwargs)
        port = answer.raw._connection.sock.getsockname()[1]
        assert not self.pinned or port == self.local_port, "the connection was replaced"
        self.local_port = port
        answer.content  # noqa: B018 (read it all while the connection is known)
        return answer

    def worker(self, server) -> int | None:
        """The gunicorn worker holding this client's connection (after a request); the
        client keeps that connection, hence that worker, from now on."""
        self.pinned = True
        server_port = int(server.url.rsplit(":", 1)[1])
        inode = _socket_inode(server_port, self.local_port)
        return next((pid for pid in workers(server) if _holds_socket(pid, inode)), None)


def cookie_header(answer: requests.Response) -> str:
    return answer.headers["Set-Cookie"]


on_both_engines = pytest.mark.parametrize("api", STATE_PROFILES, indirect=True)


# -- sign-in, session, sign-out -------------------------------------------------------------

@on_both_engines
def test_sign_in_session_cookie_and_sign_out(api):
    assert_state_on_its_engine(api)
    browser = Browser(api.url, "127.0.0.6")
    signed_in = browser.sign_in("alice")
    assert signed_in.status_code == 201, signed_in.text
    body = signed_in.json()
    assert body["user"]["name"] == "alice" and len(body["csrf_token"]) >= 32
    cookie = cookie_header(signed_in)
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the public URL is http here
    assert browser.request("GET", "/api/me").json()["name"] == "alice"
    assert browser.request("GET", "/api/session").json()["csrf_token"] == body["csrf_token"]
    value = browser.http.cookies[COOKIE]
    assert value.split("_", 1)[1] not in stored_text(api.server.home)  # only its hash is stored

    signed_out = browser.request("DELETE", "/api/session")
    assert signed_out.status_code == 204
    # The ended session works nowhere (fresh connections reach both workers).
    for _ in range(4):
        answer = requests.get(api.url + "/api/me", cookies={COOKIE: value}, timeout=30)
        assert answer.status_code == 401
        assert f"{COOKIE}=;" in answer.headers.get("Set-Cookie", "")  # the browser forgets it

    for name, password in (("alice", "wrong-password"), ("nobody-here", "wrong-password")):
        refused = Browser(api.url, "127.0.0.6").sign_in(name, password)
        assert refused.status_code == 401
        assert refused.json()["description"] == "wrong name or password"
        assert "Set-Cookie" not in refused.headers


def test_secure_cookie_when_the_public_url_is_https(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    taza("users", "add", "sam", "--role", "reviewer", "--password-stdin", home=home,
         input=password_of("sam") + "\n")
    server = start_server(home, workers=1, args=("--public-url", "https://catalog.example"))
    try:
        answer = requests.post(server.url + "/api/session", timeout=30,
                               json={"name": "sam", "password": password_of("sam")})
        assert answer.status_code == 201
        cookie = cookie_header(answer)
        assert cookie.startswith("__Host-taza_session=") and "Secure" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        foreign = requests.post(server.url + "/api/session", timeout=30,
                                headers={"Origin": "https://elsewhere.example"},
                                json={"name": "sam", "password": password_of("sam")})
        assert foreign.status_code == 403
        same = requests.post(server.url + "/api/session", timeout=30,
                             headers={"Origin": "https://catalog.example"},
                             json={"name": "sam", "password": password_of("sam")})
        assert same.status_code == 201
    finally:
        stop_server(server)


def test_cookie_writes_need_the_csrf_token_and_a_same_site_origin(api):
    browser = Browser(api.url)
    assert browser.sign_in("anna").status_code == 201
    new = {"id": api.new_id("csrf")}
    refusals = [
        browser.request("POST", "/api/datasets", csrf=False, json=new),
        browser.request("POST", "/api/datasets", csrf=False, json=new,
                        headers={"X-CSRF-Token": "not-the-token"}),
        browser.request("POST", "/api/datasets", json=new,
                        headers={"Origin": "http://attacker.example"}),
        browser.request("DELETE", "/api/session", csrf=False),
    ]
    for answer in refusals:
        assert answer.status_code == 403, answer.text
    assert "X-CSRF-Token" in refusals[0].json()["description"]
    assert "cross-site" in refusals[2].json()["description"]
    assert browser.request("GET", "/api/me").status_code == 200  # still signed in
    assert browser.request("GET", f"/api/datasets/{new['id']}").status_code == 404  # no write
    created = browser.request("POST", "/api/datasets", json=new,
                              headers={"Origin": api.url})
    assert created.status_code == 201, created.text
    # Signing in from another site is refused too (no session fixation from elsewhere).
    foreign = requests.post(api.url + "/api/session", timeout=30,
                            headers={"Origin": "http://attacker.example"},
                            json={"name": "anna", "password": password_of("anna")})
    assert foreign.status_code == 403


def test_changing_the_password_or_disabling_the_account_ends_sessions(api):
    taza("users", "add", "dora", "--role", "steward", "--org", "ministry-a",
         "--password-stdin", home=api.server.home, input="first-password\n")
    browser = Browser(api.url, "127.0.0.7")
    assert browser.sign_in("dora", "first-password").status_code == 201
    taza("users", "password", "dora", "--password-stdin", home=api.server.home,
         input="second-password\n")
    assert browser.request("GET", "/api/me").status_code == 401
    assert browser.sign_in("dora", "first-password").status_code == 401
    assert browser.sign_in("dora", "second-password").status_code == 201
    taza("users", "disable", "dora", home=api.server.home)
    assert browser.request("GET", "/api/me").status_code == 401
    assert browser.sign_in("dora", "second-password").status_code == 401


# -- one-time links -------------------------------------------------------------------------

def link_code(output: str) -> tuple[str, str]:
    """The printed link and its code, which must ride in the fragment."""
    link = re.search(r"password link: (\S+)", output).group(1)
    parts = urllib.parse.urlsplit(link)
    assert parts.path == "/stewards" and not parts.query
    assert parts.fragment.startswith("set-password=")
    return link, parts.fragment.split("=", 1)[1]


def test_one_time_link_sets_the_password_once(api, monkeypatch):
    home = api.server.home
    added = taza("users", "add", "carol", "--role", "steward", "--org", "ministry-a", home=home)
    link, code = link_code(added.stdout)
    assert "token" not in added.stdout
    assert Browser(api.url, "127.0.0.8").sign_in("carol", "carols-password").status_code == 401
    short = requests.post(api.url + "/api/password", timeout=30,
                          json={"code": code, "password": "short"})
    assert short.status_code == 400  # refused, and the link is still good
    used = requests.post(api.url + "/api/password", timeout=30,
                         json={"code": code, "password": "carols-password"})
    assert used.status_code == 200 and used.json()["name"] == "carol"
    assert Browser(api.url, "127.0.0.8").sign_in("carol", "carols-password").status_code == 201
    again = requests.post(api.url + "/api/password", timeout=30,
                          json={"code": code, "password": "someone-elses"})
    assert again.status_code == 400 and "used or expired" in again.json()["description"]
    assert Browser(api.url, "127.0.0.8").sign_in("carol", "someone-elses").status_code == 401
    forged = requests.post(api.url + "/api/password", timeout=30,
                           json={"code": code[:-1] + ("A" if code[-1] != "A" else "B"),
                                 "password": "someone-elses"})
    assert forged.status_code == 400

    # A new link voids the unused older one; an expired link does nothing.
    _, older = link_code(taza("users", "link", "carol", home=home).stdout)
    _, newer = link_code(taza("users", "link", "carol", home=home).stdout)
    refused = requests.post(api.url + "/api/password", timeout=30,
                            json={"code": older, "password": "a-new-password"})
    assert refused.status_code == 400
    monkeypatch.setenv("TAZA_PASSWORD_LINK_HOURS", "0.0004")  # 1.44 s
    _, expiring = link_code(taza("users", "link", "carol", home=home).stdout)
    time.sleep(2)
    expired = requests.post(api.url + "/api/password", timeout=30,
                            json={"code": expiring, "password": "a-new-password"})
    assert expired.status_code == 400
    # The secret is never in the server's log or stored in clear, nor in the audit log.
    for secret in (code, newer, expiring):
        assert secret.split("_", 1)[1] not in (home / "server.log").read_text()
        assert secret.split("_", 1)[1] not in stored_text(home)


# -- rate limits ----------------------------------------------------------------------------

@on_both_engines
def test_failed_sign_ins_are_limited_per_account_across_workers(api):
    home = api.server.home
    taza("users", "add", "victim", "--role", "reviewer", "--password-stdin", home=home,
         input=password_of("victim") + "\n")
    # One client per worker, from the same address.
    clients: dict[int, Browser] = {}
    # Whichever worker wakes first accepts: on a loaded machine one may win dozens in a row
    # (CI at load 9 missed the other in 40 tries), so try longer and give it time to wake.
    for _ in range(200):
        client = Browser(api.url, "127.0.0.2")
        client.request("GET", "/healthz")
        clients.setdefault(client.worker(api.server), client)
        if len(clients) == 2:
            break
        time.sleep(0.02)
    assert len(clients) == 2 and None not in clients, "could not reach both workers"
    first, second = clients.values()
    # Failures split over both workers: 2 on one, 1 on the other (3 = the account limit).
    for client in (first, first, second):
        assert client.sign_in("victim", "not-the-password").status_code == 401
    for client in (first, second, Browser(api.url, "127.0.0.3")):
        limited = client.sign_in("victim")  # the right password, refused unread
        assert limited.status_code == 429, limited.text
        retry = int(limited.headers["Retry-After"])
        assert 1 <= retry <= WINDOW and limited.json()["retry_after"] == retry
        assert "victim" in limited.json()["description"]
    assert first.worker(api.server) != second.worker(api.server)
    # Other accounts from the same address are not locked out (3 failures < 4 per address).
    assert Browser(api.url, "127.0.0.2").sign_in("rex").status_code == 201


def test_failed_sign_ins_are_limited_per_address(api):
    attacker = "127.0.0.4"
    for number in range(ADDRESS_FAILURES):
        answer = Browser(api.url, attacker).sign_in(f"guess-{number}", "not-the-password")
        assert answer.status_code == 401
    limited = Browser(api.url, attacker).sign_in("rita")
    assert limited.status_code == 429 and "your address" in limited.json()["description"]
    assert 1 <= int(limited.headers["Retry-After"]) <= WINDOW
    assert Browser(api.url, "127.0.0.5").sign_in("rita").status_code == 201


# -- API tokens -----------------------------------------------------------------------------

@on_both_engines
def test_tokens_are_listed_and_revoked_by_their_owner_or_an_admin(api):
    browser = Browser(api.url)
    assert browser.sign_in("alice").status_code == 201
    created = browser.request("POST", "/api/tokens", json={"label": "nightly import"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    expires = dt.datetime.fromisoformat(created.json()["expires_at"])
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=90)  # the default lifetime
    assert abs((expires - expected).total_seconds()) < 3600
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/me", headers=bearer).json()["name"] == "alice"
    listing = browser.request("GET", "/api/tokens").json()
    mine = next(t for t in listing["tokens"] if t["id"] == created.json()["id"])
    assert mine["label"] == "nightly import" and not mine["revoked"] and "token" not in mine
    # A token cannot make tokens (a stolen one could otherwise outlive its expiry).
    assert api.post("/api/tokens", headers=bearer, json={}).status_code == 403
    too_long = browser.request("POST", "/api/tokens", json={"lifetime_days": 400})
    assert too_long.status_code == 400

    # Someone else can neither list nor revoke it; the owner can.
    token_id = created.json()["id"]
    assert api.request("DELETE", f"/api/tokens/{token_id}", "bob").status_code == 403
    assert api.get("/api/tokens?user=alice", "bob").status_code == 403
    assert api.get("/api/me", headers=bearer).status_code == 200
    assert browser.request("DELETE", f"/api/tokens/{token_id}").status_code == 204
    assert api.get("/api/me", headers=bearer).status_code == 401

    # An admin revokes anyone's token (here the one `taza users token` gave the tests).
    cli_token = api.tokens["anna"]
    cli_id = cli_token.split("_")[1]
    listed = api.get("/api/tokens?user=anna", "root").json()["tokens"]
    assert cli_id in {t["id"] for t in listed}
    assert api.request("DELETE", f"/api/tokens/{cli_id}", "root").status_code == 204
    assert api.get("/api/me", "anna").status_code == 401
    assert next(t for t in api.get("/api/tokens?user=anna", "root").json()["tokens"]
                if t["id"] == cli_id)["revoked"]
    api.tokens["anna"] = taza("users", "token", "anna", "--days", "1",
                              home=api.server.home).stdout.strip()
    assert api.get("/api/me", "anna").status_code == 200


def test_sessions_and_tokens_expire(tmp_path_factory):
    """Short lifetimes from the environment: 2 s idle, 5 s in all, tokens ~3.5 s."""
    home = tmp_path_factory.mktemp("stewards-expiry")
    with running_api(home, workers=2, TAZA_SESSION_IDLE_SECONDS=2, TAZA_SESSION_MAX_SECONDS=5,
                     TAZA_TOKEN_LIFETIME_DAYS=0.00004) as api:
        idle = Browser(api.url)
        assert idle.sign_in("alice").status_code == 201
        assert idle.request("GET", "/api/me").status_code == 200
        time.sleep(2.5)
        ended = idle.request("GET", "/api/me")
        assert ended.status_code == 401 and "without activity" in ended.json()["description"]

        busy = Browser(api.url)
        started = time.monotonic()
        signed_in = busy.sign_in("anna")
        assert signed_in.status_code == 201
        assert "Max-Age=5" in cookie_header(signed_in)  # browsers drop it then, too
        token = busy.request("POST", "/api/tokens", json={}).json()
        bearer = {"Authorization": f"Bearer {token['token']}"}
        assert api.get("/api/me", headers=bearer).status_code == 200
        # Past its Max-Age a client may keep sending the cookie: the server refuses it.
        cookie = {COOKIE: busy.http.cookies[COOKIE]}
        answers = []
        while time.monotonic() - started < 8:  # active every 0.5 s: never idle for 2 s
            answers.append(requests.get(api.url + "/api/me", cookies=cookie, timeout=30))
            if answers[-1].status_code != 200:
                break
            time.sleep(0.5)
        assert len(answers) > 2 and answers[0].status_code == 200
        assert answers[-1].status_code == 401
        assert "maximum age" in answers[-1].json()["description"]
        expired = api.get("/api/me", headers=bearer)  # ~3.5 s after it was made
        assert expired.status_code == 401 and "expired" in expired.json()["description"]


# -- schema migration -----------------------------------------------------------------------

VERSION_1 = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL
    CHECK (role IN ('steward', 'reviewer', 'admin')), organisation TEXT, email TEXT,
    disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE tokens (id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
    secret_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE datasets (id TEXT PRIMARY KEY, organisation TEXT NOT NULL, created_by TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE drafts (id INTEGER PRIMARY KEY, dataset_id TEXT NOT NULL REFERENCES datasets(id),
    state TEXT NOT NULL CHECK (state IN
        ('draft', 'submitted', 'approved', 'rejected', 'published', 'discarded')),
    author_id INTEGER NOT NULL REFERENCES users(id), created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, upload TEXT, comment TEXT, reviewed_by INTEGER REFERENCES users(id),
    approved_digest TEXT, published_version INTEGER, published_release INTEGER);
CREATE UNIQUE INDEX one_open_draft ON drafts(dataset_id)
    WHERE state IN ('draft', 'submitted', 'approved', 'rejected');
CREATE TABLE contributors (draft_id INTEGER NOT NULL REFERENCES drafts(id),
    user_id INTEGER NOT NULL REFERENCES users(id), PRIMARY KEY (draft_id, user_id));
CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, dataset_id TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL);
PRAGMA user_version = 1;
"""


def test_a_version_1_home_is_migrated_in_place(tmp_path):
    """A stewards' database as version 1 of the schema left it: one steward with a token (no
    expiry then) and an open draft holding a 1234-byte upload."""
    home = tmp_path / "home"
    folder = home / "stewards"
    (folder / "drafts" / "1" / "upload").mkdir(parents=True)
    (folder / "drafts" / "1" / "upload" / "upload.json").write_text('{"size": 1234}')
    secret = secrets.token_urlsafe(32)
    token = f"taza_0123456789abcdef_{secret}"
    with sqlite3.connect(folder / "stewards.sqlite") as database:
        database.executescript(VERSION_1)
        database.execute("INSERT INTO users VALUES (1, 'olga', 'steward', 'ministry-a', NULL, "
                         "0, '2026-01-01T00:00:00.000+00:00')")
        database.execute("INSERT INTO tokens VALUES ('0123456789abcdef', 1, ?, "
                         "'2026-01-01T00:00:00.000+00:00', 0)",
                         (hashlib.sha256(secret.encode()).hexdigest(),))
        database.execute("INSERT INTO datasets VALUES ('olgas-data', 'ministry-a', 'olga', "
                         "'2026-01-01T00:00:00.000+00:00')")
        database.execute("INSERT INTO drafts (id, dataset_id, state, author_id, created_at, "
                         "updated_at) VALUES (1, 'olgas-data', 'draft', 1, 'x', 'x')")
    server = start_server(home, workers=1)
    try:
        answer = requests.get(server.url + "/api/me", timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json()["name"] == "olga"
    finally:
        stop_server(server)
    with sqlite3.connect(folder / "stewards.sqlite") as database:
        assert database.execute("PRAGMA user_version").fetchone()[0] == 2
        expires = database.execute("SELECT expires_at FROM tokens").fetchone()[0]
        upload_bytes = database.execute("SELECT upload_bytes FROM drafts").fetchone()[0]
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=90)
    assert abs((dt.datetime.fromisoformat(expires) - expected).total_seconds()) < 3600
    assert upload_bytes == 1234
    # The migrated account sets a password with a link and signs in.
    _, code = link_code(taza("users", "link", "olga", home=home).stdout)
    server = start_server(home, workers=1)
    try:
        assert requests.post(server.url + "/api/password", timeout=30,
                             json={"code": code, "password": "olgas-password"}).ok
        assert requests.post(server.url + "/api/session", timeout=30,
                             json={"name": "olga", "password": "olgas-password"}).ok
    finally:
        stop_server(server)


