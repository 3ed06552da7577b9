"""`taza migrate --to postgresql://...`: move an embedded catalog's state into PostgreSQL.

The catalog home keeps its versions and releases' STAC files in both profiles; what the
PostgreSQL profile keeps in the database is copied here:
- the release records and the live-release pointer (releases/<R>/release.json, current.json);
- the stewards' state and the audit chain (every row of every table of
  TAZA_HOME/stewards/stewards.sqlite, ids and MACs as they are, so the chain still verifies
  under the same key and head file), sign-in failures (the lockout counters) included;
- every vector version on disk (released or not) loaded into PostGIS, as a publish would;
- the harvest sources with their schedules and what their runs saw (TAZA_HOME/harvest/):
  a source the target lacks is inserted, one it holds takes the home's state only when the
  home ran it later (catalog/store/harvest_sources_postgresql.py `copy_from`);
- with an assets URL, every version's files uploaded to the bucket (S3Assets.store_existing),
  the local copies kept until the operator removes them after `--verify`.

It is incremental: each run records, per copied row, a digest of the row as the target holds it
(`taza_state.migrated_rows`). A later run, after the embedded home changed, inserts the new rows
(accounts, drafts, audit entries past the target's head), updates the changed ones and deletes
the ones gone from the home, and loads the missing layers; a target already holding exactly
this state is left as it is. It refuses only a target that changed on its own since (a row
whose digest differs from the recorded one, a row it did not copy, a recorded row gone) or a
home whose audit log lost or changed entries, naming the first. `verify` compares the two and
names every difference.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from catalog import postgis
from catalog.backups import CodedText
from catalog.core.assets import AssetUnavailable
from catalog.core.record import RECORD_FILE
from catalog.postgis import layers
from catalog.publish import GEOPACKAGE_ASSET
from catalog.stewards import db_postgresql, db_sqlite
from catalog.store import CatalogStore, audit, state_postgresql
from catalog.store.assets import OBJECTS_FILE
from catalog.store.draft_objects import DraftObjects
from catalog.store.harvest_sources import (
    FileHarvestSources,
    HarvestSourcesConflict,
    HarvestSourcesUnavailable,
    ran_later,
)
from catalog.store.harvest_sources_postgresql import PostgresHarvestSources
from catalog.store.release_records import RecordsUnavailable
from catalog.store.release_records_files import FileReleaseRecords
from catalog.store.release_records_postgresql import PostgresReleaseRecords
from catalog.store.s3_assets import ObjectStoreSettingsError, S3Assets

# Parents before children (foreign keys); each with the column(s) it is keyed and ordered by.
# SQLite's implicit rowid of signin_failures is the PostgreSQL table's `rowid` column.
TABLES = (("users", "id"), ("tokens", "id"), ("datasets", "id"), ("drafts", "id"),
          ("contributors", "draft_id, user_id"), ("password_links", "id"),
          ("sessions", "id"), ("signin_failures", "rowid"), ("audit", "seq"))
IDENTITY_COLUMNS = (("users", "id"), ("drafts", "id"), ("signin_failures", "rowid"))
APPEND_ONLY = ("audit",)
RECORD_STEP = ("CREATE TABLE migrated_rows (table_name TEXT NOT NULL, row_key TEXT NOT NULL, "
               "digest TEXT NOT NULL, PRIMARY KEY (table_name, row_key))")
MIGRATIONS = (audit.MIGRATIONS + db_postgresql.MIGRATIONS
              + (("migrate", (RECORD_STEP,)),))

Rows = dict[str, list[dict]]


class MigrationRefused(Exception):
    """The target holds another catalog, or the source cannot be read. The message is
    English; `code` names its text in texts.yml (`error.<code>`, said with `params`), empty
    where the message is another's (a setting refused)."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code, self.params = code, dict(params or {})


@dataclass
class Outcome:
    copied_rows: dict[str, int] = field(default_factory=dict)  # inserted or updated, per table
    removed_rows: dict[str, int] = field(default_factory=dict)
    copied_releases: int = 0
    loaded_layers: list[tuple[str, int]] = field(default_factory=list)
    versions_to_bucket: int = 0
    drafts_to_bucket: int = 0  # drafts' folders sent to the bucket
    copied_versions: int = 0  # version records (record.json, objects.json) into the database
    copied_stac_trees: int = 0  # releases' static STAC trees into the database
    harvest_sources: int = 0  # harvest sources inserted into the database
    harvest_states: int = 0  # their runs' states copied (new sources, or run later here)


@dataclass
class Changes:
    """What a run writes into the target, per table: rows to insert, update and delete."""

    inserts: dict[str, list[dict]] = field(default_factory=dict)
    updates: dict[str, list[dict]] = field(default_factory=dict)
    deletes: dict[str, list[tuple]] = field(default_factory=dict)


def migrate(store: CatalogStore, url: str, assets_url: str | None = None) -> Outcome:
    """Copy what is new in the state and load the missing layers, and with `assets_url`
    (s3://bucket/prefix) the published files into the bucket (see the module's note)."""
    source = _source_rows(store.home)
    outcome = Outcome()
    with _target(url, store.home, write=True) as target:
        changes = _changes(source, _target_rows(target), _recorded(target))
        _apply(target, changes)
        _record(target)
    outcome.copied_rows = {table: len(changes.inserts.get(table, []))
                           + len(changes.updates.get(table, [])) for table, _ in TABLES
                           if changes.inserts.get(table) or changes.updates.get(table)}
    outcome.removed_rows = {table: len(rows) for table, rows in changes.deletes.items() if rows}
    files, database_records = _release_records(store, url)
    differences = _release_differences(files, database_records, missing_ok=True)
    if differences:
        raise MigrationRefused("the target database already holds other releases "
                               f"({differences[0]}); give an empty database",
                               code="migrate.other_releases",
                               params={"difference": differences[0]})
    outcome.loaded_layers = postgis.load_versions(url, _vector_versions(store))
    if assets_url:
        bucket = _bucket(store, assets_url)
        try:
            outcome.versions_to_bucket = sum(bucket.store_existing(folder)
                                             for folder in _version_folders(store))
        except AssetUnavailable as err:
            raise MigrationRefused(f"copying the files to {assets_url}: {err}",
                                   code="migrate.copy_files",
                                   params={"url": assets_url, "reason": str(err)}) from err
        outcome.drafts_to_bucket = _drafts_to_bucket(store, url, assets_url)
    # The versions' records (with the objects.json of those just sent to the bucket) before
    # the release records that name them, so nodes that share no home never see a release
    # whose versions they cannot read; each release's static STAC tree goes with its record.
    outcome.copied_versions, trees_before = _copy_versions(store, database_records)
    outcome.copied_releases = database_records.copy_from(files)
    outcome.copied_stac_trees = _copy_trees(store, database_records, trees_before)
    outcome.harvest_sources, outcome.harvest_states = _copy_harvest_sources(store, url)
    return outcome


def _copy_harvest_sources(store: CatalogStore, url: str) -> tuple[int, int]:
    try:
        return PostgresHarvestSources(url, store.home).copy_from(FileHarvestSources(store.home))
    except HarvestSourcesConflict as err:
        raise MigrationRefused(f"{err}: remove it there or rename it in the home",
                               code="migrate.harvest_conflict",
                               params={"reason": str(err)}) from err
    except HarvestSourcesUnavailable as err:
        raise MigrationRefused(f"cannot reach the target database: {err}",
                               code="migrate.unreachable",
                               params={"reason": str(err)}) from err


def _harvest_differences(store: CatalogStore, url: str) -> list[str]:
    """Harvest sources that differ between the home and the database. A source's state is no
    difference when the database's last run is the later one (its nodes ran it since)."""
    home, target = FileHarvestSources(store.home), PostgresHarvestSources(url, store.home)
    try:
        mine, theirs = home.sources(), target.sources()
        found = []
        for name in sorted(mine.keys() - theirs.keys()):
            found.append(CodedText(f"harvest source {name}: missing in the target",
                                   "difference.harvest_missing", name=name))
        for name in sorted(theirs.keys() - mine.keys()):
            found.append(CodedText(f"harvest source {name}: only in the target",
                                   "difference.harvest_only_target", name=name))
        for name in sorted(mine.keys() & theirs.keys()):
            if mine[name] != theirs[name]:
                found.append(CodedText(f"harvest source {name}: its definition differs in "
                                       "the target", "difference.harvest_definition",
                                       name=name))
                continue
            state, held = home.state(name), target.state(name)
            if state != held and not ran_later(held, state):
                found.append(CodedText(f"harvest source {name}: its state differs in the "
                                       "target", "difference.harvest_state", name=name))
        return found
    except HarvestSourcesUnavailable as err:
        raise MigrationRefused(f"cannot reach the target database: {err}",
                               code="migrate.unreachable",
                               params={"reason": str(err)}) from err


def _drafts_to_bucket(store: CatalogStore, url: str, assets_url: str) -> int:
    """Every draft folder of the home not sent yet, to the bucket (where nodes that share no
    home read drafts from: catalog/store/draft_objects.py)."""
    folder = store.home / "stewards" / "drafts"
    if not folder.is_dir():
        return 0
    sync = DraftObjects(url, assets_url, store.home)
    sent = 0
    try:
        for root in sorted(p for p in folder.iterdir() if p.name.isdigit() and p.is_dir()):
            if not sync.sent(root):
                sync.push(int(root.name), root)
                sent += 1
    except (AssetUnavailable, RecordsUnavailable) as err:
        raise MigrationRefused(f"copying the drafts' files to {assets_url}: {err}",
                               code="migrate.copy_drafts",
                               params={"url": assets_url, "reason": str(err)}) from err
    return sent


def _copy_versions(store: CatalogStore, target: PostgresReleaseRecords) -> tuple[int, set[int]]:
    """Copy every version's record.json and objects.json and every purged number into the
    database (what a publish there writes); returns how many, and the releases whose static
    STAC tree the database held before."""
    try:
        versions = target.copy_versions(_version_folders(store))
        for dataset_folder in sorted((store.home / "datasets").glob("*")):
            for version in sorted(store.purged_versions(dataset_folder.name)):
                target.mark_purged(dataset_folder.name, version)
        return versions, set(target.stac_trees())
    except RecordsUnavailable as err:
        raise MigrationRefused(f"cannot reach the target database: {err}",
                               code="migrate.unreachable",
                               params={"reason": str(err)}) from err


def _copy_trees(store: CatalogStore, target: PostgresReleaseRecords, before: set[int]) -> int:
    """Static STAC trees of releases the database held already without one; returns how many
    trees the database holds now that it did not before."""
    try:
        for number in FileReleaseRecords(store.home).numbers():
            target.copy_stac(number, store.home / "releases" / str(number) / "stac")
        return len(set(target.stac_trees()) - before)
    except RecordsUnavailable as err:
        raise MigrationRefused(f"cannot reach the target database: {err}",
                               code="migrate.unreachable",
                               params={"reason": str(err)}) from err


def _version_and_tree_differences(store: CatalogStore, target: PostgresReleaseRecords
                                  ) -> list[str]:
    """Version records and static STAC trees that differ between the home and the database."""
    try:
        rows = target.versions_in_database()
        trees = target.stac_trees()
    except RecordsUnavailable as err:
        raise MigrationRefused(f"cannot reach the target database: {err}",
                               code="migrate.unreachable",
                               params={"reason": str(err)}) from err
    found = []
    for folder in _version_folders(store):
        key = (folder.parent.name, int(folder.name))
        objects = folder / OBJECTS_FILE
        mine = ((folder / RECORD_FILE).read_text(encoding="utf-8"),
                objects.read_text() if objects.exists() else None)
        dataset, version = key
        if key not in rows:
            found.append(CodedText(f"{dataset} version {version}: record missing in the target",
                                   "difference.record_missing", dataset=dataset,
                                   version=version))
        elif rows[key][0] != mine[0]:
            found.append(CodedText(f"{dataset} version {version}: record.json differs in the "
                                   "target", "difference.record_differs", dataset=dataset,
                                   version=version))
        elif rows[key][1] != mine[1]:
            found.append(CodedText(f"{dataset} version {version}: objects.json differs in the "
                                   "target", "difference.objects_differs", dataset=dataset,
                                   version=version))
    for number in FileReleaseRecords(store.home).numbers():
        folder = store.home / "releases" / str(number) / "stac"
        mine = {path.relative_to(folder).as_posix(): path.read_bytes()
                for path in folder.rglob("*") if path.is_file()} if folder.is_dir() else {}
        if mine and number not in trees:
            found.append(CodedText(f"release {number}: static STAC tree missing in the target",
                                   "difference.tree_missing", number=number))
        elif mine != trees.get(number, {}):
            found.append(CodedText(f"release {number}: static STAC tree differs in the target",
                                   "difference.tree_differs", number=number))
    return found


def verify(store: CatalogStore, url: str, assets_url: str | None = None) -> list[str]:
    """Every difference between the embedded catalog and the target (empty: the same)."""
    with _target(url, store.home, write=False) as target:
        differences = _differences(_source_rows(store.home), _target_rows(target))
    differences += _release_differences(*_release_records(store, url))
    differences += _version_and_tree_differences(store, _release_records(store, url)[1])
    differences += _harvest_differences(store, url)
    with psycopg.connect(url) as connection:
        loaded = layers.loaded_layers(connection)
    differences += [CodedText(f"{dataset_id} version {version}: no PostGIS layer in the "
                              "target", "difference.layer_missing", dataset=dataset_id,
                              version=version)
                    for dataset_id, version, _, _ in _vector_versions(store)
                    if (dataset_id, version) not in loaded]
    if assets_url:
        bucket = _bucket(store, assets_url)
        for folder in _version_folders(store):
            differences += _bucket_differences(bucket, folder)
    return differences


def _bucket_differences(bucket: S3Assets, folder: Path) -> list[CodedText]:
    """How a version folder's files differ from their objects: missing, unreadable, or of
    another size."""
    dataset, version = folder.parent.name, folder.name
    sizes = bucket.object_sizes(folder)
    if sizes is None:
        return [CodedText(f"{dataset} version {version}: not in the bucket",
                          "difference.bucket_missing", dataset=dataset, version=version)]
    found = []
    for name, size in sizes.items():
        if isinstance(size, AssetUnavailable):
            found.append(CodedText(f"{dataset} version {version}: {name}: {size}",
                                   "difference.object_unreadable", dataset=dataset,
                                   version=version, name=name, reason=str(size)))
            continue
        local = folder / name
        if local.exists() and local.stat().st_size != size:
            found.append(CodedText(f"{dataset} version {version}: {name}: the object has "
                                   f"{size} bytes, the file {local.stat().st_size}",
                                   "difference.object_size", dataset=dataset, version=version,
                                   name=name, object=size, file=local.stat().st_size))
    return found


def _release_records(store: CatalogStore, url: str
                     ) -> tuple[FileReleaseRecords, PostgresReleaseRecords]:
    files = FileReleaseRecords(store.home)
    return files, PostgresReleaseRecords(url, store.home, files)


def _release_differences(files: FileReleaseRecords, target: PostgresReleaseRecords,
                         missing_ok: bool = False) -> list[str]:
    """The release records and live pointer that differ between the home and the database;
    with missing_ok (a migration catching up with the home), releases the database lacks and
    its pointer are no difference."""
    try:
        live, recorded = target.in_database()
    except RecordsUnavailable as err:
        raise MigrationRefused(f"cannot reach the target database: {err}",
                               code="migrate.unreachable",
                               params={"reason": str(err)}) from err
    found = []
    for number in files.numbers():
        if number not in recorded:
            if not missing_ok:
                found.append(CodedText(f"release {number}: missing in the target",
                                       "difference.release_missing", number=number))
        elif recorded[number] != files.read(number):
            found.append(CodedText(f"release {number}: differs in the target",
                                   "difference.release_differs", number=number))
    found += [CodedText(f"release {number}: only in the target",
                        "difference.release_only_target", number=number)
              for number in sorted(recorded.keys() - set(files.numbers()))]
    if live != files.live() and not missing_ok:
        home_live = files.live()
        found.append(CodedText(f"live release: {home_live} in the home, {live} in the target",
                               "difference.live_release", home=home_live, target=live))
    return found


def _bucket(store: CatalogStore, assets_url: str) -> S3Assets:
    try:
        bucket = CatalogStore(store.home, assets_url=assets_url).assets
    except ObjectStoreSettingsError as err:
        raise MigrationRefused(str(err)) from err
    if not isinstance(bucket, S3Assets):
        raise MigrationRefused(f"--assets: expected an s3:// URL, got {assets_url!r}",
                               code="migrate.assets_not_s3",
                               params={"url": repr(assets_url)})
    return bucket


def _version_folders(store: CatalogStore) -> list[Path]:
    return store.version_folders()


def _source_rows(home: Path) -> Rows:
    if not audit.database_path(home).exists():
        return {table: [] for table, _ in TABLES}
    try:
        with db_sqlite.connect(home, write=False) as connection:
            return {table: [dict(zip(row.keys(), row, strict=True)) for row in connection.execute(
                        f"SELECT {'rowid, ' if order == 'rowid' else ''}* FROM {table} "  # noqa: S608
                        f"ORDER BY {order}")]  # (constants)
                    for table, order in TABLES}
    except sqlite3.Error as err:
        path = audit.database_path(home)
        raise MigrationRefused(f"cannot read {path}: {err}", code="migrate.source_unreadable",
                               params={"path": path, "reason": str(err)}) from err


def _target_rows(target: state_postgresql.StateConnection) -> Rows:
    cursor = target.connection.cursor(row_factory=dict_row)
    return {table: cursor.execute(sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, _key(order))))
            ).fetchall()
            for table, order in TABLES}


def _key(order: str) -> list[str]:
    return [column.strip() for column in order.split(",")]


def _keyed(rows: list[dict], order: str) -> dict[tuple, dict]:
    return {tuple(row[k] for k in _key(order)): row for row in rows}


def _digest(row: dict) -> str:
    return hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()


def _recorded(target: state_postgresql.StateConnection) -> dict[str, dict[str, str]]:
    """Per table, row key (JSON) -> digest of the row as the last run left it in the target."""
    recorded: dict[str, dict[str, str]] = {table: {} for table, _ in TABLES}
    for table, key, digest in target.connection.execute(
            "SELECT table_name, row_key, digest FROM migrated_rows"):
        recorded.setdefault(table, {})[key] = digest
    return recorded


def _changes(source: Rows, target: Rows, recorded: dict[str, dict[str, str]]) -> Changes:
    """The writes that make the target hold the home's state; MigrationRefused when the target
    changed on its own since the last run, or the home's audit log lost or changed entries."""
    if not any(recorded.values()) and any(target.values()):
        # A target no run of this version recorded: only an exact copy of the home is taken.
        differences = _differences(source, target)
        if differences:
            raise MigrationRefused("the target database already holds another catalog "
                                   f"({differences[0]}); give an empty database",
                                   code="migrate.another_catalog",
                                   params={"difference": differences[0]})
        return Changes()
    for table, order in TABLES:
        theirs = {json.dumps(list(key)): row for key, row in _keyed(target[table], order).items()}
        for key, row in theirs.items():
            if recorded[table].get(key) == _digest(row):
                continue
            if key in recorded[table]:
                raise _changed_on_its_own(CodedText(f"{table} {key} changed in the target",
                                                    "difference.row_changed", table=table,
                                                    row=key))
            raise _changed_on_its_own(CodedText(f"{table} {key} was added in the target",
                                                "difference.row_added", table=table, row=key))
        for key in recorded[table].keys() - theirs.keys():
            raise _changed_on_its_own(CodedText(f"{table} {key} was removed from the target",
                                                "difference.row_removed", table=table, row=key))
    changes = Changes()
    for table, order in TABLES:
        mine, theirs = _keyed(source[table], order), _keyed(target[table], order)
        changes.inserts[table] = [mine[k] for k in mine if k not in theirs]
        changes.updates[table] = [mine[k] for k in mine if k in theirs and any(
            mine[k][c] != theirs[k].get(c) for c in mine[k])]
        changes.deletes[table] = [k for k in theirs if k not in mine]
        if table in APPEND_ONLY and (changes.updates[table] or changes.deletes[table]):
            first = (changes.updates[table] or [dict(zip(_key(order), changes.deletes[table][0],
                                                         strict=True))])[0]
            entry = [first[k] for k in _key(order)]
            raise MigrationRefused(f"the home's {table} log lost or changed entries since the "
                                   f"last migrate ({table} {entry}); "
                                   "it is not the log the target was copied from",
                                   code="migrate.log_changed",
                                   params={"table": table, "entry": entry})
    return changes


def _changed_on_its_own(what: CodedText) -> MigrationRefused:
    return MigrationRefused(f"the target database changed on its own since the last migrate "
                            f"({what}): it is no longer a copy of this catalog; give an empty "
                            "database, or move the target's changes into the home first",
                            code="migrate.changed_on_its_own", params={"what": what})


def _apply(target: state_postgresql.StateConnection, changes: Changes) -> None:
    """Deletes children first, then updates and inserts parents first (foreign keys)."""
    execute = target.connection.execute
    for table, order in reversed(TABLES):
        for key in changes.deletes.get(table, []):
            execute(sql.SQL("DELETE FROM {} WHERE ({}) = ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, _key(order))),
                sql.SQL(", ").join(sql.Placeholder() * len(key))), list(key))
    for table, order in TABLES:
        for row in changes.updates.get(table, []):
            values = {c: v for c, v in row.items() if c not in _key(order)}
            execute(sql.SQL("UPDATE {} SET {} WHERE ({}) = ({})").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder())
                                   for c in values),
                sql.SQL(", ").join(map(sql.Identifier, _key(order))),
                sql.SQL(", ").join(sql.Placeholder() * len(_key(order)))),
                [*values.values(), *(row[k] for k in _key(order))])
        for row in changes.inserts.get(table, []):
            execute(sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, row)),
                sql.SQL(", ").join(sql.Placeholder() * len(row))), list(row.values()))
    for table, column in IDENTITY_COLUMNS:  # new rows continue after the copied ids
        execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), "
                        "GREATEST((SELECT MAX({}) FROM {}), 1))").format(
            sql.Literal(f"{state_postgresql.SCHEMA}.{table}"), sql.Literal(column),
            sql.Identifier(column), sql.Identifier(table)))


def _record(target: state_postgresql.StateConnection) -> None:
    """Remember every row as the target now holds it: the next run's baseline."""
    held = _target_rows(target)
    target.connection.execute("DELETE FROM migrated_rows")
    with target.connection.cursor() as cursor:
        cursor.executemany("INSERT INTO migrated_rows VALUES (%s, %s, %s)",
                           [(table, json.dumps(list(key)), _digest(row))
                            for table, order in TABLES
                            for key, row in _keyed(held[table], order).items()])


def _differences(source: Rows, target: Rows) -> list[str]:
    found = []
    for table, order in TABLES:
        mine, theirs = _keyed(source[table], order), _keyed(target[table], order)
        for ident in sorted(mine.keys() - theirs.keys()):
            found.append(CodedText(f"{table} {ident}: missing in the target",
                                   "difference.row_missing", table=table, row=ident))
        for ident in sorted(theirs.keys() - mine.keys()):
            found.append(CodedText(f"{table} {ident}: only in the target",
                                   "difference.row_only_target", table=table, row=ident))
        for ident in sorted(mine.keys() & theirs.keys()):
            changed = [c for c in mine[ident] if mine[ident][c] != theirs[ident].get(c)]
            if changed:
                columns = ", ".join(changed)
                found.append(CodedText(f"{table} {ident}: {columns} differ",
                                       "difference.row_differs", table=table, row=ident,
                                       columns=columns))
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
        raise MigrationRefused(f"cannot reach the target database: {err}",
                               code="migrate.unreachable",
                               params={"reason": str(err)}) from err
