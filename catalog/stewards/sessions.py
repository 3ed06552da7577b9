"""Browser sessions: sign-in with name and password, rate-limited failures, expiry, sign-out.

A session lives in the `sessions` table (so every gunicorn worker sees it, and signing out or
disabling the account ends it everywhere); the browser holds `<id>_<secret>` in an HttpOnly
cookie, and only the SHA-256 of the secret is stored. A session ends after
TAZA_SESSION_IDLE_SECONDS without a request, and TAZA_SESSION_MAX_SECONDS after sign-in
whatever happens. Each session has its own CSRF token, which the stewards' page sends in a
header with every write (api.py checks it).

Failed sign-ins are rows in `signin_failures`, per account name and per client address, so
the limit holds across workers and restarts: past TAZA_SIGNIN_ACCOUNT_FAILURES (or
TAZA_SIGNIN_ADDRESS_FAILURES) failures within TAZA_SIGNIN_WINDOW_SECONDS, sign-in answers 429
with Retry-After and the password is not even checked. An attempt counts as a failure from the
moment it starts (removed again when it succeeds), so concurrent attempts cannot overshoot.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from catalog.stewards import accounts
from catalog.stewards.accounts import User
from catalog.stewards.config import StewardSettings
from catalog.stewards.db import connect
from catalog.stewards.errors import BadRequest, TooManyRequests, Unauthenticated
from catalog.store import audit

SESSION = re.compile(r"^([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
MAX_ADDRESS = 64


@dataclass(frozen=True)
class Session:
    id: str
    user: User
    csrf_token: str
    created: float
    last_seen: float
    expires: float  # the absolute end; the idle end is last_seen + the idle timeout
    cookie: str | None = None  # the cookie's value, only right after sign-in

    def as_dict(self, settings: StewardSettings) -> dict:
        idle_end = self.last_seen + settings.session_idle_seconds
        return {"user": self.user.as_dict(), "csrf_token": self.csrf_token,
                "signed_in_at": _iso(self.created),
                "expires_at": _iso(min(self.expires, idle_end)),
                "absolute_expires_at": _iso(self.expires),
                "idle_timeout_seconds": settings.session_idle_seconds}


def sign_in(home: Path, settings: StewardSettings, name: object, password: object,
            address: str) -> Session:
    """A new session for the account, or 401 (wrong name or password) or 429 (too many)."""
    if not isinstance(name, str) or not isinstance(password, str):
        raise BadRequest('send {"name": "...", "password": "..."}', message_code="signin_body")
    address = (address or "unknown")[:MAX_ADDRESS]
    attempt = _start_attempt(home, settings, name[:64], address)
    user = accounts.verify_password(home, name, password)
    if user is None:
        raise Unauthenticated("wrong name or password", message_code="signin_wrong")
    now = time.time()
    session_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    with connect(home) as connection:
        # The attempt succeeded: it is no failure, and the account's earlier failures are void.
        connection.execute("DELETE FROM signin_failures WHERE rowid = ? AND scope = 'address'",
                           (attempt,))
        connection.execute("DELETE FROM signin_failures WHERE scope = 'account' AND subject = ?",
                           (name,))
        connection.execute("DELETE FROM sessions WHERE expires <= ? OR last_seen <= ?",
                           (now, now - settings.session_idle_seconds))
        connection.execute(
            "INSERT INTO sessions (id, user_id, secret_sha256, csrf_token, created, last_seen, "
            "expires) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, user.id, _digest(secret), csrf_token, now, now,
             now + settings.session_max_seconds))
        audit.append(connection, user.name, "session.signin", None, session=session_id)
    return Session(session_id, user, csrf_token, now, now, now + settings.session_max_seconds,
                   cookie=f"{session_id}_{secret}")


def from_cookie(home: Path, settings: StewardSettings, cookie: str) -> Session:
    """The live session a cookie names; 401 saying why otherwise (and an ended one is removed)."""
    match = SESSION.match(cookie or "")
    if not match:
        raise Unauthenticated("not signed in (the session cookie is not valid)",
                              message_code="session_invalid")
    session_id, secret = match.groups()
    with connect(home, write=False) as connection:
        row = connection.execute(
            "SELECT sessions.id AS session_id, sessions.secret_sha256, sessions.csrf_token, "
            "sessions.created AS session_created, sessions.last_seen, sessions.expires, users.* "
            "FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.id = ?",
            (session_id,)).fetchone()
    matches = hmac.compare_digest(_digest(secret), row["secret_sha256"] if row else "0" * 64)
    if row is None or not matches or row["disabled"]:
        raise Unauthenticated("not signed in (the session ended, or was never started)",
                              message_code="session_ended")
    now = time.time()
    if now >= row["expires"]:
        end(home, session_id)
        raise Unauthenticated(f"the session reached its maximum age of "
                              f"{settings.session_max_seconds:g} s: sign in again",
                              message_code="session_too_old")
    if now - row["last_seen"] >= settings.session_idle_seconds:
        end(home, session_id)
        raise Unauthenticated(f"the session expired after {settings.session_idle_seconds:g} s "
                              "without activity: sign in again", message_code="session_idle")
    last_seen = row["last_seen"]
    # Record activity at most every few seconds: one write per request would queue workers.
    if now - last_seen > min(60.0, settings.session_idle_seconds / 4):
        with connect(home) as connection:
            connection.execute("UPDATE sessions SET last_seen = ? WHERE id = ?",
                               (now, session_id))
        last_seen = now
    return Session(session_id, accounts.user_from_row(row), row["csrf_token"],
                   row["session_created"], last_seen, row["expires"])


def end(home: Path, session_id: str) -> None:
    """Sign out: the session stops working on every worker at once."""
    with connect(home) as connection:
        connection.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def _start_attempt(home: Path, settings: StewardSettings, name: str, address: str) -> int:
    """Refuse (429) when the account or the address failed too often; otherwise count this
    attempt as a failure until it succeeds, in the same transaction as the check. Returns the
    address row's id (a success removes it, and every failure of the account)."""
    now = time.time()
    since = now - settings.signin_window_seconds
    with connect(home) as connection:
        connection.execute("DELETE FROM signin_failures WHERE at <= ?", (since,))
        for scope, subject, limit in (("account", name, settings.signin_account_failures),
                                      ("address", address, settings.signin_address_failures)):
            wait = _wait(connection, scope, subject, limit, since, settings, now)
            if wait is not None:
                what = f"account {name!r}" if scope == "account" else "your address"
                raise TooManyRequests(
                    f"too many failed sign-ins for {what}: try again in {wait} s", wait,
                    limit=limit, window_seconds=settings.signin_window_seconds,
                    message_code="signin_too_many", params={"wait": wait})
        connection.execute("INSERT INTO signin_failures (scope, subject, at) VALUES "
                           "('account', ?, ?)", (name, now))
        return connection.execute("INSERT INTO signin_failures (scope, subject, at) VALUES "
                                  "('address', ?, ?)", (address, now)).lastrowid


def _wait(connection: sqlite3.Connection, scope: str, subject: str, limit: int, since: float,
          settings: StewardSettings, now: float) -> int | None:
    """Seconds until fewer than `limit` failures remain in the window, or None if already so."""
    times = [row[0] for row in connection.execute(
        "SELECT at FROM signin_failures WHERE scope = ? AND subject = ? AND at > ? ORDER BY at",
        (scope, subject, since))]
    if len(times) < limit:
        return None
    frees_at = times[len(times) - limit] + settings.signin_window_seconds
    return max(1, math.ceil(frees_at - now))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
