"""Accounts, roles and API tokens.

A token reads `taza_<id>_<secret>`: the id finds the row, and only the SHA-256 of the 32-byte
random secret is stored, compared in constant time. A disabled account's tokens stop working.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from catalog.stewards.db import connect
from catalog.store import audit

ROLES = ("steward", "reviewer", "admin")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
ORGANISATION = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
TOKEN = re.compile(r"^taza_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class AccountError(ValueError):
    """A request about accounts that cannot be carried out (bad name, unknown user...)."""


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


def add_user(home: Path, name: str, role: str, organisation: str | None, email: str | None,
             actor: str) -> tuple[User, str]:
    """Create an account and its first token; return both (the token is shown only once)."""
    _check_new_user(name, role, organisation)
    with connect(home) as connection:
        if connection.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError(f"user {name!r} exists already")
        cursor = connection.execute(
            "INSERT INTO users (name, role, organisation, email, created_at) "
            "VALUES (?, ?, ?, ?, ?)", (name, role, organisation, email, audit.now()))
        user = User(cursor.lastrowid, name, role, organisation, email)
        token = _issue_token(connection, user)
        audit.append(connection, actor, "user.add", None, user=name, role=role,
                     organisation=organisation)
    return user, token


def new_token(home: Path, name: str, actor: str, revoke_others: bool = False) -> str:
    """Issue another token for a user (optionally revoking the old ones)."""
    with connect(home) as connection:
        user = _user_by_name(connection, name)
        if revoke_others:
            connection.execute("UPDATE tokens SET revoked = 1 WHERE user_id = ?", (user.id,))
        token = _issue_token(connection, user)
        audit.append(connection, actor, "user.token", None, user=name,
                     revoked_others=revoke_others)
    return token


def disable_user(home: Path, name: str, actor: str) -> None:
    with connect(home) as connection:
        user = _user_by_name(connection, name)
        connection.execute("UPDATE users SET disabled = 1 WHERE id = ?", (user.id,))
        connection.execute("UPDATE tokens SET revoked = 1 WHERE user_id = ?", (user.id,))
        audit.append(connection, actor, "user.disable", None, user=name)


def list_users(home: Path) -> list[User]:
    with connect(home, write=False) as connection:
        return [_user(row) for row in connection.execute("SELECT * FROM users ORDER BY name")]


def authenticate(home: Path, token: str) -> User | None:
    """The active user a token belongs to, or None (unknown, revoked, disabled, malformed)."""
    match = TOKEN.match(token or "")
    if not match:
        return None
    token_id, secret = match.groups()
    with connect(home, write=False) as connection:
        row = connection.execute(
            "SELECT tokens.secret_sha256, users.* FROM tokens JOIN users "
            "ON users.id = tokens.user_id WHERE tokens.id = ? AND tokens.revoked = 0",
            (token_id,)).fetchone()
    # Compare a digest even when the id is unknown, so both cases take the same time.
    stored = row["secret_sha256"] if row else "0" * 64
    matches = hmac.compare_digest(_digest(secret), stored)
    if row is None or not matches or row["disabled"]:
        return None
    return _user(row)


def user_by_id(connection: sqlite3.Connection, user_id: int) -> User:
    return _user(connection.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())


def _check_new_user(name: str, role: str, organisation: str | None) -> None:
    if not NAME.match(name):
        raise AccountError("user names: 2-63 characters, lowercase letters, digits, '.', '_', '-'")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if role == "steward" and not organisation:
        raise AccountError("a steward belongs to an organisation: give --org")
    if organisation and not ORGANISATION.match(organisation):
        raise AccountError("organisation ids: 3-64 characters, lowercase letters, digits, '-'")


def _issue_token(connection: sqlite3.Connection, user: User) -> str:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)  # 32 random bytes, 43 characters
    connection.execute(
        "INSERT INTO tokens (id, user_id, secret_sha256, created_at) VALUES (?, ?, ?, ?)",
        (token_id, user.id, _digest(secret), audit.now()))
    return f"taza_{token_id}_{secret}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user_by_name(connection: sqlite3.Connection, name: str) -> User:
    row = connection.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AccountError(f"no user {name!r}")
    return _user(row)


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["name"], row["role"], row["organisation"], row["email"],
                bool(row["disabled"]))
