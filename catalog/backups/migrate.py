"""`taza migrate --to postgresql://...`: move an embedded catalog's state into PostgreSQL.

The catalog home keeps its versions and releases' STAC files in both profiles; what the
PostgreSQL profile keeps in the database is copied here:
- the release records and the live-release pointer (releases/<R>/release.json, current.json);
- the stewards' state and the audit chain (every row of every table of
  TAZA_HOME/stewards/stewards.sqlite, ids and MACs as they are, so the chain still verifies
  under the same key and head file);
- every vector version on disk (released or not) loaded into PostGIS, as a publish would;
- with an assets URL, every version's files uploaded to the bucket (S3Assets.store_existing),
  the local copies kept until the operator removes them after `--verify`.
Sign-in failures (the rate limit's window) are not copied: they expire within minutes.

It is idempotent: a target that already holds exactly this state is left as it is (and the
missing PostGIS layers are loaded). A target holding anything else is refused, naming the
first difference. `verify` compares the two and names every difference.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from catalog import postgis
from catalog.core.assets import AssetUnavailable
from catalog.postgis import layers
from catalog.publish import GEOPACKAGE_ASSET
from catalog.stewards import db_postgresql, db_sqlite
from catalog.store import CatalogStore, audit, state_postgresql
from catalog.store.release_records import RecordsUnavailable
from catalog.store.release_records_files import FileReleaseRecords
from catalog.store.release_records_postgresql import PostgresReleaseRecords
from catalog.store.s3_assets import ObjectStoreSettingsError, S3Assets

# Parents before children (foreign keys); each with the column it is ordered by.
TABLES = (("users", "id"), ("tokens", "id"), ("datasets", "id"), ("drafts", "id"),
          ("contributors", "draft_id, user_id"), ("password_links", "id"),
          ("sessions", "id"), ("audit", "seq"))
IDENTITY_TABLES = ("users", "drafts")
MIGRATIONS = audit.MIGRATIONS + db_postgresql.MIGRATIONS


class MigrationRefused(Exception):
    """The target holds another catalog, or the source cannot be read."""


@dataclass
class Outcome:
    copied_rows: dict[str, int] = field(default_factory=dict)
    copied_releases: int = 0
    loaded_layers: list[tuple[str, int]] = field(default_factory=list)
    versions_to_bucket: int = 0


def migrate(store: CatalogStore, url: str, assets_url: str | None = None) -> Outcome:
    """Copy the state and load the layers, and with `assets_url` (s3://bucket/prefix) the
    published files into the bucket (see the module's note)."""
    source = _source_rows(store.home)
    outcome = Outcome()
    with _target(url, store.home, write=True) as target:
        existing = _target_rows(target)
        if any(existing.values()):
            differences = _differences(source, existing)
            if differences:
                raise MigrationRefused("the target database already holds another catalog "
                                       f"({differences[0]}); give an empty database")
        else:
            outcome.copied_rows = _copy(target, source)
    files, database_records = _release_records(store, url)
    differences = _release_differences(files, database_records, missing_ok=True)
    if differences:
        raise MigrationRefused("the target database already holds other releases "
                               f"({differences[0]}); give an empty database")
    outcome.copied_releases = database_records.copy_from(files)
    outcome.loaded_layers = postgis.load_versions(url, _vector_versions(store))
    if assets_url:
        bucket = _bucket(store, assets_url)
        try:
            outcome.versions_to_bucket = sum(bucket.store_existing(folder)
                                             for folder in _version_folders(store))
        except AssetUnavailable as err:
            raise MigrationRefused(f"copying the files to {assets_url}: {err}") from err
    return outcome


def verify(store: CatalogStore, url: str, assets_url: str | None = None) -> list[str]:
    """Every difference between the embedded catalog and the target (empty: the same)."""
    with _target(url, store.home, write=False) as target:
        differences = _differences(_source_rows(store.home), _target_rows(target))
    differences += _release_differences(*_release_records(store, url))
    with psycopg.connect(url) as connection:
        loaded = layers.loaded_layers(connection)
    differences += [f"{dataset_id} version {version}: no PostGIS layer in the target"
                    for dataset_id, version, _, _ in _vector_versions(store)
                    if (dataset_id, version) not in loaded]
    if assets_url:
        bucket = _bucket(store, assets_url)
        for folder in _version_folders(store):
            differences += bucket.differences(folder)
    return differences


def _release_records(store: CatalogStore, url: str
                     ) -> tuple[FileReleaseRecords, PostgresReleaseRecords]:
    files = FileReleaseRecords(store.home)
    return files, PostgresReleaseRecords(url, store.home, files)


def _release_differences(files: FileReleaseRecords, target: PostgresReleaseRecords,
                         missing_ok: bool = False) -> list[str]:
    """The release records and live pointer that differ between the home and the database;
    with missing_ok, releases (and a pointer) the database lacks are no difference."""
    try:
        live, recorded = target.in_database()
    except RecordsUnavailable as err:
        raise MigrationRefused(f"cannot reach the target database: {err}") from err
    found = []
    for number in files.numbers():
        if number not in recorded:
            if not missing_ok:
                found.append(f"release {number}: missing in the target")
        elif recorded[number] != files.read(number):
            found.append(f"release {number}: differs in the target")
    found += [f"release {number}: only in the target"
              for number in sorted(recorded.keys() - set(files.numbers()))]
    if live != files.live() and not (missing_ok and live is None):
        found.append(f"live release: {files.live()} in the home, {live} in the target")
    return found


def _bucket(store: CatalogStore, assets_url: str) -> S3Assets:
    try:
        bucket = CatalogStore(store.home, assets_url=assets_url).assets
    except ObjectStoreSettingsError as err:
        raise MigrationRefused(str(err)) from err
    if not isinstance(bucket, S3Assets):
        raise MigrationRefused(f"--assets: expected an s3:// URL, got {assets_url!r}")
    return bucket


def _version_folders(store: CatalogStore) -> list[Path]:
    return store.version_folders()


def _source_rows(home: Path) -> dict[str, list[dict]]:
    if not audit.database_path(home).exists():
        return {table: [] for table, _ in TABLES}
    try:
        with db_sqlite.connect(home, write=False) as connection:
            return {table: [dict(zip(row.keys(), row, strict=True)) for row in connection.execute(
                        f"SELECT * FROM {table} ORDER BY {order}")]  # noqa: S608 (constants)
                    for table, order in TABLES}
    except sqlite3.Error as err:
        raise MigrationRefused(f"cannot read {audit.database_path(home)}: {err}") from err


def _target_rows(target: state_postgresql.StateConnection) -> dict[str, list[dict]]:
    cursor = target.connection.cursor(row_factory=dict_row)
    return {table: cursor.execute(sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(c.strip()) for c in order.split(",")))
            ).fetchall()
            for table, order in TABLES}


def _copy(target: state_postgresql.StateConnection, source: dict[str, list[dict]]
          ) -> dict[str, int]:
    for table, _ in TABLES:
        for row in source[table]:
            names = list(row)
            target.connection.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)),
                    sql.SQL(", ").join(sql.Placeholder() * len(names))),
                [row[name] for name in names])
    for table in IDENTITY_TABLES:  # new rows continue after the copied ids
        target.connection.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), "
                    "GREATEST((SELECT MAX(id) FROM {}), 1))").format(
                sql.Literal(f"{state_postgresql.SCHEMA}.{table}"), sql.Identifier(table)))
    return {table: len(source[table]) for table, _ in TABLES}


def _differences(source: dict[str, list[dict]], target: dict[str, list[dict]]) -> list[str]:
    found = []
    for table, order in TABLES:
        key = [column.strip() for column in order.split(",")]
        mine = {tuple(row[k] for k in key): row for row in source[table]}
        theirs = {tuple(row[k] for k in key): row for row in target[table]}
        for ident in sorted(mine.keys() - theirs.keys()):
            found.append(f"{table} {ident}: missing in the target")
        for ident in sorted(theirs.keys() - mine.keys()):
            found.append(f"{table} {ident}: only in the target")
        for ident in sorted(mine.keys() & theirs.keys()):
            changed = [c for c in mine[ident] if mine[ident][c] != theirs[ident].get(c)]
            if changed:
                found.append(f"{table} {ident}: {', '.join(changed)} differ")
    return found


def _vector_versions(store: CatalogStore) -> list[tuple[str, int, Path, str | None]]:
    """Every vector version on disk with its GeoPackage (what a publish loads)."""
    found = []
    for folder in _version_folders(store):
        record = store.record(folder.parent.name, int(folder.name))
        if record.vector is not None:
            path = store.assets.local_path(record, record.asset(GEOPACKAGE_ASSET))
            found.append((record.id, record.version, path, record.vector.table))
    return found


@contextlib.contextmanager
def _target(url: str, home: Path, write: bool):
    try:
        with state_postgresql.connect(url, home, write, MIGRATIONS) as target:
            yield target
    except psycopg.OperationalError as err:
        raise MigrationRefused(f"cannot reach the target database: {err}") from err
