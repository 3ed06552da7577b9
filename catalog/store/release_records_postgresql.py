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

from catalog.core.record import RECORD_FILE
from catalog.postgis import database
from catalog.store import state_postgresql
from catalog.store.assets import OBJECTS_FILE
from catalog.store.release_records import (
    RecordsUnavailable,
    ReleaseMissing,
    ReleaseRecords,
    StacDocument,
)

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
# Issue 13: what nodes that share no home need besides the records: each version's record.json
# and objects.json (written when the version is committed, before any release names it, and
# never changed after, except that a purge empties them), and each release's static STAC tree
# (written in the transaction that makes the release live); and where in the bucket the current
# copy of each draft's files is (catalog/store/draft_objects.py).
STEP_2 = """
CREATE TABLE versions (
    dataset TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    record TEXT,
    objects TEXT,
    purged BOOLEAN NOT NULL DEFAULT FALSE,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, version)
);
CREATE TABLE release_stac (
    release INTEGER NOT NULL REFERENCES releases (number),
    path TEXT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (release, path)
);
CREATE TABLE draft_files (
    draft_id INTEGER PRIMARY KEY,
    generation TEXT NOT NULL,
    files TEXT NOT NULL,
    previous TEXT
);
"""
# When each static STAC document was written: the file's time for a tree copied from a
# release's folder (as the embedded profile serves it), the time of the change for a purge.
# Rows of an earlier schema get the time of this step.
STEP_3 = """
ALTER TABLE release_stac ADD COLUMN modified_at TIMESTAMPTZ NOT NULL DEFAULT now();
"""
MIGRATIONS = (("releases", (STEP_1, STEP_2, STEP_3)),)
# The live release and its state in one statement (a read on every request's watch).
LIVE_STATE = ("SELECT r.number, r.state FROM taza_state.live_release l "
              "JOIN taza_state.releases r ON r.number = l.release")
STAC_FOLDER = "stac"


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
            _insert_stac(unit, number, self.home / "releases" / str(number) / STAC_FOLDER)
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

    # -- versions (record.json, objects.json) -----------------------------------------------

    def add_version(self, dataset_id: str, version: int, folder: Path) -> None:
        """Record a committed version's record.json (and objects.json, if its files are in a
        bucket) before the version can be named by any release; a version is never changed."""
        record = (folder / RECORD_FILE).read_text(encoding="utf-8")
        objects_path = folder / OBJECTS_FILE
        objects = objects_path.read_text() if objects_path.exists() else None
        with self._unit(write=True) as unit:
            unit.execute("INSERT INTO versions (dataset, version, record, objects) "
                         "VALUES (?, ?, ?, ?)", (dataset_id, version, record, objects))

    def version(self, dataset_id: str, version: int) -> tuple[dict, dict | None] | None:
        """(record, objects) of a version recorded here; None if it is not (or was purged)."""
        with self._unit(write=False) as unit:
            row = unit.execute("SELECT record, objects FROM versions WHERE dataset = ? AND "
                               "version = ? AND NOT purged", (dataset_id, version)).fetchone()
        if row is None or row[0] is None:
            return None
        return json.loads(row[0]), (json.loads(row[1]) if row[1] else None)

    def version_numbers(self, dataset_id: str) -> tuple[set[int], set[int]]:
        """(versions recorded here, versions purged) of a dataset."""
        with self._unit(write=False) as unit:
            rows = unit.execute("SELECT version, purged FROM versions WHERE dataset = ?",
                                (dataset_id,)).fetchall()
        return {r[0] for r in rows if not r[1]}, {r[0] for r in rows if r[1]}

    def version_datasets(self) -> list[str]:
        with self._unit(write=False) as unit:
            return [r[0] for r in unit.execute(
                "SELECT DISTINCT dataset FROM versions WHERE NOT purged ORDER BY dataset")]

    def remove_version(self, dataset_id: str, version: int) -> None:
        """Forget a version no release ever named (debris of a killed publish): its number
        is free again, as its folder's is in the embedded profile."""
        with self._unit(write=True) as unit:
            unit.execute("DELETE FROM versions WHERE dataset = ? AND version = ? AND NOT purged",
                         (dataset_id, version))

    def mark_purged(self, dataset_id: str, version: int) -> None:
        """A purge: the version's number stays taken, its record is gone (the objects' prefix
        stays, to say where a purge left objects if it was interrupted)."""
        with self._unit(write=True) as unit:
            unit.execute("INSERT INTO versions (dataset, version, purged) VALUES (?, ?, TRUE) "
                         "ON CONFLICT (dataset, version) DO UPDATE SET purged = TRUE, "
                         "record = NULL", (dataset_id, version))

    def copy_versions(self, folders: list[Path]) -> int:
        """Copy version folders' records in (taza migrate); versions already here are kept,
        except that one sent to the bucket since gets its objects.json. Returns how many
        were copied or completed."""
        copied = 0
        with self._unit(write=True) as unit:
            for folder in folders:
                objects_path = folder / OBJECTS_FILE
                inserted = unit.execute(
                    "INSERT INTO versions (dataset, version, record, objects) VALUES "
                    "(?, ?, ?, ?) ON CONFLICT (dataset, version) DO UPDATE SET objects = "
                    "EXCLUDED.objects WHERE versions.objects IS NULL AND EXCLUDED.objects IS "
                    "NOT NULL AND NOT versions.purged RETURNING version",
                    (folder.parent.name, int(folder.name),
                     (folder / RECORD_FILE).read_text(encoding="utf-8"),
                     objects_path.read_text() if objects_path.exists() else None)).fetchone()
                copied += inserted is not None
        return copied

    def versions_in_database(self) -> dict[tuple[str, int], tuple[str | None, str | None]]:
        """Every version row as (record, objects) texts, for `taza migrate --verify`."""
        with self._unit(write=False) as unit:
            return {(r[0], r[1]): (r[2], r[3]) for r in unit.execute(
                "SELECT dataset, version, record, objects FROM versions WHERE NOT purged")}

    # -- static STAC trees ----------------------------------------------------------------

    def stac_file(self, number: int, path: str) -> StacDocument | None:
        """One document of release `number`'s static STAC tree (path relative to it), or
        None when the database holds no tree for that release (one made before the database
        was configured: its folder in the home has it)."""
        with self._unit(write=False) as unit:
            row = unit.execute("SELECT body, modified_at FROM release_stac WHERE release = ? "
                               "AND path = ?", (number, path)).fetchone()
            if row is not None:
                return StacDocument(bytes(row[0]), row[1])
            held = unit.execute("SELECT 1 FROM release_stac WHERE release = ? LIMIT 1",
                                (number,)).fetchone()
        if held is not None:
            raise FileNotFoundError(f"release {number} has no STAC document {path}")
        return None

    def stac_paths(self, number: int) -> list[str] | None:
        """The paths of release `number`'s tree here; None when the database holds none."""
        with self._unit(write=False) as unit:
            paths = [row[0] for row in unit.execute(
                "SELECT path FROM release_stac WHERE release = ? ORDER BY path", (number,))]
        return paths or None

    def copy_stac(self, number: int, folder: Path) -> bool:
        """Copy a release's static STAC tree in (taza migrate) unless the database holds one."""
        if not folder.is_dir():
            return False
        with self._unit(write=True) as unit:
            if unit.execute("SELECT 1 FROM release_stac WHERE release = ? LIMIT 1",
                            (number,)).fetchone() is not None:
                return False
            _insert_stac(unit, number, folder)
        return True

    def stac_trees(self) -> dict[int, dict[str, bytes]]:
        """Every release's tree as the database holds it, for `taza migrate --verify`."""
        trees: dict[int, dict[str, bytes]] = {}
        with self._unit(write=False) as unit:
            for row in unit.execute("SELECT release, path, body FROM release_stac"):
                trees.setdefault(row[0], {})[row[1]] = bytes(row[2])
        return trees

    def purge_stac(self, dataset_id: str, version: int) -> list[int]:
        """Drop a purged version's collection from every tree that holds it, and its child
        link from the theme catalog above it. Returns the releases changed."""
        changed = []
        with self._unit(write=True) as unit:
            rows = unit.execute("SELECT release, path, body FROM release_stac WHERE path LIKE ?",
                                (f"%/{dataset_id}/collection.json",)).fetchall()
            for number, path, body in rows:
                theme, dataset, _ = path.split("/", 2)
                if dataset != dataset_id or \
                        json.loads(bytes(body)).get("version") != str(version):
                    continue
                unit.execute("DELETE FROM release_stac WHERE release = ? AND "
                             "starts_with(path, ?)", (number, f"{theme}/{dataset}/"))
                catalog_path = f"{theme}/catalog.json"
                row = unit.execute("SELECT body FROM release_stac WHERE release = ? AND "
                                   "path = ?", (number, catalog_path)).fetchone()
                if row is not None:
                    catalog = json.loads(bytes(row[0]))
                    target = f"./{dataset_id}/collection.json"
                    catalog["links"] = [link for link in catalog["links"]
                                        if not (link.get("rel") == "child"
                                                and link.get("href") == target)]
                    unit.execute("UPDATE release_stac SET body = ?, modified_at = now() "
                                 "WHERE release = ? AND path = ?",
                                 (json.dumps(catalog, indent=2, ensure_ascii=False).encode(),
                                  number, catalog_path))
                changed.append(number)
        return changed

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

    def _unit(self, write: bool) -> contextlib.AbstractContextManager[
            state_postgresql.StateConnection]:
        return state_unit(self.url, self.home, write, "the release records")


@contextlib.contextmanager
def state_unit(url: str, home: Path, write: bool,
               what: str) -> Iterator[state_postgresql.StateConnection]:
    """A unit of work on the taza_state tables (migrated to this module's steps); a database
    that cannot answer is RecordsUnavailable naming `what` could not be read."""
    try:
        with state_postgresql.connect(url, home, write, MIGRATIONS) as unit:
            yield unit
    except (database.DatabaseError, psycopg.OperationalError) as err:
        raise RecordsUnavailable(f"{what} cannot be read: {err}") from err


def _live(unit: state_postgresql.StateConnection) -> int | None:
    row = unit.execute("SELECT release FROM live_release").fetchone()
    return row[0] if row else None


def _point_to(unit: state_postgresql.StateConnection, number: int) -> None:
    unit.execute("INSERT INTO live_release (singleton, release) VALUES (TRUE, ?) "
                 "ON CONFLICT (singleton) DO UPDATE SET release = EXCLUDED.release, "
                 "switched_at = now()", (number,))


def _insert_stac(unit: state_postgresql.StateConnection, number: int, folder: Path) -> None:
    """Every file of a release's static STAC tree, by its path below the tree."""
    if not folder.is_dir():
        return
    unit.executemany("INSERT INTO release_stac (release, path, body, modified_at) "
                     "VALUES (?, ?, ?, to_timestamp(?))",
                     [(number, path.relative_to(folder).as_posix(), path.read_bytes(),
                       path.stat().st_mtime)
                      for path in sorted(folder.rglob("*")) if path.is_file()])


def _copy_records(unit: state_postgresql.StateConnection, source: ReleaseRecords) -> int:
    copied = 0
    for number in source.numbers():
        inserted = unit.execute("INSERT INTO releases (number, state) VALUES (?, ?) "
                                "ON CONFLICT (number) DO NOTHING RETURNING number",
                                (number, json.dumps(source.read(number)))).fetchone()
        copied += inserted is not None
        home = getattr(source, "home", None)
        if inserted is not None and home is not None:
            # The release's static STAC tree with it, before the pointer can name it.
            _insert_stac(unit, number, Path(home) / "releases" / str(number) / STAC_FOLDER)
    live = source.live()
    if live is not None and _live(unit) is None:
        _point_to(unit, live)
    return copied
