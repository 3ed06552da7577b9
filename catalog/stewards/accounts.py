"""Accounts, roles, passwords, one-time password links and API tokens.

- Passwords are stored as argon2id hashes (argon2-cffi's PasswordHasher, its RFC 9106 profile).
- A one-time link carries `<id>_<secret>` in the URL fragment (browsers never send fragments,
  so it reaches no server log); it sets the password once and expires.
- A token reads `taza_<id>_<secret>`: the id finds the row, and only the SHA-256 of the 32-byte
  random secret is stored, compared in constant time. Tokens expire (TAZA_TOKEN_LIFETIME_DAYS)
  and can be revoked; a disabled account's tokens, sessions and links stop working.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from catalog.stewards.config import StewardSettings
from catalog.stewards.db import connect
from catalog.stewards.errors import BadRequest, Forbidden, NotFound, Unauthenticated
from catalog.store import audit

ROLES = ("steward", "reviewer", "admin")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
ORGANISATION = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
TOKEN = re.compile(r"^taza_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
LINK_CODE = re.compile(r"^([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
TOKEN_ID = re.compile(r"^[0-9a-f]{16}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
MAX_LABEL = 100
HASHER = PasswordHasher()  # argon2id, 64 MiB, 3 passes, 4 lanes


class AccountError(ValueError):
    """A request about accounts that cannot be carried out (bad name, unknown user...).

    `str(err)` is the English message; `code` and `params` name the same refusal for the
    command line, which says `error.<code>` of catalog/stewards/cli_texts.yml in the
    operator's language."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    organisation: str | None
    email: str | None = None
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def as_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "organisation": self.organisation,
                "email": self.email, "disabled": self.disabled}


# -- accounts ------------------------------------------------------------------------------

def add_user(home: Path, name: str, role: str, organisation: str | None, email: str | None,
             actor: str, password: str | None = None,
             settings: StewardSettings | None = None) -> tuple[User, str | None]:
    """Create an account with a password, or without one and a one-time link to set it.

    Returns the user and the link's code (None when a password was given)."""
    _check_new_user(name, role, organisation)
    if password is not None:
        check_password(password)
    with connect(home) as connection:
        if connection.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError(f"user {name!r} exists already", code="user_exists",
                               params={"name": name})
        cursor = connection.execute(
            "INSERT INTO users (name, role, organisation, email, created_at, password_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)", (name, role, organisation, email, audit.now(),
                                          HASHER.hash(password) if password else None))
        user = User(cursor.lastrowid, name, role, organisation, email)
        audit.append(connection, actor, "user.add", None, user=name, role=role,
                     organisation=organisation, password_set=password is not None)
        code = None
        if password is None:
            code = _issue_link(connection, user, settings or StewardSettings.from_environment())
            audit.append(connection, actor, "user.password_link", None, user=name)
    return user, code


def disable_user(home: Path, name: str, actor: str) -> None:
    """Disable an account: its tokens are revoked, its sessions and unused links end."""
    with connect(home) as connection:
        user = _user_by_name(connection, name)
        connection.execute("UPDATE users SET disabled = 1 WHERE id = ?", (user.id,))
        connection.execute("UPDATE tokens SET revoked = 1 WHERE user_id = ?", (user.id,))
        connection.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
        connection.execute("UPDATE password_links SET used = ? WHERE user_id = ? AND used IS NULL",
                           (time.time(), user.id))
        audit.append(connection, actor, "user.disable", None, user=name)


def list_users(home: Path) -> list[User]:
    with connect(home, write=False) as connection:
        return [_user(row) for row in connection.execute("SELECT * FROM users ORDER BY name")]


def user_by_id(connection: sqlite3.Connection, user_id: int) -> User:
    return _user(connection.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())


# -- passwords and one-time links ------------------------------------------------------------

def check_password(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                         message_code="password_length",
                         params={"min": MIN_PASSWORD, "max": MAX_PASSWORD})
    if password.strip() != password or "\x00" in password:
        raise BadRequest("a password neither starts nor ends with spaces",
                         message_code="password_spaces")
    return password


def set_password(home: Path, name: str, password: str, actor: str) -> None:
    """Set a password from the command line; the account's sessions end."""
    check_password(password)
    with connect(home) as connection:
        user = _user_by_name(connection, name)
        _store_password(connection, user, password)
        audit.append(connection, actor, "user.password", None, user=name, via="cli")


def new_password_link(home: Path, name: str, actor: str,
                      settings: StewardSettings | None = None) -> str:
    """A fresh one-time link code for an account (its earlier unused links stop working)."""
    with connect(home) as connection:
        user = _user_by_name(connection, name)
        if user.disabled:
            raise AccountError(f"{name} is disabled", code="user_disabled", params={"name": name})
        connection.execute("UPDATE password_links SET used = ? WHERE user_id = ? AND used IS NULL",
                           (time.time(), user.id))
        code = _issue_link(connection, user, settings or StewardSettings.from_environment())
        audit.append(connection, actor, "user.password_link", None, user=name)
    return code


def use_password_link(home: Path, code: object, password: object) -> User:
    """Set the password of the link's account; the link works once, before it expires."""
    match = LINK_CODE.match(code) if isinstance(code, str) else None
    check_password(password)
    refused = BadRequest("this password link is not valid: it is unknown, used or expired; "
                         "ask an administrator for a new one (taza users link NAME)",
                         message_code="password_link_invalid")
    if match is None:
        raise refused
    link_id, secret = match.groups()
    with connect(home) as connection:
        row = connection.execute(
            "SELECT password_links.secret_sha256, password_links.used, password_links.expires, "
            "users.* FROM password_links JOIN users ON users.id = password_links.user_id "
            "WHERE password_links.id = ?", (link_id,)).fetchone()
        matches = hmac.compare_digest(_digest(secret), row["secret_sha256"] if row else "0" * 64)
        if (row is None or not matches or row["used"] is not None or row["disabled"]
                or row["expires"] < time.time()):
            raise refused
        user = _user(row)
        connection.execute("UPDATE password_links SET used = ? WHERE id = ?",
                           (time.time(), link_id))
        _store_password(connection, user, password)
        audit.append(connection, user.name, "user.password", None, user=user.name, via="link")
    return user


def verify_password(home: Path, name: object, password: object) -> User | None:
    """The active account with that name and password, or None."""
    if not isinstance(name, str) or not isinstance(password, str) or \
            len(password) > MAX_PASSWORD or len(name) > 64:
        return None
    with connect(home, write=False) as connection:
        row = connection.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    stored = row["password_hash"] if row and row["password_hash"] else _dummy_hash()
    try:
        HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["password_hash"] is None or row["disabled"]:
        return None
    if HASHER.check_needs_rehash(stored):  # the library's parameters grew since it was set
        with connect(home) as connection:
            connection.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                               (HASHER.hash(password), row["id"]))
    return _user(row)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name costs as long as a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(16))


def _issue_link(connection: sqlite3.Connection, user: User, settings: StewardSettings) -> str:
    link_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    now = time.time()
    connection.execute(
        "INSERT INTO password_links (id, user_id, secret_sha256, created, expires) "
        "VALUES (?, ?, ?, ?, ?)",
        (link_id, user.id, _digest(secret), now, now + settings.password_link_hours * 3600))
    return f"{link_id}_{secret}"


def _store_password(connection: sqlite3.Connection, user: User, password: str) -> None:
    connection.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                       (HASHER.hash(password), user.id))
    connection.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))


# -- tokens --------------------------------------------------------------------------------

def new_token(home: Path, name: str, actor: str, revoke_others: bool = False,
              lifetime_days: float | None = None, label: str | None = None) -> tuple[str, str]:
    """Issue another token for a user (optionally revoking the old ones): (token, expires_at)."""
    with connect(home) as connection:
        user = _user_by_name(connection, name)
        if user.disabled:
            raise AccountError(f"{name} is disabled", code="user_disabled", params={"name": name})
        if revoke_others:
            connection.execute("UPDATE tokens SET revoked = 1 WHERE user_id = ?", (user.id,))
        token, expires = _issue_token(connection, user, _lifetime(lifetime_days), label)
        audit.append(connection, actor, "user.token", None, user=name,
                     revoked_others=revoke_others, expires_at=expires, label=label)
    return token, expires


def create_token(home: Path, user: User, label: object = None,
                 lifetime_days: object = None) -> dict:
    """A token for the signed-in user (through the API); shown once in the answer."""
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
        raise BadRequest(f"label: a text of at most {MAX_LABEL} characters",
                         message_code="token_label_too_long", params={"max": MAX_LABEL})
    default = StewardSettings.from_environment().token_lifetime_days
    if lifetime_days is not None and (isinstance(lifetime_days, bool) or not isinstance(
            lifetime_days, int | float) or not 0 < lifetime_days <= default):
        raise BadRequest(f"lifetime_days: a number of days above 0, at most {default:g}",
                         message_code="token_lifetime_invalid", params={"max": default})
    with connect(home) as connection:
        token, expires = _issue_token(connection, user, _lifetime(lifetime_days), label)
        audit.append(connection, user.name, "user.token", None, user=user.name,
                     expires_at=expires, label=label, via="api")
    return {"id": token.split("_")[1], "token": token, "expires_at": expires, "label": label}


def list_tokens(home: Path, user: User) -> list[dict]:
    """A user's tokens, newest first (never their secrets)."""
    with connect(home, write=False) as connection:
        rows = connection.execute(
            "SELECT * FROM tokens WHERE user_id = ? ORDER BY created_at DESC", (user.id,))
        return [_token_view(row, user.name) for row in rows]


def revoke_token(home: Path, actor: User, token_id: str) -> dict:
    """Revoke a token: its owner or an admin may."""
    if not TOKEN_ID.match(token_id):
        raise NotFound(f"no token {token_id!r}",
                       message_code="token_not_found", params={"token": str(token_id)[:64]})
    with connect(home) as connection:
        row = connection.execute("SELECT tokens.*, users.name FROM tokens JOIN users "
                                 "ON users.id = tokens.user_id WHERE tokens.id = ?",
                                 (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"no token {token_id!r}",
                           message_code="token_not_found", params={"token": str(token_id)[:64]})
        if row["user_id"] != actor.id and not actor.is_admin:
            raise Forbidden(f"token {token_id} belongs to another account: only its owner "
                            "or an admin revokes it",
                            message_code="token_not_yours", params={"token": token_id})
        connection.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))
        audit.append(connection, actor.name, "token.revoke", None, user=row["name"],
                     token=token_id)
        row = connection.execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone()
    return _token_view(row, None)


def authenticate(home: Path, token: str) -> User:
    """The active user a token belongs to; 401 naming why otherwise."""
    match = TOKEN.match(token or "")
    if not match:
        raise Unauthenticated("the token is not valid (use 'Authorization: Bearer "
                              "taza_<id>_<secret>')", message_code="token_malformed")
    token_id, secret = match.groups()
    with connect(home, write=False) as connection:
        row = connection.execute(
            "SELECT tokens.secret_sha256, tokens.expires_at, users.* FROM tokens JOIN users "
            "ON users.id = tokens.user_id WHERE tokens.id = ? AND tokens.revoked = 0",
            (token_id,)).fetchone()
    # Compare a digest even when the id is unknown, so both cases take the same time.
    stored = row["secret_sha256"] if row else "0" * 64
    matches = hmac.compare_digest(_digest(secret), stored)
    if row is None or not matches or row["disabled"]:
        raise Unauthenticated("the token is not valid (unknown, revoked, or the account is "
                              "disabled)", message_code="token_invalid")
    if _expired(row["expires_at"]):
        raise Unauthenticated(f"the token expired at {row['expires_at']}: ask for a new one "
                              "(POST /api/tokens when signed in, or taza users token)",
                              message_code="token_expired", params={"expires": row["expires_at"]})
    return _user(row)


def user_from_row(row: sqlite3.Row) -> User:
    return _user(row)


def _issue_token(connection: sqlite3.Connection, user: User, lifetime_seconds: float,
                 label: str | None) -> tuple[str, str]:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)  # 32 random bytes, 43 characters
    expires = _iso(time.time() + lifetime_seconds)
    connection.execute(
        "INSERT INTO tokens (id, user_id, secret_sha256, created_at, expires_at, label) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (token_id, user.id, _digest(secret), audit.now(), expires, label))
    return f"taza_{token_id}_{secret}", expires


def _token_view(row: sqlite3.Row, user_name: str | None) -> dict:
    view = {"id": row["id"], "label": row["label"], "created_at": row["created_at"],
            "expires_at": row["expires_at"], "revoked": bool(row["revoked"]),
            "expired": _expired(row["expires_at"])}
    if user_name is not None:
        view["user"] = user_name
    return view


def _lifetime(days: float | None) -> float:
    settings = StewardSettings.from_environment()
    return settings.token_lifetime_seconds if days is None else days * 86_400


def _expired(expires_at: str | None) -> bool:
    return expires_at is None or dt.datetime.fromisoformat(expires_at) <= dt.datetime.now(dt.UTC)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


# -- helpers -------------------------------------------------------------------------------

def _check_new_user(name: str, role: str, organisation: str | None) -> None:
    if not NAME.match(name):
        raise AccountError("user names: 2-63 characters, lowercase letters, digits, '.', '_', '-'",
                           code="name_invalid")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", code="role_invalid",
                           params={"roles": ", ".join(ROLES)})
    if role == "steward" and not organisation:
        raise AccountError("a steward belongs to an organisation: give --org",
                           code="organisation_required")
    if organisation and not ORGANISATION.match(organisation):
        raise AccountError("organisation ids: 3-64 characters, lowercase letters, digits, '-'",
                           code="organisation_invalid")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user_by_name(connection: sqlite3.Connection, name: str) -> User:
    row = connection.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AccountError(f"no user {name!r}", code="user_unknown", params={"name": name})
    return _user(row)


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["name"], row["role"], row["organisation"], row["email"],
                bool(row["disabled"]))
