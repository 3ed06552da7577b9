"""Release records in PostgreSQL (TAZA_DATABASE_URL): the tables `taza_state.releases` (one row
per release, its state as JSON text) and `taza_state.live_release` (one row: the live release).

A switch inserts the new release and moves the pointer in one transaction, under the state
writers' lock, after checking that the live release is still the one the new release replaces:
readers see the old release or the new one, never a pointer to a missing record. Every worker
of every node reads the pointer once a second (catalog/store/watch.py), so a release made on
one node is served by all within about a second.

A home published before the database was configured keeps its records as files until they are
copied: until the database has a live release, reads fall back to the home's files, and the
first switch (or `taza migrate`) copies them in, in the same transaction, so the chain of
releases and the audit anchors they carry stay whole.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg

from catalog.postgis import database
from catalog.store import state_postgresql
from catalog.store.release_records import RecordsUnavailable, ReleaseMissing, ReleaseRecords

STEP_1 = """
CREATE TABLE releases (
    number INTEGER PRIMARY KEY CHECK (number > 0),
    state TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE live_release (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    release INTEGER NOT NULL REFERENCES releases (number),
    switched_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""
MIGRATIONS = (("releases", (STEP_1,)),)
# The live release and its state in one statement (a read on every request's watch).
LIVE_STATE = ("SELECT r.number, r.state FROM taza_state.live_release l "
              "JOIN taza_state.releases r ON r.number = l.release")


class PostgresReleaseRecords:
    def __init__(self, url: str, home: Path, files: ReleaseRecords):
        self.url, self.home, self.files = url, Path(home), files

    def live(self) -> int | None:
        with self._unit(write=False) as unit:
            live = _live(unit)
        return live if live is not None else self.files.live()

    def read(self, number: int) -> dict:
        with self._unit(write=False) as unit:
            row = unit.execute("SELECT state FROM releases WHERE number = ?",
                               (number,)).fetchone()
            adopted = row is not None or _live(unit) is not None
        if row is not None:
            return json.loads(row[0])
        if adopted:
            raise ReleaseMissing(f"no release {number} in the database")
        return self.files.read(number)

    def live_state(self) -> tuple[int, dict] | None:
        """One statement: the pointer joined to its release's row (the foreign key keeps the
        row there while the pointer names it). Before the database has a live release, the
        home's files."""
        try:
            row = state_postgresql.query_one(self.url, self.home, LIVE_STATE, MIGRATIONS)
        except (database.DatabaseError, psycopg.OperationalError) as err:
            raise RecordsUnavailable(f"the release records cannot be read: {err}") from err
        if row is not None:
            return row[0], json.loads(row[1])
        return self.files.live_state()

    def numbers(self) -> list[int]:
        with self._unit(write=False) as unit:
            if _live(unit) is None:
                return self.files.numbers()
            return [row[0] for row in unit.execute("SELECT number FROM releases ORDER BY number")]

    def prepare(self, folder: Path, state: dict) -> None:
        """Nothing: the record goes to the database when the release goes live."""

    def go_live(self, number: int, state: dict) -> None:
        with self._unit(write=True) as unit:
            live = _live(unit)
            if live is None:
                _copy_records(unit, self.files)
                live = _live(unit)
            if live != state.get("previous"):
                raise RuntimeError(f"release {live} went live while release {number} was being "
                                   f"made on top of {state.get('previous')}")
            unit.execute("INSERT INTO releases (number, state) VALUES (?, ?)",
                         (number, json.dumps(state)))
            _point_to(unit, number)

    def rewrite(self, number: int, state: dict) -> None:
        with self._unit(write=True) as unit:
            if _live(unit) is None:
                self.files.rewrite(number, state)
                return
            unit.execute("UPDATE releases SET state = ? WHERE number = ?",
                         (json.dumps(state), number))

    def where(self, number: int) -> str:
        return f"release {number} in the database"

    def copy_from(self, source: ReleaseRecords) -> int:
        """Copy the source's records (taza migrate; releases already here are kept) and point
        to its live release. Returns how many were copied."""
        with self._unit(write=True) as unit:
            copied = _copy_records(unit, source)
            live = source.live()
            if live is not None:
                _point_to(unit, live)
            return copied

    def in_database(self) -> tuple[int | None, dict[int, dict]]:
        """The live release and every release as the database holds them (no fallback)."""
        with self._unit(write=False) as unit:
            rows = unit.execute("SELECT number, state FROM releases ORDER BY number")
            return _live(unit), {row[0]: json.loads(row[1]) for row in rows}

    @contextlib.contextmanager
    def _unit(self, write: bool) -> Iterator[state_postgresql.StateConnection]:
        try:
            with state_postgresql.connect(self.url, self.home, write, MIGRATIONS) as unit:
                yield unit
        except (database.DatabaseError, psycopg.OperationalError) as err:
            raise RecordsUnavailable(f"the release records cannot be read: {err}") from err


def _live(unit: state_postgresql.StateConnection) -> int | None:
    row = unit.execute("SELECT release FROM live_release").fetchone()
    return row[0] if row else None


def _point_to(unit: state_postgresql.StateConnection, number: int) -> None:
    unit.execute("INSERT INTO live_release (singleton, release) VALUES (TRUE, ?) "
                 "ON CONFLICT (singleton) DO UPDATE SET release = EXCLUDED.release, "
                 "switched_at = now()", (number,))


def _copy_records(unit: state_postgresql.StateConnection, source: ReleaseRecords) -> int:
    copied = 0
    for number in source.numbers():
        inserted = unit.execute("INSERT INTO releases (number, state) VALUES (?, ?) "
                                "ON CONFLICT (number) DO NOTHING RETURNING number",
                                (number, json.dumps(source.read(number)))).fetchone()
        copied += inserted is not None
    live = source.live()
    if live is not None and _live(unit) is None:
        _point_to(unit, live)
    return copied
