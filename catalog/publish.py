"""The publishing pipeline: manifest + source -> validate -> convert -> record -> STAC -> switch.

Every publish makes a new immutable version. Nothing becomes visible until the final atomic
switch of current.json (see catalog.store), so a failure at any step, or a killed process,
leaves the previous release serving. Every switch (publish, rollback, withdraw, rebuild) and
every purge writes an intent entry in the audit log before it changes anything and an outcome
entry after; the next operation records how a killed one ended (catalog.store.audit).

With TAZA_DATABASE_URL set, every vector version of the new release is loaded into its PostGIS
table (catalog.postgis) before the switch, and the tables this switch loaded are dropped again
when it fails: the previous release keeps serving from the tables it had.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from catalog import __version__, postgis, settings
from catalog.convert.isolated import ReadSources, read_sources
from catalog.convert.raster import combine_items
from catalog.core.operator_texts import OperatorTexts, warn_operator
from catalog.core.record import MANIFEST_FILE, RasterFacts, Record, Software, write_record
from catalog.manifest import ROLES, ItemSpec, Manifest, load_manifest
from catalog.postgis import database
from catalog.problems import Problem, PublishError, ValidationFailed
from catalog.sources.raster import RasterInfo
from catalog.sources.reader import inspect_sources
from catalog.sources.vector import VectorInfo
from catalog.stac import build_catalog, write_static_catalog
from catalog.stac_index import sync as stac_index
from catalog.store import CatalogStore, Release, StoreRefused, audit, tile_cache
from catalog.store.release_records import RecordsUnavailable

# Bump when conversion output changes, so `publish --all` republishes unchanged sources.
LOGGER = logging.getLogger(__name__)
# Its warnings, in the operator's language when `taza` publishes.
SAY = OperatorTexts(Path(__file__).with_name("publish_texts.yml"))
GEOPACKAGE_ASSET = "geopackage"  # the STAC asset key of a vector version's GeoPackage
PIPELINE_VERSION = "3"  # 2: stored feature text beside each GeoPackage; 3: band names in the record


@dataclass(frozen=True)
class PublishResult:
    dataset_id: str
    version: int
    release: int | None
    unchanged: bool = False


def validate(manifest_path: str | Path) -> tuple[Manifest, VectorInfo | RasterInfo]:
    """Check a manifest and its source; raise ValidationFailed listing every problem.

    The source is untrusted: it is read in the isolated reader (catalog.sources.reader).
    """
    manifest = load_manifest(manifest_path)
    # every item of a dataset of several, all in one isolated reader
    inspected = inspect_sources(list(manifest.sources), manifest.kind, manifest.id_field)
    return manifest, _checked(manifest, inspected)


def _checked(manifest: Manifest, inspected: list) -> VectorInfo | RasterInfo:
    """The first source's info, once every source passed its inspection, the items are alike
    and a vector has what its role needs; else ValidationFailed listing the problems."""
    infos = []
    for source, (info, problems) in zip(manifest.sources, inspected, strict=True):
        if problems:
            raise ValidationFailed([_in_source(p, source) for p in problems])
        infos.append(info)
    info = infos[0]
    assert info is not None
    if mismatched := _items_unlike_the_first(manifest, infos):
        raise ValidationFailed(mismatched)
    if isinstance(info, VectorInfo) and (role_problems := _role_problems(manifest, info)):
        raise ValidationFailed(role_problems)
    return info


def _items_unlike_the_first(manifest: Manifest, infos: list) -> list[Problem]:
    """The items of one layer share CRS, bands and types (and, for a time series, the grid)."""
    if len(infos) < 2:  # one source: nothing to compare (vectors always have one)
        return []
    first = infos[0]
    keys = ("crs", "count", "dtypes", "nodata")
    if manifest.items and manifest.items[0].start is not None:
        keys += ("width", "height")
    return [Problem(f"items.{index}.source",
                    f"{name} {getattr(info, name)!r} differs from the first item's "
                    f"{getattr(first, name)!r}: the items of a dataset form one layer",
                    file=str(info.path), code="items_differ",
                    params={"item": index, "file": info.path.name, "property": name,
                            "value": str(getattr(info, name)),
                            "first": str(getattr(first, name))})
            for index, info in enumerate(infos) for name in keys
            if not _same(getattr(info, name), getattr(first, name))]


def _same(a, b) -> bool:
    """Equal, NaN nodata included."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _role_problems(manifest: Manifest, info: VectorInfo) -> list[Problem]:
    """What the processes need of a layer with this role and this source lacks."""
    role = ROLES.get(manifest.role) if manifest.role else None
    if role is None:
        return []
    problems = []
    families = sorted({kind.removeprefix("Multi") for kind in info.geometry_types})
    if role.geometry and families != [role.geometry]:
        problems.append(Problem("role", f"the {manifest.role} layer has {role.geometry} "
                                        f"geometries; this source has {', '.join(families)}",
                                file=str(manifest.path), code="role_geometry",
                                params={"role": manifest.role, "geometry": role.geometry,
                                        "found": ", ".join(families)}))
    missing = [name for name in role.fields if name not in info.fields]
    if missing:
        problems.append(Problem("role", f"the {manifest.role} layer needs the attribute(s) "
                                        f"{', '.join(missing)}; this source lacks them",
                                file=str(manifest.path), code="role_fields",
                                params={"role": manifest.role, "fields": ", ".join(missing)}))
    return problems


def publish(manifest_path: str | Path, store: CatalogStore, wait: bool = True,
            actor: str | None = None, context: dict | None = None,
            progress: Callable[[int, str], object] | None = None) -> PublishResult:
    """Publish one dataset as a new version, or report it unchanged.

    wait=False raises catalog.store.StoreBusy instead of queueing behind another publish.
    actor (default: the operating-system user) and context (for instance the draft) go into
    the audit entries. progress(percent, step) hears of each step (a job's progress bar).
    """
    report = progress or (lambda percent, step: None)
    report(5, "validating")
    manifest = load_manifest(manifest_path)
    fingerprint = _fingerprint(manifest)
    actor = actor or audit.os_actor()
    report(20, "waiting")
    with _locked(store, wait, actor):
        release = store.current()
        live = release.datasets.get(manifest.id) if release else None
        if live is not None and store.record(manifest.id, live).fingerprint == fingerprint:
            return PublishResult(manifest.id, live, release.number, unchanged=True)
        _check_role_is_free(store, release, manifest)
        staging = store.new_staging(manifest.id)
        report(25, "converting")  # the sources are inspected, then converted, in one child
        try:
            version = _stage_version(manifest, fingerprint, staging, store)
        except ValidationFailed:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except Exception as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise PublishError(f"{manifest.id}: conversion failed: {err}",
                               code="conversion_failed", params={"id": manifest.id}) from err
        report(80, "releasing")
        datasets = dict(release.datasets) if release else {}
        datasets[manifest.id] = version
        new_release = _switch(store, datasets, actor, "dataset.publish", manifest.id,
                              version=version, **(context or {}))
    return PublishResult(manifest.id, version, new_release.number)


def rollback(store: CatalogStore, dataset_id: str, version: int, wait: bool = True,
             actor: str | None = None) -> PublishResult:
    """Make an earlier version live again, as a new release (history is never rewritten).

    A withdrawn dataset comes back the same way: any released version can be made live.
    """
    actor = actor or audit.os_actor()
    with _locked(store, wait, actor):
        release = store.current()
        released = store.released_versions(dataset_id)
        if version not in released:
            raise PublishError(f"{dataset_id} has no released version {version}; "
                               f"versions: {released}", code="no_released_version",
                               params={"id": dataset_id, "version": version})
        datasets = dict(release.datasets) if release else {}
        datasets[dataset_id] = version
        new_release = _switch(store, datasets, actor, "dataset.rollback", dataset_id,
                              version=version)
    return PublishResult(dataset_id, version, new_release.number)


def withdraw(store: CatalogStore, dataset_id: str, wait: bool = True,
             actor: str | None = None) -> int:
    """Take a dataset out of the live release; its versions stay on disk for rollback."""
    actor = actor or audit.os_actor()
    with _locked(store, wait, actor):
        release = store.current()
        if release is None or dataset_id not in release.datasets:
            raise PublishError(f"{dataset_id} is not published", code="not_published",
                               params={"id": dataset_id})
        datasets = {k: v for k, v in release.datasets.items() if k != dataset_id}
        return _switch(store, datasets, actor, "dataset.withdraw", dataset_id,
                       version=release.datasets[dataset_id]).number


def rebuild_release(store: CatalogStore, actor: str | None = None) -> int | None:
    """Re-issue the live state as a new release (for instance after themes changed)."""
    actor = actor or audit.os_actor()
    with _locked(store, True, actor):
        release = store.current()
        if release is None:
            return None
        return _switch(store, release.datasets, actor, "release.rebuild", None).number


def purge(store: CatalogStore, dataset_id: str, version: int, reason: str,
          actor: str | None = None,
          forget: Iterable[Callable[[str, int], object]] = ()) -> dict:
    """Remove a version that is not live, everywhere (a legal takedown), with an audit entry.

    The store removes the version folder, every release and static STAC reference to it and
    its cached tiles; the STAC index is scrubbed; `forget` are the callers' removers of what
    they keep about it (the stewards: the publishing draft's files). The version number is
    never used again.
    """
    if not reason or not reason.strip():
        raise PublishError("say why the version is purged (--reason)",
                           code="purge_needs_reason")
    actor = actor or audit.os_actor()
    with _locked(store, True, actor):
        try:
            store.check_purgeable(dataset_id, version)
        except StoreRefused as err:
            raise PublishError(str(err), code="purge_refused",
                               params={"id": dataset_id, "version": version}) from err
        intent = _record_intent(store, actor, dataset_id, operation="dataset.purge",
                                version=version, reason=reason)
        removed = store.purge_version(dataset_id, version)
        removed["tiles"] = tile_cache.drop_version(store.home, dataset_id, version)
        _drop_feature_tables([(dataset_id, version)])
        for remove in forget:
            remove(dataset_id, version)
        release = store.current()
        if release is not None:
            stac_index.apply_release(store, release)  # a lagging index may still hold it
        stac_index.scrub(store)
        _record_outcome(store, actor, "dataset.purge", dataset_id, intent=intent.seq,
                        version=version, reason=reason, **removed)
    return removed


@contextlib.contextmanager
def _locked(store: CatalogStore, wait: bool, actor: str) -> Iterator[None]:
    """The publish lock, after resolving in the audit log what a killed operation left."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(store.lock(wait=wait))
        except (database.DatabaseError, RecordsUnavailable) as err:  # the lock is in it
            raise PublishError(f"{err}; nothing was changed",
                               code="publish_lock_unavailable") from err
        try:
            _recover_interrupted(store, actor)
        except audit.LOG_ERRORS as err:
            raise PublishError(f"the audit log cannot take entries ({err}); nothing was "
                               "changed", code="audit_log_unavailable") from err
        yield


def _recover_interrupted(store: CatalogStore, actor: str) -> None:
    """An intent without an outcome: its operation was killed. Say whether it went live."""
    for intent in audit.unresolved_intents(store.home):
        detail = intent["detail"]
        outcome = {"intent": intent["seq"], "operation": detail.get("operation")}
        if detail.get("operation") == "dataset.purge":
            version = detail.get("version")
            outcome["finished"] = (version in store.purged_versions(intent["dataset_id"]) and
                                   not store.has_version_folder(intent["dataset_id"], version))
        else:
            outcome["release"] = detail.get("release")
            outcome["live"] = _went_live(store, intent["seq"])
        audit.record(store.home, actor, "release.recovered", intent["dataset_id"], **outcome)


def _went_live(store: CatalogStore, intent_seq: int) -> bool:
    return any(r.audit and r.audit.get("seq") == intent_seq for r in store.live_releases())


def _switch(store: CatalogStore, datasets: dict[str, int], actor: str, action: str,
            dataset_id: str | None, **detail) -> Release:
    """Intent entry, release switch, outcome entry, then the STAC index."""
    records = [store.record(i, v) for i, v in sorted(datasets.items())]
    _check_roles(records)
    loaded = _load_feature_tables(store, records)
    try:
        return _switch_release(store, datasets, records, actor, action, dataset_id, **detail)
    except BaseException:
        _drop_feature_tables(loaded)  # the switch failed: nothing serves from them
        raise


def _switch_release(store: CatalogStore, datasets: dict[str, int], records: list[Record],
                    actor: str, action: str, dataset_id: str | None, **detail) -> Release:
    themes = settings.themes()

    def build_stac(target: Path) -> None:
        write_static_catalog(build_catalog(records, themes, store.assets), target)

    number = store.next_release_number()
    current = store.current()
    intent = _record_intent(store, actor, dataset_id, operation=action, release=number,
                            previous=current.number if current else None, **detail)
    try:
        release = store.switch(datasets, build_stac, number, intent.as_dict())
    except Exception as err:
        if not _went_live(store, intent.seq):
            _record_outcome(store, actor, "release.failed", dataset_id, intent=intent.seq,
                            release=number, error=str(err))
            raise PublishError(f"could not build the new release: {err}",
                               code="release_build_failed") from err
        release = store.current()  # failed after current.json was replaced: it is live
    _record_outcome(store, actor, action, dataset_id, intent=intent.seq,
                    release=release.number, **detail)
    stac_index.apply_release(store, release)  # only the changed datasets; never raises
    return release


def _load_feature_tables(store: CatalogStore, records: list[Record]) -> list[tuple[str, int]]:
    """Load the release's vector versions that have no PostGIS table yet (with a database
    configured); the (dataset, version) pairs loaded."""
    url = settings.database_url()
    if url is None:
        return []
    versions = []
    for record in records:
        if record.vector is None:
            continue
        path = store.assets.local_path(record, record.asset(GEOPACKAGE_ASSET))
        if path is None:
            raise PublishError(f"{record.id} version {record.version}: the GeoPackage is not "
                               "on this server's disk, so it cannot be loaded into the database",
                               code="geopackage_not_on_disk",
                               params={"id": record.id, "version": record.version})
        versions.append((record.id, record.version, path, record.vector.table))
    try:
        return postgis.load_versions(url, versions)
    except Exception as err:  # database, GeoPackage or disk: the publish fails, nothing changed
        raise PublishError(f"could not load the features into the database: {err}",
                           code="database_load_failed") from err


def _drop_feature_tables(versions: list[tuple[str, int]]) -> None:
    url = settings.database_url()
    if url is None or not versions:
        return
    try:
        postgis.drop_versions(url, versions)
    except Exception as err:  # the failure being reported matters more; say what is left
        warn_operator(SAY, "tables_not_dropped", LOGGER, versions=versions, reason=err)


def _check_role_is_free(store: CatalogStore, release: Release | None,
                        manifest: Manifest) -> None:
    """Before converting anything: another live dataset holding the role refuses the
    manifest (the processes would not know which one to read)."""
    if manifest.role is None or release is None:
        return
    for dataset_id, version in sorted(release.datasets.items()):
        if dataset_id != manifest.id and store.record(dataset_id, version).role == manifest.role:
            raise ValidationFailed([Problem(
                "role", f"{dataset_id} already holds the role {manifest.role!r}; withdraw it "
                        "or change its role first", file=str(manifest.path),
                code="role_taken", params={"id": dataset_id, "role": manifest.role})])


def _check_roles(records: list[Record]) -> None:
    """At most one live dataset per role (a rollback or rebuild could bring two together)."""
    holders: dict[str, str] = {}
    for record in records:
        if record.role is None:
            continue
        if record.role in holders:
            raise PublishError(f"{record.id} and {holders[record.role]} would both hold the "
                               f"role {record.role!r}; withdraw one first or change its "
                               "manifest's role", code="role_held_twice",
                               params={"id": record.id, "other": holders[record.role],
                                       "role": record.role})
        holders[record.role] = record.id


def _record_intent(store: CatalogStore, actor: str, dataset_id: str | None,
                   **detail) -> audit.Anchor:
    """Before any change: without the intent on record, nothing happens."""
    try:
        return audit.record(store.home, actor, audit.INTENT, dataset_id, **detail)
    except audit.LOG_ERRORS as err:
        raise PublishError(f"the audit log did not take the intent entry ({err}); nothing "
                           "was changed", code="audit_log_unavailable") from err


def _record_outcome(store: CatalogStore, actor: str, action: str, dataset_id: str | None,
                    **detail) -> None:
    """After the change: it happened whatever the log says now. If the entry cannot be
    written, the next operation's recovery entry says how it ended."""
    try:
        audit.record(store.home, actor, action, dataset_id, **detail)
    except audit.LOG_ERRORS as err:
        warn_operator(SAY, "audit_outcome_not_recorded", LOGGER, action=action, reason=err)


def _stage_version(manifest: Manifest, fingerprint: str, staging: Path,
                   store: CatalogStore) -> int:
    """Inspect and convert the sources into the staging folder (ValidationFailed if they do
    not pass), write record.json, then commit the version number."""
    items = _items(manifest)
    read = read_sources(manifest.kind, [(item.source, item.id) for item in items], manifest.id,
                        staging, manifest.id_field, manifest.raster.get("unit"))
    _checked(manifest, read.inspected)
    if not read.converted:  # every source passed, yet the reader converted nothing
        raise PublishError("the reader answered without converting the sources",
                           code="reader_converted_nothing")
    assets, vector, rasters, layer = list(read.assets), read.vector, tuple(read.rasters), None
    if manifest.kind == "raster":
        assets, rasters, layer = _raster_layer(manifest, items, read, staging)
    shutil.copyfile(manifest.path, staging / MANIFEST_FILE)
    version = store.next_version(manifest.id)
    record = Record(
        id=manifest.id,
        kind=manifest.kind,
        version=version,
        fingerprint=fingerprint,
        published_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        software=Software(__version__, PIPELINE_VERSION),
        manifest=manifest.published(),
        source_file=manifest.sources[0].name,
        assets=tuple(assets),
        vector=vector,
        rasters=rasters,
        layer=layer,
    )
    write_record(record, staging)
    committed = store.commit_version(manifest.id, staging)
    if committed != version:  # cannot happen under the lock; refuse rather than mislabel
        raise PublishError(f"version race: expected {version}, got {committed}",
                           code="version_race")
    return committed


def _items(manifest: Manifest) -> tuple[ItemSpec, ...]:
    """The items of a dataset: the manifest's `items`, or its one source named like it."""
    return manifest.items or (ItemSpec(manifest.id, manifest.sources[0]),)


def _raster_layer(manifest: Manifest, items: tuple[ItemSpec, ...], read: ReadSources,
                  staging: Path) -> tuple[list, tuple[RasterFacts, ...], RasterFacts | None]:
    """The items' COGs with their times, and for several items the one layer the APIs serve
    (catalog.convert.raster.combine_items)."""
    assets = list(read.assets)
    rasters = tuple(dataclasses.replace(facts, asset=asset, start=item.start, end=item.end)
                    for item, asset, facts in zip(items, assets, read.rasters, strict=True))
    if len(items) < 2:
        return assets, rasters, None
    layer_asset, layer = combine_items([staging / a.file for a in assets], manifest.id,
                                       staging, manifest.raster.get("unit"),
                                       time_series=items[0].start is not None)
    return [*assets, layer_asset], rasters, dataclasses.replace(layer, asset=layer_asset)


def _fingerprint(manifest: Manifest) -> str:
    """Same manifest bytes, same source bytes, same pipeline: same published version."""
    digest = hashlib.sha256(f"pipeline {PIPELINE_VERSION}\n".encode())
    for path in (manifest.path, *manifest.sources):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _in_source(problem: Problem, source: Path) -> Problem:
    return dataclasses.replace(problem, file=problem.file or str(source))
