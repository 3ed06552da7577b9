"""The append-only audit log: who did what, when, to which dataset.

Each entry carries the SHA-256 of the previous entry and of itself (a hash chain), so an
entry edited, removed or reordered behind the service's back shows up in `verify`. The code
only ever INSERTs into the table, and SQLite triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from catalog.stewards.db import connect

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason}


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def append(connection: sqlite3.Connection, actor: str, action: str,
           dataset_id: str | None = None, **detail) -> int:
    """Add an entry inside the caller's write transaction (so it commits with the change)."""
    last = connection.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
    entry = {"seq": seq, "at": now(), "actor": actor, "action": action,
             "dataset_id": dataset_id, "detail": detail}
    connection.execute(
        "INSERT INTO audit (seq, at, actor, action, dataset_id, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, entry["at"], actor, action, dataset_id, _canonical(detail), prev_hash,
         _entry_hash(prev_hash, entry)),
    )
    return seq


def record(home: Path, actor: str, action: str, dataset_id: str | None = None,
           **detail) -> int:
    """Append one entry in its own transaction."""
    with connect(home) as connection:
        return append(connection, actor, action, dataset_id, **detail)


def entries(home: Path, after: int = 0, limit: int = 100, dataset_id: str | None = None,
            actor: str | None = None) -> list[dict]:
    """Entries with seq > after, oldest first, optionally for one dataset or actor."""
    clauses, params = ["seq > ?"], [after]
    if dataset_id is not None:
        clauses.append("dataset_id = ?")
        params.append(dataset_id)
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor)
    params.append(limit)
    sql = ("SELECT * FROM audit WHERE " + " AND ".join(clauses)  # noqa: S608 (fixed clauses)
           + " ORDER BY seq LIMIT ?")
    with connect(home, write=False) as connection:
        return [_as_dict(row) for row in connection.execute(sql, params)]


def verify(home: Path) -> ChainCheck:
    """Walk the chain from the first entry: every link and every entry hash must match."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    with connect(home, write=False) as connection:
        for row in connection.execute("SELECT * FROM audit ORDER BY seq"):
            count += 1
            entry = _as_dict(row)
            if row["seq"] != expected_seq:
                return ChainCheck(False, count, row["seq"],
                                  f"entry {expected_seq} is missing")
            if row["prev_hash"] != prev_hash:
                return ChainCheck(False, count, row["seq"], "does not follow the entry before")
            if _entry_hash(prev_hash, entry) != row["hash"]:
                return ChainCheck(False, count, row["seq"], "content does not match its hash")
            prev_hash, expected_seq = row["hash"], expected_seq + 1
    return ChainCheck(True, count)


def _as_dict(row: sqlite3.Row) -> dict:
    return {"seq": row["seq"], "at": row["at"], "actor": row["actor"], "action": row["action"],
            "dataset_id": row["dataset_id"], "detail": json.loads(row["detail"]),
            "prev_hash": row["prev_hash"], "hash": row["hash"]}


def _entry_hash(prev_hash: str, entry: dict) -> str:
    fields = {key: entry[key] for key in ("seq", "at", "actor", "action", "dataset_id", "detail")}
    return hashlib.sha256(f"{prev_hash}\n{_canonical(fields)}".encode()).hexdigest()


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
