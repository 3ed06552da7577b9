"""The publishing pipeline: manifest + source -> validate -> convert -> record -> STAC -> switch.

Every publish makes a new immutable version. Nothing becomes visible until the final atomic
switch of current.json (see catalog.store), so a failure at any step, or a killed process,
leaves the previous release serving.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from catalog import __version__, settings
from catalog.manifest import Manifest, load_manifest
from catalog.problems import Problem, PublishError, ValidationFailed
from catalog.sources.raster import RasterInfo
from catalog.sources.reader import convert_raster_source, convert_vector_source, inspect_source
from catalog.sources.vector import VectorInfo
from catalog.stac import build_catalog, write_static_catalog
from catalog.stac_api import sync as stac_index
from catalog.store import CatalogStore

# Bump when conversion output changes, so `publish --all` republishes unchanged sources.
PIPELINE_VERSION = "2"  # 2: stored feature text beside each GeoPackage


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
    source = manifest.sources[0]
    info, problems = inspect_source(source, manifest.kind, manifest.id_field)
    if problems:
        raise ValidationFailed([_in_source(p, source) for p in problems])
    assert info is not None
    return manifest, info


def publish(manifest_path: str | Path, store: CatalogStore, wait: bool = True) -> PublishResult:
    """Publish one dataset as a new version, or report it unchanged.

    wait=False raises catalog.store.StoreBusy instead of queueing behind another publish.
    """
    manifest, info = validate(manifest_path)
    fingerprint = _fingerprint(manifest)
    with store.lock(wait=wait):
        release = store.current()
        live = release.datasets.get(manifest.id) if release else None
        if live is not None and store.record(manifest.id, live)["fingerprint"] == fingerprint:
            return PublishResult(manifest.id, live, release.number, unchanged=True)
        staging = store.new_staging(manifest.id)
        try:
            version = _stage_version(manifest, info, fingerprint, staging, store)
        except Exception as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise PublishError(f"{manifest.id}: conversion failed: {err}") from err
        datasets = dict(release.datasets) if release else {}
        datasets[manifest.id] = version
        new_release = _switch(store, datasets)
    return PublishResult(manifest.id, version, new_release.number)


def rollback(store: CatalogStore, dataset_id: str, version: int,
             wait: bool = True) -> PublishResult:
    """Make an earlier version live again, as a new release (history is never rewritten).

    A withdrawn dataset comes back the same way: any released version can be made live.
    """
    with store.lock(wait=wait):
        release = store.current()
        if version not in store.versions(dataset_id):
            raise PublishError(f"{dataset_id} has no version {version}; "
                               f"versions: {store.versions(dataset_id)}")
        datasets = dict(release.datasets) if release else {}
        datasets[dataset_id] = version
        new_release = _switch(store, datasets)
    return PublishResult(dataset_id, version, new_release.number)


def withdraw(store: CatalogStore, dataset_id: str, wait: bool = True) -> int:
    """Take a dataset out of the live release; its versions stay on disk for rollback."""
    with store.lock(wait=wait):
        release = store.current()
        if release is None or dataset_id not in release.datasets:
            raise PublishError(f"{dataset_id} is not published")
        datasets = {k: v for k, v in release.datasets.items() if k != dataset_id}
        return _switch(store, datasets).number


def rebuild_release(store: CatalogStore) -> int | None:
    """Re-issue the live state as a new release (for instance after themes changed)."""
    with store.lock():
        release = store.current()
        if release is None:
            return None
        return _switch(store, release.datasets).number


def _switch(store: CatalogStore, datasets: dict[str, int]):
    records = [store.record(i, v) for i, v in sorted(datasets.items())]
    themes = settings.themes()

    def build_stac(target: Path) -> None:
        write_static_catalog(build_catalog(records, themes), target)

    try:
        release = store.switch(datasets, build_stac)
    except Exception as err:
        raise PublishError(f"could not build the new release: {err}") from err
    stac_index.apply_release(store, release)  # only the changed datasets; never raises
    return release


def _stage_version(manifest: Manifest, info, fingerprint: str, staging: Path,
                   store: CatalogStore) -> int:
    """Convert into the staging folder, write record.json, then commit the version number."""
    record = {
        "id": manifest.id,
        "kind": manifest.kind,
        "fingerprint": fingerprint,
        "published_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "software": {"taza-catalog": __version__, "pipeline": PIPELINE_VERSION},
        "manifest": manifest_as_dict(manifest),
        "source_file": manifest.sources[0].name,
    }
    if manifest.kind == "vector":
        assets, facts = convert_vector_source(info, manifest.id, staging, manifest.id_field)
        record["assets"] = [a.as_dict() for a in assets]
        record["vector"] = dataclasses.asdict(facts)
    else:
        asset, facts = convert_raster_source(manifest.sources[0], manifest.id, staging,
                                             manifest.raster.get("unit"))
        record["assets"] = [asset.as_dict()]
        record["rasters"] = [{**dataclasses.asdict(facts), "asset": asset.as_dict()}]
    shutil.copyfile(manifest.path, staging / "manifest.yaml")
    version = store.versions(manifest.id)[-1] + 1 if store.versions(manifest.id) else 1
    record["version"] = version
    (staging / "record.json").write_text(settings.to_json(record), encoding="utf-8")
    committed = store.commit_version(manifest.id, staging)
    if committed != version:  # cannot happen under the lock; refuse rather than mislabel
        raise PublishError(f"version race: expected {version}, got {committed}")
    return committed


def manifest_as_dict(manifest: Manifest) -> dict:
    """The manifest as plain JSON-ready data (dates as ISO strings, no local paths)."""
    data = dataclasses.asdict(manifest)
    data.pop("path")
    data.pop("sources")
    data["temporal_extent"] = {
        "start": manifest.temporal_start.isoformat(),
        "end": manifest.temporal_end.isoformat() if manifest.temporal_end else None,
    }
    data.pop("temporal_start")
    data.pop("temporal_end")
    return data


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
    return Problem(problem.where, problem.message, problem.line, problem.file or str(source))
