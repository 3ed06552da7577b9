"""Who may do what: roles, organisations and the datasets they own.

- anonymous: what is published (live datasets, their versions and files), nothing else;
- steward: edits, submits, publishes, rolls back and withdraws its organisation's datasets;
- reviewer: reads and approves or rejects drafts (never its own) of its organisation, or of
  every organisation when it has none; may publish, roll back and withdraw them too;
- admin: everything, and the audit log. Datasets no organisation owns (published with the
  `taza` command) are the admins'.
"""

from __future__ import annotations

import sqlite3

from catalog.stewards.accounts import User
from catalog.stewards.errors import Forbidden, Unauthenticated

EDITORS = ("steward", "admin")
REVIEWERS = ("reviewer", "admin")


def owner(connection: sqlite3.Connection, dataset_id: str) -> str | None:
    row = connection.execute("SELECT organisation FROM datasets WHERE id = ?",
                             (dataset_id,)).fetchone()
    return row["organisation"] if row else None


def in_scope(user: User | None, organisation: str | None) -> bool:
    if user is None:
        return False
    if user.is_admin:
        return True
    if organisation is None:
        return False
    if user.role == "reviewer" and user.organisation is None:
        return True
    return user.organisation == organisation


def require_user(user: User | None) -> User:
    if user is None:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    return user


def require_scope(user: User | None, organisation: str | None, dataset_id: str) -> User:
    user = require_user(user)
    if not in_scope(user, organisation):
        whose = f"organisation {organisation!r}" if organisation else "the catalog admins"
        raise Forbidden(f"{dataset_id} belongs to {whose}; {user.name} "
                        f"({user.role}, {user.organisation or 'no organisation'}) cannot act on it")
    return user


def require_role(user: User, roles: tuple[str, ...], action: str) -> None:
    if user.role not in roles:
        raise Forbidden(f"{action} needs the role {' or '.join(roles)}; {user.name} is a "
                        f"{user.role}")
