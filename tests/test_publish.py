"""Publishing through the real `taza` command: versions, idempotence, rejections, atomicity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import fiona
import numpy as np
import pytest
import rasterio
import yaml

from catalog.store import CatalogStore
from tests.conftest import ROOT, copy_dataset, home_environment, start_server, stop_server, taza


def edit_manifest(path, **changes) -> None:
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def live_version(home, dataset_id: str):
    """The live version as the profile records it (files, or PostgreSQL with
    TAZA_DATABASE_URL)."""
    return CatalogStore(home).live_version(dataset_id)


def visible_files(home) -> set[str]:
    """Everything a reader could reach: the live release's STAC files and version folders."""
    release = CatalogStore(home).current()
    files = {str(p.relative_to(home)) for p in release.path.rglob("*")}
    for dataset_id, version in release.datasets.items():
        folder = home / "datasets" / dataset_id / str(version)
        files |= {str(p.relative_to(home)) for p in folder.rglob("*")}
    return files


def test_publish_is_versioned_and_idempotent(scratch_home, tmp_path):
    manifest = copy_dataset("airports", tmp_path / "work")
    first = taza("publish", str(manifest), home=scratch_home)
    assert "published airports version 1" in first.stdout
    again = taza("publish", str(manifest), home=scratch_home)
    assert "unchanged airports version 1" in again.stdout
    edit_manifest(manifest, attribution="Airports: airportsdata (MIT), revised credit line")
    second = taza("publish", str(manifest), home=scratch_home)
    assert "published airports version 2" in second.stdout
    # Version 1 is still on disk, unchanged, and listed.
    listing = taza("list", home=scratch_home).stdout
    assert "versions: 1, 2" in listing
    record = json.loads((scratch_home / "datasets/airports/1/record.json").read_text())
    assert record["manifest"]["attribution"] != "Airports: airportsdata (MIT), revised credit line"


BAD_MANIFESTS = {
    "missing licence": ({"licence": None}, "licence: missing"),
    "unknown theme": ({"theme": "weather"}, "theme: 'weather' is not one of"),
    "bad date": ({"temporal_extent": {"start": "2023-13-45"}}, "temporal_extent.start"),
    "no English title": ({"title": {"ru": "Аэропорты"}}, "title.en: missing"),
    "modelled without label": ({"nature": "modelled"}, "must say 'modelled estimate'"),
    "missing source file": ({"source": "sources/nowhere.geojson"}, "file not found"),
    "unknown field": ({"colour": "blue"}, "colour: unknown field"),
}


@pytest.mark.parametrize("case", BAD_MANIFESTS)
def test_bad_manifest_is_rejected_with_field_and_line(tmp_path, scratch_home, case):
    changes, expected = BAD_MANIFESTS[case]
    manifest = copy_dataset("airports", tmp_path / "work")
    edit_manifest(manifest, **changes)
    result = taza("validate", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    # The message names the manifest and a line number: "path/airports.yaml:12: field: ..."
    assert f"{manifest}:" in result.stderr


def test_every_problem_is_reported_at_once(tmp_path, scratch_home):
    manifest = copy_dataset("airports", tmp_path / "work")
    edit_manifest(manifest, licence=None, theme="weather", steward={"name": "x"})
    stderr = taza("validate", str(manifest), home=scratch_home, check=False).stderr
    for expected in ("licence: missing", "theme:", "steward.organisation", "steward.email"):
        assert expected in stderr


def test_yaml_syntax_error_names_the_line(tmp_path, scratch_home):
    manifest = copy_dataset("airports", tmp_path / "work")
    manifest.write_text(manifest.read_text() + "\nkeywords: [unclosed\n")
    result = taza("validate", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1 and "not valid YAML" in result.stderr
    assert f"{manifest}:" in result.stderr


def break_geometry(source) -> str:
    data = json.loads(source.read_text())
    bowtie = [[[74, 42], [75, 43], [75, 42], [74, 43], [74, 42]]]
    data["features"][3]["geometry"] = {"type": "Polygon", "coordinates": bowtie}
    source.write_text(json.dumps(data))
    return "Self-intersection"


def empty_collection(source) -> str:
    source.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return "contains no features"


def zero_bytes(source) -> str:
    source.write_bytes(b"")
    return "cannot be read as vector data"


def duplicate_ids(source) -> str:
    data = json.loads(source.read_text())
    data["features"][1]["properties"]["icao"] = data["features"][0]["properties"]["icao"]
    source.write_text(json.dumps(data))
    return "duplicate id"


BAD_VECTOR_SOURCES = {"broken geometry": break_geometry, "empty collection": empty_collection,
                      "empty file": zero_bytes, "duplicate ids": duplicate_ids}


@pytest.mark.parametrize("case", BAD_VECTOR_SOURCES)
def test_bad_vector_source_is_rejected_and_previous_version_serves(tmp_path, scratch_home, case):
    manifest = copy_dataset("airports", tmp_path / "work")
    edit_manifest(manifest, id_field="icao")
    taza("publish", str(manifest), home=scratch_home)
    before = visible_files(scratch_home)
    expected = BAD_VECTOR_SOURCES[case](tmp_path / "work/sources/airports.geojson")
    result = taza("publish", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1, result.stdout
    assert expected in result.stderr and "nothing was published" in result.stderr
    assert "Traceback" not in result.stderr
    assert live_version(scratch_home, "airports") == 1
    assert visible_files(scratch_home) == before


def test_shapefile_without_prj_is_rejected(tmp_path, scratch_home):
    work = tmp_path / "work"
    manifest = copy_dataset("airports", work)
    shapefile = work / "sources" / "airports.shp"
    with fiona.open(work / "sources/airports.geojson") as source:
        schema = {"geometry": "Point", "properties": {"icao": "str:4", "name": "str:80"}}
        with fiona.open(shapefile, "w", driver="ESRI Shapefile", schema=schema,
                        crs=source.crs) as sink:
            for feature in source:
                sink.write({"geometry": feature.geometry,
                            "properties": {k: feature.properties[k] for k in ("icao", "name")}})
    archive = work / "sources" / "airports.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for suffix in (".shp", ".shx", ".dbf"):  # no .prj
            bundle.write(shapefile.with_suffix(suffix), f"airports{suffix}")
    edit_manifest(manifest, source="sources/airports.zip")
    result = taza("publish", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1
    assert "has no coordinate reference system" in result.stderr
    with zipfile.ZipFile(archive, "a") as bundle:  # the same file with its .prj publishes
        bundle.write(shapefile.with_suffix(".prj"), "airports.prj")
    assert "published airports version 1" in taza("publish", str(manifest),
                                                  home=scratch_home).stdout


def truncate(path) -> str:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return "cannot be read as a raster"


def strip_crs(path) -> str:
    with rasterio.open(path) as source:
        profile, data = source.profile, source.read()
    profile.pop("crs")
    with rasterio.open(path, "w", **profile) as target:
        target.write(data)
    return "has no coordinate reference system"


def all_nodata(path) -> str:
    with rasterio.open(path) as source:
        profile = source.profile
    with rasterio.open(path, "w", **profile) as target:
        target.write(np.full((1, profile["height"], profile["width"]), profile["nodata"],
                             dtype=profile["dtype"]))
    return "holds no valid pixels"


BAD_RASTERS = {"unreadable raster": truncate, "raster without CRS": strip_crs,
               "all nodata": all_nodata}


@pytest.mark.parametrize("case", BAD_RASTERS)
def test_bad_raster_is_rejected_and_previous_version_serves(tmp_path, scratch_home, case):
    manifest = copy_dataset("slope", tmp_path / "work")
    taza("publish", str(manifest), home=scratch_home)
    before = visible_files(scratch_home)
    expected = BAD_RASTERS[case](tmp_path / "work/sources/slope.tif")
    result = taza("publish", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert live_version(scratch_home, "slope") == 1
    assert visible_files(scratch_home) == before


def write_large_raster(path, seed: int) -> None:
    """A 4000 x 4000 float grid over Kyrgyzstan: big enough that converting it takes a while."""
    rng = np.random.default_rng(seed)
    data = rng.normal(2000, 500, (1, 4000, 4000)).astype("float32")
    transform = rasterio.transform.from_bounds(69.2, 39.1, 80.3, 43.3, 4000, 4000)
    with rasterio.open(path, "w", driver="GTiff", width=4000, height=4000, count=1,
                       dtype="float32", crs="EPSG:4326", transform=transform) as target:
        target.write(data)


def kill_when(process: subprocess.Popen, home, pattern: str, timeout: float = 60) -> bool:
    """SIGKILL the process as soon as a path matching pattern exists under home."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if list(home.glob(pattern)):
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            return True
        time.sleep(0.002)
    process.wait(timeout=60)
    return False


@pytest.mark.parametrize("moment", ["datasets/*/.staging-*", "releases/.staging-*"])
def test_killed_publish_leaves_the_previous_version_serving(tmp_path, scratch_home, moment):
    """SIGKILL a publish mid-conversion or mid-release: version 1 serves, no debris shows."""
    manifest = copy_dataset("elevation", tmp_path / "work")
    source = tmp_path / "work/sources/elevation.tif"
    write_large_raster(source, seed=1)
    taza("publish", str(manifest), home=scratch_home)
    server = start_server(scratch_home, workers=1)
    try:
        before = visible_files(scratch_home)
        write_large_raster(source, seed=2)
        env = dict(os.environ, TAZA_HOME=str(scratch_home), **home_environment(scratch_home))
        process = subprocess.Popen([sys.executable, "-m", "catalog.cli", "publish",
                                    str(manifest)], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        killed = kill_when(process, scratch_home, moment)
        if moment.startswith("datasets"):  # conversion takes seconds: the kill must land
            assert killed
        if killed:
            assert live_version(scratch_home, "elevation") == 1
            assert visible_files(scratch_home) == before
        else:  # it finished before we saw the moment: the new version must then be whole
            assert live_version(scratch_home, "elevation") == 2
        response = server.get("/ogc/collections/elevation/coverage?f=GTiff&"
                              "subset=Lat(41:41.1),Long(74:74.1)")
        assert response.status_code == 200
        # The next publish clears what the killed one left and completes.
        result = taza("publish", str(manifest), home=scratch_home)
        assert "elevation version 2" in result.stdout
        assert not list(scratch_home.glob("**/.staging-*"))
        with rasterio.open(scratch_home / "datasets/elevation/2/elevation.tif") as published:
            assert published.read(1, window=((0, 1), (0, 5))).shape == (1, 5)
    finally:
        stop_server(server)


def test_new_version_is_served_without_restart(tmp_path, scratch_home):
    manifest = copy_dataset("airports", tmp_path / "work")
    taza("publish", str(manifest), home=scratch_home)
    server = start_server(scratch_home, workers=2)
    try:
        source = tmp_path / "work/sources/airports.geojson"
        data = json.loads(source.read_text())
        data["features"] = data["features"][:5]
        source.write_text(json.dumps(data))
        taza("publish", str(manifest), home=scratch_home)
        deadline = time.monotonic() + 5
        counts = set()
        while time.monotonic() < deadline:
            # Several requests, so both workers answer.
            counts = {server.get("/ogc/collections/airports/items?limit=1").json()
                      ["numberMatched"] for _ in range(6)}
            if counts == {5}:
                break
            time.sleep(0.2)
        assert counts == {5}
        # The old version is no longer public (issue 11: only the live version is; its
        # stewards reach it through /api); `latest` and the new version's URL serve the new one.
        assert server.get("/assets/airports/1/airports.geojson").status_code == 404
        assert len(server.get("/assets/airports/2/airports.geojson").json()["features"]) == 5
        latest = server.get("/assets/airports/latest/airports.geojson").json()
        assert len(latest["features"]) == 5
    finally:
        stop_server(server)


def test_published_files_are_cloud_native(published_home):
    """COGs: tiled, overviews, DEFLATE with the right predictor; GeoPackages: R-tree index."""
    import sqlite3

    for dataset_id, predictor in (("elevation", 2), ("slope", 3)):
        path = published_home / "datasets" / dataset_id / "1" / f"{dataset_id}.tif"
        with rasterio.open(path) as cog:
            assert cog.profile["tiled"] and cog.profile["blockxsize"] == 512
            assert cog.overviews(1), "no overviews"
            assert cog.compression.name.lower() == "deflate"
            assert int(cog.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", 0)) == predictor
            assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    gpkg = published_home / "datasets" / "settlements" / "1" / "settlements.gpkg"
    with sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True) as db:
        extensions = db.execute("SELECT table_name, extension_name FROM gpkg_extensions").fetchall()
        assert ("settlements", "gpkg_rtree_index") in extensions
        count = db.execute("SELECT COUNT(*) FROM rtree_settlements_geom").fetchone()[0]
        assert count == 112


def test_mixed_geometry_families_are_rejected(tmp_path, scratch_home):
    manifest = copy_dataset("airports", tmp_path / "work")
    source = tmp_path / "work/sources/airports.geojson"
    data = json.loads(source.read_text())
    triangle = [[74, 42], [74.1, 42], [74.1, 42.1], [74, 42]]
    data["features"][0]["geometry"] = {"type": "Polygon", "coordinates": [triangle]}
    source.write_text(json.dumps(data))
    result = taza("publish", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1
    assert "mixes Point and Polygon geometries" in result.stderr


@pytest.mark.parametrize("suffix", [".csv", ".kml"])
def test_formats_converted_only_on_upload_are_named(tmp_path, scratch_home, suffix):
    manifest = copy_dataset("airports", tmp_path / "work")
    (tmp_path / "work/sources" / f"airports{suffix}").write_text("lon,lat\n74,42\n")
    edit_manifest(manifest, source=f"sources/airports{suffix}")
    result = taza("validate", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1 and "stewards' API" in result.stderr
