"""Unfinished resumable uploads in the database, so the bytes quota counts them on every node.

On the PostgreSQL profile (TAZA_DATABASE_URL) each app node keeps the pieces of the uploads it
receives in its own home (catalog/stewards/resume.py), which no other node reads. So that the
organisation's bytes quota counts every unfinished upload, whichever node holds it, each one is
also a row of `taza_state.unfinished_uploads` (its declared TOTAL, its dataset, the node and
when a piece last arrived): inserted when the upload starts, in the transaction that checks
the quota (under the state writers' lock, so uploads started side by side through two nodes
cannot together pass the quota), touched by each piece, and deleted when the upload finishes,
is abandoned, is replaced by a new upload on its node, or expires (untouched for
TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS: a node that died with an upload leaves a row that stops
counting then, and any node's sweep deletes it).

The table is step 2 of catalog/stewards/db_postgresql.py. The embedded profile keeps only its
files: one home, `resume.unfinished_bytes` reads them.
"""

from __future__ import annotations

import time
from pathlib import Path

from catalog import settings
from catalog.stewards.db import connect


def in_database() -> bool:
    """Whether unfinished uploads are rows (the PostgreSQL profile) or only files."""
    return bool(settings.database_url())


def record(connection, upload_id: str, dataset_id: str, total: int) -> None:
    """The new upload's row, in the caller's unit of work (the one that checked the quota)."""
    connection.execute(
        "INSERT INTO unfinished_uploads (upload_id, dataset_id, node, total, touched) "
        "VALUES (?, ?, ?, ?, ?)",
        (upload_id, dataset_id, settings.node_name(), total, time.time()))


def drop(connection, upload_id: str) -> None:
    connection.execute("DELETE FROM unfinished_uploads WHERE upload_id = ?", (upload_id,))


def held_bytes(connection, organisation: str, excluding: str | None, oldest: float) -> int:
    """The declared sizes of the organisation's unfinished uploads touched since `oldest`,
    on every node, but those of the dataset `excluding` (its new upload replaces them)."""
    row = connection.execute(
        "SELECT CAST(COALESCE(SUM(unfinished_uploads.total), 0) AS BIGINT) "
        "FROM unfinished_uploads JOIN datasets ON datasets.id = unfinished_uploads.dataset_id "
        "WHERE datasets.organisation = ? AND unfinished_uploads.dataset_id <> ? "
        "AND unfinished_uploads.touched >= ?",
        (organisation, excluding or "", oldest)).fetchone()
    return int(row[0])


def touch(home: Path, upload_id: str) -> None:
    """A piece arrived: the row counts for another maximum age."""
    if in_database():
        with connect(home) as connection:
            connection.execute("UPDATE unfinished_uploads SET touched = ? WHERE upload_id = ?",
                               (time.time(), upload_id))


def forget(home: Path, upload_id: str | None) -> None:
    """The upload finished, was abandoned or removed: its row goes."""
    if upload_id and in_database():
        with connect(home) as connection:
            drop(connection, upload_id)


def expire(home: Path, oldest: float) -> int:
    """Delete the rows untouched since `oldest` (whatever node held them); how many went."""
    if not in_database():
        return 0
    with connect(home) as connection:
        return connection.execute("DELETE FROM unfinished_uploads WHERE touched < ?",
                                  (oldest,)).rowcount
