"""Hostile files (issue 11, items 1 and 2): each one is refused or read safely, through the
stewards' upload API on the real server and through `taza publish`.

The files point at things the server must never read or reach: a marker file holding a random
secret, /etc/passwd, the stewards' own database, and an HTTP listener on 127.0.0.1 run by this
test. The listener must receive zero requests, and no answer, report or command output may
hold any of their content. Then the isolated reader itself: it cannot read local files or
connect anywhere, it fails closed where the kernel cannot isolate it, and a file that needs
more memory or processor time than allowed is refused while the server keeps answering.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import rasterio.shutil
import yaml
from rasterio.transform import from_bounds

from catalog.sources.reader import probe_isolation
from tests.conftest import (
    DATASETS,
    ROOT,
    copy_dataset,
    home_environment,
    start_server,
    stop_server,
    taza,
)
from tests.stewards_support import (
    airports_features,
    finding_messages,
    make_manifest,
    polygon_features,
    running_api,
    write_geojson,
    write_geopackage,
)

SECRET = f"TAZA-SECRET-{secrets.token_hex(12)}"
SECRET_VALUE = 1_000_000 + secrets.randbelow(1_000_000)  # the pixels of the secret HDF5 file
PASSWD_LINE = "root:x:0:0"
UPLOAD_LIMIT = 64 << 20


# -- the listener and the planted secrets --------------------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    def _record(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = _record

    def log_message(self, *args) -> None:
        pass


@dataclass
class Listener:
    url: str
    port: int
    requests: list[str]


@pytest.fixture(scope="module")
def listener():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield Listener(f"http://127.0.0.1:{port}", port, server.requests)
    server.shutdown()
    server.server_close()


@dataclass
class Targets:
    """What the hostile files point at."""

    secret_csv: Path
    secret_h5: Path
    stewards_db: Path
    listener: str
    tokens: list[str] = field(default_factory=list)

    def leaked(self, text: str) -> list[str]:
        """Which secret, if any, shows in text."""
        markers = [SECRET, PASSWD_LINE, "secret_sha256", str(SECRET_VALUE), *self.tokens]
        return [m for m in markers if m in text]


def plant_secrets(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    secret_csv = folder / "secret.csv"
    secret_csv.write_text(f"name,lon,lat\n{SECRET},74.5,42.5\n")
    secret_h5 = folder / "secret.h5"
    with h5py.File(secret_h5, "w") as h5:
        h5["secret"] = np.full((40, 40), SECRET_VALUE, dtype="int32")
    return secret_csv, secret_h5


# -- the corpus --------------------------------------------------------------------------

def ogr_vrt(targets: Targets) -> str:
    """An OGR VRT whose layers are the secret, /etc/passwd, the stewards' accounts and a URL."""
    return (
        "<OGRVRTDataSource>"
        f'<OGRVRTLayer name="secret"><SrcDataSource>CSV:{targets.secret_csv}</SrcDataSource>'
        "</OGRVRTLayer>"
        '<OGRVRTLayer name="passwd"><SrcDataSource>CSV:/etc/passwd</SrcDataSource>'
        "</OGRVRTLayer>"
        f'<OGRVRTLayer name="accounts"><SrcDataSource>{targets.stewards_db}</SrcDataSource>'
        "<SrcLayer>tokens</SrcLayer></OGRVRTLayer>"
        f'<OGRVRTLayer name="remote"><SrcDataSource>/vsicurl/{targets.listener}/remote.csv'
        "</SrcDataSource></OGRVRTLayer>"
        "</OGRVRTDataSource>\n")


def one_layer_vrt(targets: Targets) -> str:
    """An OGR VRT with one point layer: the secret file's rows (lon/lat columns)."""
    return ("<OGRVRTDataSource>"
            f'<OGRVRTLayer name="points"><SrcDataSource>{targets.secret_csv}</SrcDataSource>'
            f"<SrcLayer>{targets.secret_csv.stem}</SrcLayer>"
            '<GeometryField encoding="PointFromColumns" x="lon" y="lat"/>'
            "<LayerSRS>EPSG:4326</LayerSRS></OGRVRTLayer></OGRVRTDataSource>\n")


def vrt_named(name: str, content=ogr_vrt):
    def make(folder: Path, targets: Targets) -> Path:
        path = folder / name
        path.write_text(content(targets))
        return path
    return make


def raster_vrt_as_geotiff(folder: Path, targets: Targets) -> Path:
    path = folder / "elevation.tif"
    bands = [f"/vsicurl/{targets.listener}/remote.tif", str(targets.secret_h5)]
    sources = "".join(
        f'<VRTRasterBand dataType="Int32" band="{i}"><SimpleSource><SourceFilename>{source}'
        "</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        for i, source in enumerate(bands, start=1))
    path.write_text('<VRTDataset rasterXSize="40" rasterYSize="40"><SRS>EPSG:4326</SRS>'
                    "<GeoTransform>74, 0.025, 0, 43, 0, -0.025</GeoTransform>"
                    f"{sources}</VRTDataset>\n")
    return path


def vrt_in_zip(folder: Path, targets: Targets) -> Path:
    path = folder / "layers.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("layer.geojson", ogr_vrt(targets))
    return path


def _virtual_ogr_table(db: sqlite3.Connection, targets: Targets) -> None:
    """Write a VirtualOGR table into the schema (Python's SQLite has no such module, so the
    entry goes into sqlite_master directly, as a hostile file would carry it)."""
    db.execute("PRAGMA writable_schema = ON")
    db.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
               "('table', 'leak', 'leak', 0, ?)",
               (f"CREATE VIRTUAL TABLE leak USING VirtualOGR('CSV:{targets.secret_csv}')",))
    db.execute("PRAGMA writable_schema = OFF")


def sqlite_named_geojson(folder: Path, targets: Targets) -> Path:
    path = folder / "places.geojson"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE decoy (id INTEGER PRIMARY KEY)")
        _virtual_ogr_table(db, targets)
    return path


def geopackage_with(statement):
    def make(folder: Path, targets: Targets) -> Path:
        path = write_geopackage(folder / "parcels.gpkg", polygon_features())
        with sqlite3.connect(path) as db:
            statement(db, targets)
        return path
    return make


def add_trigger(db: sqlite3.Connection, targets: Targets) -> None:
    db.execute("CREATE TABLE audit_copy (code TEXT)")
    db.execute("CREATE TRIGGER copy_rows AFTER INSERT ON parcels "
               "BEGIN INSERT INTO audit_copy VALUES (NEW.code); END")


def add_view(db: sqlite3.Connection, targets: Targets) -> None:
    db.execute("CREATE VIEW parcels_view AS SELECT * FROM parcels")


def geojson_crs_link(folder: Path, targets: Targets) -> Path:
    path = write_geojson(folder / "airports.geojson", airports_features())
    data = json.loads(path.read_text())
    data["crs"] = {"type": "link", "properties": {"href": f"{targets.listener}/crs.wkt",
                                                  "type": "ogcwkt"}}
    path.write_text(json.dumps(data))
    return path


def kml_entity(scheme: str):
    def make(folder: Path, targets: Targets) -> Path:
        where = (f"file://{targets.secret_csv}" if scheme == "file"
                 else f"{targets.listener}/entity.xml")
        path = folder / f"entity-{scheme}.kml"
        path.write_text(f'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY leak SYSTEM "{where}">]>'
                        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark>'
                        "<name>&leak;</name><Point><coordinates>74.5,42.5</coordinates>"
                        "</Point></Placemark></Document></kml>")
        return path
    return make


def netcdf_external_link(folder: Path, targets: Targets) -> Path:
    """A NetCDF-4 file whose variable `leak` is an HDF5 external link to the secret file."""
    base = folder / "base.tif"
    with rasterio.open(base, "w", driver="GTiff", width=40, height=40, count=1, dtype="int32",
                       crs="EPSG:4326", transform=from_bounds(74, 42, 75, 43, 40, 40)) as sink:
        sink.write(np.ones((1, 40, 40), dtype="int32"))
    path = folder / "grids.nc"
    rasterio.shutil.copy(base, path, driver="netCDF", FORMAT="NC4")
    base.unlink()
    with h5py.File(path, "a") as h5:
        h5["leak"] = h5py.ExternalLink(str(targets.secret_h5), "/secret")
    return path


def sparse_huge_geotiff(folder: Path, targets: Targets) -> Path:
    """200,000 x 200,000 pixels, nearly no bytes: only the tile index is written."""
    path = folder / "huge.tif"
    with rasterio.open(path, "w", driver="GTiff", width=200_000, height=200_000, count=1,
                       dtype="uint8", crs="EPSG:4326", nodata=0, tiled=True, blockxsize=1024,
                       blockysize=1024, sparse_ok=True, BIGTIFF="YES",
                       transform=from_bounds(69, 39, 81, 44, 200_000, 200_000)):
        pass
    return path


@dataclass(frozen=True)
class Hostile:
    make: object
    kind: str
    expected: str  # what the refusal says
    params: dict = field(default_factory=dict)


CORPUS = {
    "VRT disguised as KML": Hostile(vrt_named("airports.kml"), "vector", "GDAL VRT"),
    "one-layer VRT disguised as KML": Hostile(vrt_named("points.kml", one_layer_vrt), "vector",
                                              "GDAL VRT"),
    "VRT disguised as GeoJSON": Hostile(vrt_named("airports.geojson"), "vector", "GDAL VRT"),
    "VRT disguised as CSV": Hostile(vrt_named("airports.csv"), "vector", "GDAL VRT"),
    "raster VRT disguised as GeoTIFF": Hostile(raster_vrt_as_geotiff, "raster",
                                               "is not a GeoTIFF file"),
    "VRT inside a zip": Hostile(vrt_in_zip, "vector", "GDAL VRT"),
    "SQLite with a VirtualOGR table named .geojson": Hostile(
        sqlite_named_geojson, "vector", "GeoJSON must be a JSON object"),
    "GeoPackage with a VirtualOGR table": Hostile(geopackage_with(_virtual_ogr_table),
                                                  "vector", "virtual table"),
    "GeoPackage with a trigger": Hostile(geopackage_with(add_trigger), "vector", "trigger"),
    "GeoPackage with a view": Hostile(geopackage_with(add_view), "vector", "view"),
    "GeoJSON with a crs link": Hostile(geojson_crs_link, "vector", "crs of type link"),
    "KML with an external entity (file)": Hostile(kml_entity("file"), "vector", "DTD"),
    "KML with an external entity (http)": Hostile(kml_entity("http"), "vector", "DTD"),
    "NetCDF with an HDF5 external link": Hostile(netcdf_external_link, "raster",
                                                 "cannot be read as NetCDF",
                                                 {"variable": "leak"}),
    "sparse 200,000 x 200,000 GeoTIFF": Hostile(sparse_huge_geotiff, "raster",
                                                "the catalog accepts at most"),
}


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile-uploads")
    with running_api(home, TAZA_UPLOAD_MAX_BYTES=UPLOAD_LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def targets(api, listener, tmp_path_factory) -> Targets:
    secret_csv, secret_h5 = plant_secrets(tmp_path_factory.mktemp("planted"))
    return Targets(secret_csv, secret_h5, api.server.home / "stewards" / "stewards.sqlite",
                   listener.url, list(api.tokens.values()))


def assert_nothing_leaked(targets: Targets, listener: Listener, *texts: str) -> None:
    for text in texts:
        assert not targets.leaked(text), f"leaked {targets.leaked(text)}: {text[:2000]}"
    assert listener.requests == [], f"the server fetched {listener.requests}"


def drafts_hold_secret(home: Path) -> list[str]:
    """Files the uploads left in the drafts' folders that hold the secret: its text, or its
    pixels in a raster (a staged GeoPackage or GeoTIFF would be published from there)."""
    found = []
    for path in (home / "stewards" / "drafts").rglob("*"):
        if not path.is_file() or path.stat().st_size > 64 << 20:
            continue
        if SECRET.encode() in path.read_bytes():
            found.append(str(path))
        elif path.suffix == ".tif":
            with rasterio.open(path) as raster:
                small = raster.width * raster.height <= 1_000_000  # not the sparse giant
                if small and int(raster.read(1).max()) == SECRET_VALUE:
                    found.append(str(path))
    return found


# -- uploads -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", CORPUS)
def test_hostile_upload_is_refused_and_leaks_nothing(api, targets, listener, tmp_path, case):
    hostile = CORPUS[case]
    source = hostile.make(tmp_path, targets)
    dataset_id = api.new_id("hostile")
    api.create(dataset_id)
    assert api.put_manifest(dataset_id, make_manifest(dataset_id, hostile.kind)).ok
    answer = api.upload(dataset_id, source, **hostile.params)
    assert answer.status_code == 422, answer.text
    blocking = finding_messages(answer.json())
    assert any(hostile.expected in message for message in blocking), blocking
    report = api.get(f"/api/datasets/{dataset_id}/draft/report", "alice")
    page = api.get(f"/api/datasets/{dataset_id}/draft/report?f=html", "alice")
    assert report.status_code == 200 and page.status_code == 200
    assert_nothing_leaked(targets, listener, answer.text, report.text, page.text)
    assert drafts_hold_secret(api.server.home) == []
    assert api.get("/healthz").status_code == 200


def test_named_crs_and_gdal_geopackages_are_still_accepted(api, targets, listener, tmp_path):
    """The checks refuse indirection, not ordinary files: a GeoJSON naming its CRS and a
    GeoPackage with GDAL's own R-tree and feature-count triggers upload and publish."""
    path = write_geojson(tmp_path / "utm.geojson", [
        {"type": "Feature", "properties": {"code": f"U{i}"},
         "geometry": {"type": "Point", "coordinates": [400000 + i * 1000, 4700000]}}
        for i in range(3)])
    data = json.loads(path.read_text())
    data["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32643"}}
    path.write_text(json.dumps(data))
    dataset_id, answer = api.draft_dataset("named-crs", path)
    assert answer.status_code == 201, answer.text
    assert "reprojected" in json.dumps(answer.json())
    gpkg_id, answer = api.draft_dataset(
        "gdal-gpkg", write_geopackage(tmp_path / "parcels.gpkg", polygon_features()))
    assert answer.status_code == 201, answer.text
    api.review_and_publish(gpkg_id)
    assert_nothing_leaked(targets, listener, answer.text)


# -- taza publish ------------------------------------------------------------------------

@pytest.mark.parametrize("case", CORPUS)
def test_hostile_publish_is_refused_and_leaks_nothing(targets, listener, tmp_path,
                                                      scratch_home, case):
    hostile = CORPUS[case]
    work = tmp_path / "work"
    manifest = copy_dataset("airports" if hostile.kind == "vector" else "slope", work)
    source = hostile.make(work / "sources", targets)
    data = yaml.safe_load(manifest.read_text())
    data["source"] = f"sources/{source.name}"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    result = taza("publish", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert not (scratch_home / "current.json").exists()
    assert_nothing_leaked(targets, listener, result.stdout, result.stderr)


@pytest.mark.parametrize("source", [
    "/vsicurl/{listener}/airports.geojson", "{listener}/airports.geojson",
    "GPKG:/etc/passwd", "CSV:/etc/passwd", "sources/airports.vrt",
    "sources/../../../../../vsizip/x.zip/a.geojson"])
def test_manifest_sources_must_be_plain_local_files(targets, listener, tmp_path, scratch_home,
                                                    source):
    manifest = copy_dataset("airports", tmp_path / "work")
    (tmp_path / "work/sources/airports.vrt").write_text(ogr_vrt(targets))
    data = yaml.safe_load(manifest.read_text())
    data["source"] = source.format(listener=listener.url)
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    result = taza("validate", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1
    assert "source:" in result.stderr and ("refused" in result.stderr
                                           or "not found" in result.stderr)
    assert_nothing_leaked(targets, listener, result.stdout, result.stderr)


def test_pixel_budget_is_configurable_for_publish(tmp_path, scratch_home, monkeypatch):
    manifest = copy_dataset("slope", tmp_path / "work")
    monkeypatch.setenv("TAZA_RASTER_MAX_PIXELS", "1000000")
    result = taza("publish", str(manifest), home=scratch_home, check=False)
    assert result.returncode == 1 and "the catalog accepts at most 1,000,000" in result.stderr
    monkeypatch.delenv("TAZA_RASTER_MAX_PIXELS")
    assert "published slope version 1" in taza("publish", str(manifest),
                                               home=scratch_home).stdout


# -- the isolated reader itself ----------------------------------------------------------

def test_reader_cannot_read_local_files_or_connect(targets, listener, monkeypatch):
    paths = [Path("/etc/passwd"), targets.secret_csv, targets.stewards_db]
    probe = probe_isolation(paths, "127.0.0.1", listener.port)
    assert reach(probe) == {"readable": {str(p): False for p in paths}, "connected": False,
                            "boto3": False}
    assert listener.requests == []
    # The same probe without isolation reads and connects: the probe itself works.
    monkeypatch.setenv("TAZA_READER_ISOLATION", "off")
    unconfined = probe_isolation(paths, "127.0.0.1", listener.port)
    assert reach(unconfined) == {"readable": {str(p): True for p in paths}, "connected": True,
                                 "boto3": False}  # the reader blocks it in any case
    listener.requests.clear()  # the unconfined probe's own connection


def reach(probe: dict) -> dict:
    """What the probe could reach (its descriptors, parent and environment are
    tests/test_reader_zygote.py's)."""
    return {key: probe[key] for key in ("readable", "connected", "boto3")}


def test_reader_fails_closed_where_the_kernel_cannot_isolate(tmp_path, scratch_home):
    """In a user namespace allowed no network namespaces, `taza publish` refuses to read the
    source (and says how to fix it) unless TAZA_READER_ISOLATION=off."""
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is needed (scripts/install-system-deps)")
    manifest = copy_dataset("airports", tmp_path / "work")

    def publish_without_namespaces(isolation: str) -> subprocess.CompletedProcess:
        script = ("echo 0 > /proc/sys/user/max_net_namespaces && "
                  "echo 0 > /proc/sys/user/max_user_namespaces && "
                  f'exec "{sys.executable}" -m catalog.cli publish "{manifest}"')
        env = dict(os.environ, TAZA_HOME=str(scratch_home), TAZA_READER_ISOLATION=isolation,
                   **home_environment(scratch_home))
        return subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", script],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)

    refused = publish_without_namespaces("on")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "cannot isolate the reader" in refused.stderr
    assert "TAZA_READER_ISOLATION=off" in refused.stderr and "Traceback" not in refused.stderr
    assert not (scratch_home / "current.json").exists()
    allowed = publish_without_namespaces("off")
    assert "published airports version 1" in allowed.stdout, allowed.stderr


@pytest.fixture(scope="module")
def limited_api(tmp_path_factory):
    home = tmp_path_factory.mktemp("limited-reader")
    with running_api(home, workers=1, TAZA_UPLOAD_MAX_BYTES=UPLOAD_LIMIT,
                     TAZA_READER_MEMORY_MB=450, TAZA_READER_CPU_SECONDS=3) as running:
        yield running


def big_kml(path: Path, placemarks: int = 150_000) -> Path:
    """About 37 MB of KML: GDAL's KML driver builds the whole document in memory."""
    body = "".join(f"<Placemark><name>p{i}</name><description>{'x' * 100}</description>"
                   f"<Point><coordinates>{74 + i % 1000 / 1000},{42 + i % 997 / 1000}"
                   "</coordinates></Point></Placemark>" for i in range(placemarks))
    path.write_text('<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/'
                    f'kml/2.2"><Document><Folder><name>points</name>{body}</Folder></Document>'
                    "</kml>")
    return path


def big_csv(path: Path, rows: int = 300_000) -> Path:
    """300,000 points: converting them takes several seconds of processor time."""
    lines = ["name,lon,lat"] + [f"p{i},{74 + i % 1000 / 1000},{42 + i % 997 / 1000}"
                                for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("case", ["memory", "processor time"])
def test_reader_limits_refuse_the_file_and_the_server_keeps_answering(limited_api, tmp_path,
                                                                      case):
    api = limited_api
    source = big_kml(tmp_path / "big.kml") if case == "memory" else big_csv(
        tmp_path / "big.csv")
    dataset_id, answer = api.draft_dataset("limited", source)
    assert answer.status_code == 422, answer.text
    expected = "memory limit of 450 MB" if case == "memory" else "more than 3 s of processor"
    assert any(expected in m for m in finding_messages(answer.json())), answer.text
    assert api.get("/healthz").status_code == 200
    # An ordinary upload on the same server, under the same limits, still goes through.
    _, ordinary = api.draft_dataset(
        "ordinary", write_geojson(tmp_path / "points.geojson", airports_features()))
    assert ordinary.status_code == 201, ordinary.text


def test_sample_manifests_stay_publishable():
    """The sample sources pass the content checks (no false refusals in datasets/), every
    item of a dataset of several too."""
    from catalog.manifest import load_manifest
    from catalog.sources.reader import source_problems

    for manifest in sorted(DATASETS.glob("*.yaml")):
        sources = load_manifest(manifest).sources
        assert sources, manifest.name
        for source in sources:
            assert source_problems(source) == [], source.name


def test_raster_statistics_read_by_blocks_match_numpy(tmp_path, scratch_home):
    """Statistics are accumulated block by block now; they must equal numpy's over the band."""
    manifest = copy_dataset("slope", tmp_path / "work")
    source = tmp_path / "work/sources/slope.tif"
    rng = np.random.default_rng(7)
    data = rng.normal(20, 6, (1300, 1500)).astype("float32")
    data[:400, :300] = -9999  # nodata corner
    with rasterio.open(source, "w", driver="GTiff", width=1500, height=1300, count=1,
                       dtype="float32", crs="EPSG:4326", nodata=-9999, tiled=True,
                       blockxsize=256, blockysize=256,
                       transform=from_bounds(74, 42, 75.5, 43.3, 1500, 1300)) as sink:
        sink.write(data, 1)
    taza("publish", str(manifest), home=scratch_home)
    record = json.loads((scratch_home / "datasets/slope/1/record.json").read_text())
    stats = record["rasters"][0]["bands"][0]["statistics"]
    valid = data[data != -9999].astype("float64")
    assert stats["minimum"] == float(valid.min()) and stats["maximum"] == float(valid.max())
    assert stats["mean"] == pytest.approx(round(valid.mean(), 4), abs=1e-4)
    assert stats["stddev"] == pytest.approx(round(valid.std(), 4), abs=1e-4)
    assert stats["valid_percent"] == round(100 * valid.size / data.size, 3)


@pytest.mark.parametrize("setting, value, rows, expected", [
    ("TAZA_READER_FILE_MB", "1", 100_000, "wrote a file over 1 MB"),
    # 300,000 rows take several seconds of conversion on any machine: far over 1 s.
    ("TAZA_READER_TIMEOUT_SECONDS", "1", 300_000, "took longer than 1 s"),
    ("TAZA_READER_RESULT_BYTES", "100", 10, "an answer over 100 bytes"),
])
def test_reader_output_and_time_limits(tmp_path, monkeypatch, setting, value, rows, expected):
    """The reader's other limits, straight through catalog.sources.reader (a real child)."""
    from catalog.sources.reader import stage_upload
    from catalog.sources.uploads import UploadLimits, UploadOptions

    (tmp_path / "original").mkdir()
    original = big_csv(tmp_path / "original" / "big.csv", rows)
    monkeypatch.setenv(setting, value)
    staged = stage_upload(original, tmp_path / "stage", UploadOptions(), UploadLimits())
    assert staged.source is None
    assert any(expected in f.message for f in staged.findings), staged.findings


# The server itself runs where the kernel refuses new namespaces: its readers cannot isolate.
WITHOUT_NAMESPACES = ("unshare", "--user", "--map-root-user", "sh", "-c",
                      "echo 0 > /proc/sys/user/max_net_namespaces && "
                      "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" \"$@\"")


def test_a_server_that_cannot_isolate_readers_answers_503_and_keeps_nothing(
        tmp_path_factory, tmp_path):
    """Uploads and publishes fail closed through the API too: 503 JSON naming the setting, no
    draft file kept, and the approved draft still waiting (the server is at fault, not it)."""
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is needed (scripts/install-system-deps)")
    home = tmp_path_factory.mktemp("no-isolation")
    with running_api(home, workers=1) as api:
        source = write_geojson(tmp_path / "airports.geojson", airports_features())
        dataset_id, answer = api.draft_dataset("isolation", source)
        assert answer.status_code == 201, answer.text
        for step, user in (("submit", "alice"), ("approve", "rita")):
            assert api.post(f"/api/datasets/{dataset_id}/draft/{step}", user).status_code == 200
        stop_server(api.server)
        api.server = start_server(home, workers=1, wrapper=WITHOUT_NAMESPACES)
        drafts_before = sorted(p.name for p in (home / "stewards" / "drafts").rglob("*"))

        # A changed file (the same one again is not read at all: nothing new to check).
        changed = write_geojson(tmp_path / "changed.geojson", airports_features()[:16])
        refused = api.upload(dataset_id, changed)
        published = api.follow(api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice"))

        assert refused.status_code == 503, refused.text
        assert published["state"] == "failed", published
        for error in (refused.json(), published["error"]):
            assert error["status"] == 503 and "TAZA_READER_ISOLATION" in error["description"]
        assert sorted(p.name for p in (home / "stewards" / "drafts").rglob("*")) == \
            drafts_before
        assert not list((home / "stewards" / "tmp").glob("*"))
        assert not (home / "current.json").exists()
        draft = api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()
        assert draft["state"] == "approved"  # the refused upload changed nothing
