"""Who may do what: roles, organisations and the datasets they own.

- anonymous: what is published (live datasets, their versions and files), nothing else;
- steward: edits, submits, publishes, rolls back and withdraws its organisation's datasets;
- reviewer: reads and approves or rejects drafts (never its own) of its organisation, or of
  every organisation when it has none; may publish, roll back and withdraw them too;
- admin: everything, and the audit log. Datasets no organisation owns (published with the
  `taza` command) are the admins'.

Every API route declares a `Policy`; `authorise` applies it before the route reads its body or
looks anything up: first the account (401), then the role (403), then the organisation that
owns the dataset in the URL (403; 404 only for a signed-in user and a dataset that does not
exist). Public things are live datasets and their live version: anonymous requests for
anything else get 401, whether it exists or not.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from catalog.manifest import DATASET_ID
from catalog.stewards.accounts import ROLES, User
from catalog.stewards.db import connect
from catalog.stewards.errors import BadRequest, Forbidden, NotFound, Unauthenticated
from catalog.store import CatalogStore

EDITORS = ("steward", "admin")
REVIEWERS = ("reviewer", "admin")
SIGN_IN = "sign in on /stewards, or send 'Authorization: Bearer <token>'"


@dataclass(frozen=True)
class Policy:
    """What a route needs before it does anything."""

    action: str                             # named in refusals: "uploading a source"
    account: bool = True                    # False: anonymous may call it
    roles: tuple[str, ...] = ROLES          # roles allowed
    dataset: bool = False                   # scoped to the organisation of <dataset_id>
    public: str | None = None               # "live": anonymous reads a live dataset;
    #                                         "live-version": only its live version


PUBLIC = Policy("reading the catalog", account=False)
ACCOUNT = Policy("this request")


def authorise(home: Path, store: CatalogStore, policy: Policy, user: User | None,
              dataset_id: str | None = None, version: int | None = None) -> User | None:
    """Apply a route's policy; return the user (None only where anonymous calls are allowed)."""
    if policy.public and _is_public(store, policy.public, dataset_id, version):
        return user
    if not policy.account and not policy.dataset:
        return user
    user = require_user(user)
    require_role(user, policy.roles, policy.action)
    if policy.dataset:
        require_dataset_scope(home, store, user, dataset_id)
    return user


def require_dataset_scope(home: Path, store: CatalogStore, user: User, dataset_id: str) -> None:
    if not isinstance(dataset_id, str) or not DATASET_ID.match(dataset_id):
        raise BadRequest("dataset ids: 3-64 characters, lowercase letters, digits and '-'",
                         message_code="dataset_id_invalid")
    with connect(home, write=False) as connection:
        organisation = owner(connection, dataset_id)
    if organisation is None and not store.versions(dataset_id):
        raise NotFound(f"no dataset {dataset_id!r}",
                       message_code="dataset_not_found", params={"id": dataset_id})
    require_scope(user, organisation, dataset_id)


def _is_public(store: CatalogStore, kind: str, dataset_id: str | None,
               version: int | None) -> bool:
    release = store.current()
    live = release.datasets.get(dataset_id) if release and dataset_id else None
    if live is None:
        return False
    return kind == "live" or version == live


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
        raise Unauthenticated(f"authentication required: {SIGN_IN}",
                              message_code="sign_in_required")
    return user


def require_scope(user: User | None, organisation: str | None, dataset_id: str) -> User:
    user = require_user(user)
    if not in_scope(user, organisation):
        whose = f"organisation {organisation!r}" if organisation else "the catalog admins"
        raise Forbidden(f"{dataset_id} belongs to {whose}; {user.name} "
                        f"({user.role}, {user.organisation or 'no organisation'}) cannot act on it",
                        message_code="dataset_not_yours",
                        params={"id": dataset_id, "user": user.name})
    return user


def require_role(user: User, roles: tuple[str, ...], action: str) -> None:
    if user.role not in roles:
        raise Forbidden(f"{action} needs the role {' or '.join(roles)}; {user.name} is a "
                        f"{user.role}", message_code="role_required", params={"user": user.name})
