"""Uploads through the stewards' API on the real server: every format, and every bad input of
issue 5 answered with a clear 4xx (never a 500) while what was published before keeps serving."""

from __future__ import annotations

import hashlib
import html
import json
import socket
import stat
import urllib.parse
import warnings
import zipfile

import numpy as np
import pytest
import shapely
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from tests.stewards_support import (
    RUN_PROFILE,
    STATE_PROFILES,
    airports_features,
    api_environment,  # noqa: F401 (an autouse fixture)
    finding_messages,
    make_manifest,
    polygon_features,
    running_api,
    square,
    state_profile,
    wait_for,
    write_csv_lonlat,
    write_csv_wkt,
    write_geojson,
    write_geopackage,
    write_geotiff,
    write_kml,
    write_netcdf,
    write_shapefile_zip,
    zip_bytes,
)

UPLOAD_LIMIT = 8 << 20


@pytest.fixture(scope="module", params=RUN_PROFILE)
def api(request, tmp_path_factory):
    """The server (on the run's profile); tests marked `on_both_engines` run on each engine."""
    home = tmp_path_factory.mktemp("stewards-uploads")
    with state_profile(request, "stewards_uploads") as profile, running_api(
            home, workers=2, TAZA_UPLOAD_MAX_BYTES=UPLOAD_LIMIT, **profile) as running:
        yield running


@pytest.fixture(scope="module")
def published(api, tmp_path_factory):
    """A dataset of ministry-a with version 1 live: bad uploads must not disturb it."""
    folder = tmp_path_factory.mktemp("published")
    dataset_id, answer = api.draft_dataset(
        "guarded", write_geojson(folder / "points.geojson", airports_features()),
        id_field="icao")
    assert answer.status_code == 201, answer.text
    api.review_and_publish(dataset_id)
    # The next draft has a good manifest: the bad uploads below are the only problems.
    assert api.put_manifest(dataset_id, make_manifest(dataset_id, id_field="icao")).ok
    return dataset_id


def assert_still_serving(api, dataset_id: str) -> None:
    items = api.get(f"/ogc/collections/{dataset_id}/items?limit=1")
    assert items.status_code == 200 and items.json()["numberMatched"] == 17
    assert api.get(f"/api/datasets/{dataset_id}").json()["live_version"] == 1


def upload_bad(api, published: str, path, expected: str, status: int = 422, **params):
    """Upload into the published dataset's new draft: refused, named, nothing else changes."""
    answer = api.upload(published, path, **params)
    assert answer.status_code == status, answer.text
    body = answer.json()
    text = json.dumps(body)
    assert expected in text, text
    assert_still_serving(api, published)
    return body


# -- formats -----------------------------------------------------------------------------------

def shapefile(folder):
    return write_shapefile_zip(folder, "airfields")


FORMATS = {
    "zipped Shapefile": (shapefile, "vector", 17),
    "GeoPackage": (lambda f: write_geopackage(f / "parcels.gpkg", polygon_features()), "vector",
                   5),
    "GeoJSON": (lambda f: write_geojson(f / "points.geojson", airports_features()), "vector", 17),
    "CSV lon/lat": (lambda f: write_csv_lonlat(f / "airports.csv"), "vector", 17),
    "CSV WKT": (lambda f: write_csv_wkt(f / "parcels.csv"), "vector", 4),
    "KML": (lambda f: write_kml(f / "airports.kml"), "vector", 17),
    "GeoTIFF": (lambda f: write_geotiff(f / "slope.tif"), "raster", None),
    "NetCDF": (lambda f: write_netcdf(f / "grid.nc"), "raster", None),
}


# Reading a format is the same on both engines; publishing is not (the draft's state, PostGIS
# or SQLite features, pgstac or SQLite STAC): one format runs on both (time budget).
ON_BOTH_ENGINES = "GeoJSON"


@pytest.mark.parametrize("name", [name for name in FORMATS if name != ON_BOTH_ENGINES])
def test_every_format_uploads_and_publishes(api, tmp_path, name):
    upload_and_publish(api, tmp_path, name)


@pytest.mark.parametrize("api", STATE_PROFILES, indirect=True)
def test_geojson_uploads_and_publishes_on_both_engines(api, tmp_path):
    upload_and_publish(api, tmp_path, ON_BOTH_ENGINES)


def upload_and_publish(api, folder, name: str) -> None:
    make, kind, count = FORMATS[name]
    dataset_id, answer = api.draft_dataset("format", make(folder), kind)
    assert answer.status_code == 201, answer.text
    report = answer.json()
    assert report["summary"]["publishable"] and report["source"]["kind"] == kind
    assert api.review_and_publish(dataset_id)["version"] == 1
    if kind == "vector":
        items = api.get(f"/ogc/collections/{dataset_id}/items?limit=1")
        assert items.status_code == 200 and items.json()["numberMatched"] == count
    else:
        coverage = api.get(f"/ogc/collections/{dataset_id}/coverage?f=GTiff&"
                           "subset=Lat(42.2:42.4),Long(74.2:74.4)")
        assert coverage.status_code == 200 and coverage.content[:2] in (b"II", b"MM")
    assert api.get(f"/stac/collections/{dataset_id}").status_code == 200


def test_multipart_upload_of_a_netcdf_variable(api, tmp_path):
    """Multipart body; a two-variable NetCDF needs variable=, and publishes that variable."""
    dataset_id = api.new_id("multipart")
    api.create(dataset_id)
    api.put_manifest(dataset_id, make_manifest(dataset_id, "raster"))
    source = write_netcdf(tmp_path / "grids.nc", variables=2)
    refused = api.upload_multipart(dataset_id, source)
    assert refused.status_code == 422
    assert "choose one with variable=NAME" in json.dumps(refused.json())
    answer = api.upload_multipart(dataset_id, source, variable="slope2")
    assert answer.status_code == 201, answer.text
    assert answer.json()["upload"]["size"] == source.stat().st_size
    assert "NetCDF variable 'slope2' extracted" in json.dumps(answer.json())
    api.review_and_publish(dataset_id)
    assert api.get(f"/ogc/collections/{dataset_id}").status_code == 200


def test_csv_rows_without_coordinates_are_named_by_row_and_line(api, published, tmp_path):
    path = tmp_path / "places.csv"
    path.write_text("name,lon,lat\nA,74.5,42.8\nB,,\nC,abc,42\n")
    body = upload_bad(api, published, path, "row 2 (line 3)")
    assert "row 3 (line 4)" in json.dumps(body)


def test_validation_report_as_json_and_html(api, tmp_path):
    dataset_id, answer = api.draft_dataset("report", write_csv_wkt(tmp_path / "parcels.csv"))
    assert answer.status_code == 201
    report = api.get(f"/api/datasets/{dataset_id}/draft/report", "alice")
    assert report.status_code == 200 and report.json()["summary"]["publishable"]
    page = api.get(f"/api/datasets/{dataset_id}/draft/report?f=html", "alice")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<script" not in page.text and "://" not in page.text  # no scripts, no CDN
    assert '"/static/portal/portal.css"' in page.text
    assert api.get("/static/portal/portal.css").status_code == 200
    assert "CSV: geometry read from the columns 'wkt'" in html.unescape(page.text)
    russian = api.get(f"/api/datasets/{dataset_id}/draft/report?f=html&lang=ru", "alice")
    assert "CSV: геометрия прочитана из столбцов 'wkt'" in html.unescape(russian.text)
    assert "Отчёт о проверке" in russian.text and '<html lang="ru">' in russian.text
    kyrgyz = api.get(f"/api/datasets/{dataset_id}/draft/report?f=html", "alice",
                     headers={"Accept-Language": "ky, en;q=0.5"})
    assert "Текшерүү отчёту" in kyrgyz.text
    refused = api.get(f"/api/datasets/{dataset_id}/draft/report?f=html&lang=de", "alice")
    assert refused.status_code == 400 and "lang=" in refused.json()["description"]
    browser = api.get(f"/api/datasets/{dataset_id}/draft/report", "alice",
                      headers={"Accept": "text/html"})
    assert browser.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("api", STATE_PROFILES, indirect=True)  # the draft's manifest row
def test_manifest_problems_name_field_and_line(api):
    dataset_id = api.new_id("manifest")
    api.create(dataset_id)
    manifest = make_manifest(dataset_id, licence=None, theme="weather")
    answer = api.put_manifest(dataset_id, manifest, as_yaml=True)
    assert answer.status_code == 422
    problems = finding_messages(answer.json())
    assert any(p.startswith("line ") and "field theme" in p and "'weather' is not one of" in p
               for p in problems), problems
    assert any("field licence" in p and "missing" in p for p in problems)
    wrong_id = api.put_manifest(dataset_id, make_manifest("someone-else"))
    assert "must be" in json.dumps(wrong_id.json()) and wrong_id.status_code == 422
    unsupported = api.put(f"/api/datasets/{dataset_id}/draft/manifest", "alice", data=b"x",
                          headers={"Content-Type": "application/xml"})
    assert unsupported.status_code == 415


# -- archives ----------------------------------------------------------------------------------

def test_corrupt_zip(api, published, tmp_path):
    good = write_shapefile_zip(tmp_path, "airfields").read_bytes()
    path = tmp_path / "broken.zip"
    path.write_bytes(good[: len(good) // 2])
    upload_bad(api, published, path, "not a readable zip archive")
    path.write_bytes(b"PK\x03\x04 this is not a zip at all")
    upload_bad(api, published, path, "not a readable zip archive")


def test_zip_bomb_is_refused_before_extraction(api, published, tmp_path):
    path = tmp_path / "bomb.zip"
    path.write_bytes(zip_bytes({"bomb/bomb.shp": b"\0" * (64 << 20), "bomb/bomb.shx": b"",
                                "bomb/bomb.dbf": b"", "bomb/bomb.prj": b""}))
    assert path.stat().st_size < UPLOAD_LIMIT
    body = upload_bad(api, published, path, "zip bomb: compressed")
    assert [f["where"] for f in body["findings"]] == [{"member": "bomb/bomb.shp"}]
    assert not list(api.server.home.glob("stewards/drafts/*/upload/**/bomb.shp"))


def test_zip_declaring_more_than_the_unzipped_limit_is_refused(api, published, tmp_path):
    """Many members under the ratio limit, together past TAZA_UNZIPPED_MAX_BYTES (4 GiB)."""
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        for index in range(5):
            info = zipfile.ZipInfo(f"part{index}.csv")
            bundle.writestr(info, b"x")
    data = bytearray(path.read_bytes())
    # Declare 1 GiB for each member in the central directory (what a bomb's header claims).
    central = data.find(b"PK\x01\x02")
    while central != -1:
        data[central + 24:central + 28] = (1 << 30).to_bytes(4, "little")
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    upload_bad(api, published, path, "zip bomb or oversized archive")


@pytest.mark.parametrize("member", ["../../evil.shp", "/etc/evil.shp", "a/../../evil.shp",
                                    "C:/evil.shp", "..\\..\\evil.shp"])
def test_path_traversal_in_member_names(api, published, tmp_path, member):
    path = tmp_path / "traversal.zip"
    path.write_bytes(zip_bytes({member: b"x", "ok.shx": b"", "ok.dbf": b""}))
    upload_bad(api, published, path, "path traversal")
    assert not list(api.server.home.parent.rglob("evil.shp"))


def test_symlink_member_is_refused(api, published, tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        info = zipfile.ZipInfo("airfields.shp")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(info, "/etc/passwd")
    upload_bad(api, published, path, "symbolic links are not accepted")


def test_shapefile_without_prj(api, published, tmp_path):
    path = write_shapefile_zip(tmp_path, "noprj", with_prj=False)
    upload_bad(api, published, path, "the Shapefile has no .prj")


def test_crs_other_than_4326_is_reprojected_and_said_so(api, tmp_path):
    source = write_shapefile_zip(tmp_path, "utm", crs="EPSG:32643")
    dataset_id, answer = api.draft_dataset("utm", source)
    assert answer.status_code == 201, answer.text
    notices = finding_messages(answer.json(), "notice")
    assert any("EPSG:32643 are reprojected to EPSG:4326" in n for n in notices), notices
    api.review_and_publish(dataset_id)
    feature = api.get(f"/ogc/collections/{dataset_id}/items?limit=1").json()["features"][0]
    lon, lat = feature["geometry"]["coordinates"][:2]
    assert 69 < lon < 81 and 39 < lat < 44  # Kyrgyzstan, in degrees


# -- features ----------------------------------------------------------------------------------

def test_mixed_geometry_types(api, published, tmp_path):
    features = airports_features()[:3] + polygon_features(2)
    body = upload_bad(api, published, write_geojson(tmp_path / "mixed.geojson", features),
                      "mixed geometry types")
    assert "Point (3, first at feature 0)" in json.dumps(body)


@pytest.mark.parametrize("api", STATE_PROFILES, indirect=True)  # PostGIS's geometry column
def test_same_family_is_promoted_to_multi(api, tmp_path):
    features = polygon_features(2)
    features[1]["geometry"] = {"type": "MultiPolygon",
                               "coordinates": [square(75, 42)["coordinates"]]}
    dataset_id, answer = api.draft_dataset("promoted",
                                           write_geojson(tmp_path / "p.geojson", features))
    assert answer.status_code == 201
    assert any("stored as the Multi* type" in n for n in finding_messages(answer.json(),
                                                                          "notice"))


def test_duplicate_ids(api, tmp_path):
    features = airports_features()
    features[5]["properties"]["icao"] = features[2]["properties"]["icao"]
    dataset_id, answer = api.draft_dataset(
        "dupes", write_geojson(tmp_path / "d.geojson", features), id_field="icao")
    assert answer.status_code == 422
    problems = finding_messages(answer.json())
    assert problems == ["feature 5 (icao=UAFE), field icao: duplicate id 'UAFE' in field "
                        "'icao' (first at feature 2)"], problems
    # The same file passes against a manifest whose id_field is unique.
    fixed = api.put_manifest(dataset_id, make_manifest(dataset_id, id_field="name"))
    assert fixed.status_code == 200 and fixed.json()["summary"]["publishable"]


def test_oversized_attribute(api, published, tmp_path):
    features = airports_features()
    features[4]["properties"]["name"] = "x" * (70 * 1024)
    body = upload_bad(api, published, write_geojson(tmp_path / "big.geojson", features),
                      "exceeds the attribute limit of 65,536 bytes")
    where = [f["where"] for f in body["findings"] if f["status"] == "blocking"]
    assert where == [{"feature": 4, "id": "UAFG", "id_field": "icao", "field": "name"}]


BOWTIE = {"type": "Polygon", "coordinates": [[[74, 42], [75, 43], [75, 42], [74, 43], [74, 42]]]}


def test_invalid_geometry_blocks_unless_repair_is_asked(api, published, tmp_path):
    features = polygon_features(3)
    features[1]["geometry"] = BOWTIE
    source = write_geojson(tmp_path / "bowtie.geojson", features)
    body = upload_bad(api, published, source, "Self-intersection")
    assert "upload with repair=geometry" in json.dumps(body)

    dataset_id, _ = api.draft_dataset("repaired", source)
    answer = api.upload(dataset_id, source, repair="geometry")
    assert answer.status_code == 201, answer.text
    repaired = [f for f in answer.json()["findings"] if f["status"] == "repaired"]
    assert len(repaired) == 1 and repaired[0]["where"] == {"feature": 1}
    assert "made valid: Polygon with 5 points became MultiPolygon with 2 part(s)" in \
        repaired[0]["message"]
    api.review_and_publish(dataset_id)
    items = api.get(f"/ogc/collections/{dataset_id}/items").json()["features"]
    assert [f["geometry"]["type"] for f in items] == ["MultiPolygon"] * 3


@pytest.mark.parametrize("geometry, expected", [
    ({"type": "Polygon", "coordinates": []}, "empty geometry"),
    ({"type": "Point", "coordinates": ["NaN", 42]}, "not finite numbers"),
    (None, "has no geometry"),
])
def test_broken_geometry_blocks_even_with_repair(api, published, tmp_path, geometry, expected):
    features = airports_features()[:3]
    features[2]["geometry"] = geometry
    raw = json.dumps({"type": "FeatureCollection", "features": features}).replace('"NaN"', "NaN")
    source = tmp_path / "broken.geojson"
    source.write_text(raw)
    upload_bad(api, published, source, expected, repair="geometry")


# -- limits, formats, parameters ---------------------------------------------------------------

def test_size_limit_answers_413(api, published):
    dataset = f"/api/datasets/{published}/draft/source"
    declared = api.put(dataset, "alice", params={"filename": "big.geojson"},
                       data=b"x" * (UPLOAD_LIMIT + 1))
    assert declared.status_code == 413 and "limit" in declared.json()["description"]

    def chunks():  # no Content-Length: the server counts as it reads
        for _ in range(UPLOAD_LIMIT // (1 << 20) + 2):
            yield b"x" * (1 << 20)

    streamed = api.put(dataset, "alice", params={"filename": "big.geojson"}, data=chunks())
    assert streamed.status_code == 413
    assert not list(api.server.home.glob("stewards/tmp/*.part"))
    assert_still_serving(api, published)


def test_unsupported_format_and_bad_parameters(api, published, tmp_path):
    path = tmp_path / "notes.docx"
    path.write_bytes(b"PK\x03\x04")
    answer = api.upload(published, path)
    assert answer.status_code == 415 and "unsupported file type .docx" in answer.text
    gpkg = tmp_path / "fake.gpkg"
    gpkg.write_text("not sqlite")
    upload_bad(api, published, gpkg, "is not a GeoPackage file")
    for params, expected in (({"repair": "everything"}, "repair="),
                             ({"colour": "blue"}, "unknown query parameter(s): colour")):
        answer = api.upload(published, write_csv_wkt(tmp_path / "p.csv"), **params)
        assert answer.status_code == 400 and expected in answer.json()["description"]
    long_name = api.put(f"/api/datasets/{published}/draft/source", "alice",
                        params={"filename": "a" * 250 + ".gpkg"}, data=b"SQLite format 3\0")
    assert long_name.status_code == 400 and "at most 200 bytes" in long_name.text
    raster_repair = api.upload(published, write_geotiff(tmp_path / "r.tif"), repair="geometry")
    assert raster_repair.status_code == 422
    assert api.get("/api/datasets?colour=blue").status_code == 400


def test_geopackage_and_geojson_give_the_same_findings(api, published, tmp_path):
    """GeoPackages are checked in SQLite batches, other formats feature by feature: the same
    problems must come out, at the same places."""
    features = [{**f, "properties": {"code": f["properties"]["icao"], "name": "n"}}
                for f in airports_features()[:8]]
    for feature in features:
        feature["geometry"] = square(*feature["geometry"]["coordinates"][:2])
    features[1]["geometry"] = BOWTIE
    features[2]["geometry"] = {"type": "Polygon", "coordinates": []}
    features[3]["geometry"] = None
    features[4]["properties"]["code"] = features[0]["properties"]["code"]
    features[5]["properties"]["name"] = "y" * (70 * 1024)
    assert api.put_manifest(published, make_manifest(published, id_field="code")).ok
    reports = {}
    for path in (write_geojson(tmp_path / "bad.geojson", features),
                 write_geopackage(tmp_path / "bad.gpkg", features)):
        body = upload_bad(api, published, path, "duplicate id")
        reports[path.suffix] = sorted((f["location"], f["message"]) for f in body["findings"]
                                      if f["status"] == "blocking")
    assert reports[".geojson"] == reports[".gpkg"]
    assert len(reports[".gpkg"]) == 5, reports[".gpkg"]
    assert api.put_manifest(published, make_manifest(published, id_field="icao")).ok


# -- map preview and extent (issue 17) ---------------------------------------------------------

def test_projected_raster_has_extent_footprint_and_preview_image(api, tmp_path):
    """The isolated reader writes the preview while checking the upload; the API serves it."""
    dataset_id, answer = api.draft_dataset("preview-grid",
                                           write_geotiff(tmp_path / "utm.tif", crs="EPSG:32643"),
                                           "raster")
    assert answer.status_code == 201, answer.text
    extent = answer.json()["source"]["facts"]["extent"]
    assert extent["crs"] == "EPSG:32643"
    assert extent["bbox"] == [400000, 4650000, 480000, 4730000]
    west, south, east, north = extent["wgs84"]
    assert 73.7 < west < 73.8 and 41.9 < south < 42.0 and 74.7 < east < 74.8
    assert 42.7 < north < 42.8
    preview = api.get(f"/api/datasets/{dataset_id}/draft/preview", "alice")
    assert preview.status_code == 200, preview.text
    assert preview.headers["Content-Type"] == "application/geo+json"
    body = preview.json()
    assert body["kind"] == "raster"
    footprint = shapely.geometry.shape(body["features"]["features"][0]["geometry"])
    assert footprint.geom_type == "Polygon"
    assert footprint.bounds == pytest.approx((west, south, east, north), abs=1e-5)
    corners = body["image"]["coordinates"]
    assert corners[0] == pytest.approx([west, north]) and corners[2] == pytest.approx([east, south])
    image = api.get(f"/api/datasets/{dataset_id}/draft/preview.png", "alice")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    with warnings.catch_warnings(), MemoryFile(image.content) as memory, memory.open() as png:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG has no georeference
        assert png.count == 4 and max(png.width, png.height) <= 256
        alpha, grey = png.read(4), png.read(1)
    assert alpha.max() == 255 and alpha.min() == 0  # the rotated grid leaves transparent corners
    assert len(set(grey[alpha == 255].ravel().tolist())) > 10  # the data's values, not a blank
    page = api.get(f"/api/datasets/{dataset_id}/draft/report?f=html", "alice").text
    assert "x 400,000 … 480,000,\n      y 4,650,000 … 4,730,000 (EPSG:32643)" in page


def test_vector_preview_holds_the_features_in_wgs84(api, tmp_path):
    source = write_shapefile_zip(tmp_path, "airfields", crs="EPSG:32643")
    dataset_id, answer = api.draft_dataset("preview-points", source, id_field="icao")
    assert answer.status_code == 201, answer.text
    assert answer.json()["source"]["facts"]["extent"]["crs"] == "EPSG:32643"
    body = api.get(f"/api/datasets/{dataset_id}/draft/preview", "alice").json()
    assert body["kind"] == "vector" and body["shown"] == body["total"] == 17
    drawn = sorted(tuple(f["geometry"]["coordinates"]) for f in body["features"]["features"])
    original = sorted(tuple(f["geometry"]["coordinates"][:2]) for f in airports_features())
    np.testing.assert_allclose(np.array(drawn), np.array(original), atol=1e-5)
    lons, lats = zip(*original, strict=True)
    wgs84 = answer.json()["source"]["facts"]["extent"]["wgs84"]
    # The lon/lat box around the data's own (UTM) box: it holds every point, and a little more.
    west, south, east, north = wgs84
    assert west <= min(lons) and south <= min(lats) and east >= max(lons) and north >= max(lats)
    assert max(min(lons) - west, min(lats) - south, east - max(lons), north - max(lats)) < 0.5


def test_preview_is_for_the_drafts_readers_only_and_missing_ones_are_404(api):
    dataset_id = api.new_id("preview-none")
    api.create(dataset_id)
    api.put_manifest(dataset_id, make_manifest(dataset_id))
    for suffix in ("", ".png"):
        missing = api.get(f"/api/datasets/{dataset_id}/draft/preview{suffix}", "alice")
        assert missing.status_code == 404 and "no map preview" in missing.json()["description"]
        anonymous = api.get(f"/api/datasets/{dataset_id}/draft/preview{suffix}")
        assert anonymous.status_code in (401, 404) and anonymous.json()["description"]
    unknown = api.get(f"/api/datasets/{dataset_id}/draft/preview?bbox=1,2,3,4", "alice")
    assert unknown.status_code == 400 and "bbox" in unknown.json()["description"]


# -- resumable uploads (issue 17) --------------------------------------------------------------

def sha256_fingerprint(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def blocks_fingerprint(data: bytes, block: int = 8 << 20) -> str:
    """What the stewards' page names: the SHA-256 of its 8 MiB blocks' SHA-256 digests."""
    digests = b"".join(hashlib.sha256(data[at:at + block]).digest()
                       for at in range(0, len(data), block))
    return f"sha256-blocks:{hashlib.sha256(digests).hexdigest()}"


def send_cut_piece(api, dataset_id: str, data: bytes, sent: int,
                   fingerprint: str | None = None) -> None:
    """PUT the whole file as one piece but send only its first `sent` bytes, then hang up
    (a real cut: the server sees the body end early). With the file's fingerprint unless
    `fingerprint` is "" (an old client's piece)."""
    url = urllib.parse.urlsplit(api.url)
    path = f"/api/datasets/{dataset_id}/draft/source?filename=airports.geojson"
    if fingerprint != "":
        path += f"&fingerprint={fingerprint or sha256_fingerprint(data)}"
    head = (f"PUT {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {api.tokens['alice']}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
            f"Content-Range: bytes 0-{len(data) - 1}/{len(data)}\r\n\r\n")
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(head.encode() + data[:sent])


def put_piece(api, dataset_id: str, data: bytes, start: int, end: int, total: int | None = None,
              fingerprint: str | None = None, **headers):
    """One piece of `data`, naming its fingerprint (`fingerprint` "" names none)."""
    params = {"filename": "airports.geojson"}
    if fingerprint != "":
        params["fingerprint"] = fingerprint or sha256_fingerprint(data)
    return api.put(f"/api/datasets/{dataset_id}/draft/source", "alice",
                   params=params, data=data[start:end + 1],
                   headers={"Content-Range": f"bytes {start}-{end}/{total or len(data)}",
                            **headers})


def test_a_cut_upload_resumes_where_it_stopped(api, tmp_path):
    dataset_id = api.new_id("resume")
    api.create(dataset_id)
    api.put_manifest(dataset_id, make_manifest(dataset_id, id_field="icao"))
    data = write_geojson(tmp_path / "airports.geojson", airports_features()).read_bytes()
    half = len(data) // 2
    send_cut_piece(api, dataset_id, data, half)
    resume_url = f"/api/datasets/{dataset_id}/draft/source/resume"

    def arrived():  # the server reads the cut body until it sees its end
        answer = api.get(resume_url, "alice")
        upload = answer.json()["upload"] if answer.ok else None
        return upload if upload and upload["received"] == half else None

    progress = wait_for(arrived, 30)
    assert progress == {"filename": "airports.geojson", "received": half, "total": len(data),
                        "fingerprint": sha256_fingerprint(data), "complete": False}
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()["upload"] is None
    # Hostile ranges: a gap, an overlap, past the limit, lengths that disagree, a stranger.
    gap = put_piece(api, dataset_id, data, half + 10, len(data) - 1)
    assert gap.status_code == 416 and gap.json()["received"] == half
    assert f"from byte {half}" in gap.json()["description"]
    overlap = put_piece(api, dataset_id, data, half - 10, len(data) - 1)
    assert overlap.status_code == 416 and overlap.json()["received"] == half
    too_big = put_piece(api, dataset_id, data, half, len(data) - 1, total=UPLOAD_LIMIT + 1)
    assert too_big.status_code == 413 and "exceeds the limit" in too_big.json()["description"]
    outside = put_piece(api, dataset_id, data, half, len(data) + 5)
    assert outside.status_code in (400, 416) and outside.json()["description"]
    malformed = put_piece(api, dataset_id, data, half, len(data) - 1,
                          **{"Content-Range": f"bytes {half}-/{len(data)}"})
    assert malformed.status_code == 400 and "Content-Range" in malformed.json()["description"]
    stranger = api.put(f"/api/datasets/{dataset_id}/draft/source",
                       params={"filename": "airports.geojson",
                               "fingerprint": sha256_fingerprint(data)}, data=data[half:],
                       headers={"Content-Range": f"bytes {half}-{len(data) - 1}/{len(data)}"})
    assert stranger.status_code == 401
    assert api.get(resume_url, "alice").json()["upload"]["received"] == half
    # The rest, in two pieces: 202 with the count, then the whole file checked once.
    middle = half + (len(data) - half) // 2
    step = put_piece(api, dataset_id, data, half, middle - 1)
    assert step.status_code == 202 and step.json()["upload"]["received"] == middle
    done = put_piece(api, dataset_id, data, middle, len(data) - 1)
    assert done.status_code == 201, done.text
    upload = done.json()["upload"]
    assert upload["size"] == len(data)
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert done.json()["source"]["facts"]["feature_count"] == 17
    assert api.get(resume_url, "alice").json() == {"upload": None}
    # The same file again: no second check (the report stays the one made before).
    again = api.upload(dataset_id, tmp_path / "airports.geojson")
    assert again.status_code == 201
    assert again.json()["generated_at"] == done.json()["generated_at"]
    assert again.json()["upload"]["received_at"] == upload["received_at"]


def send_cut_whole_file(api, dataset_id: str, data: bytes, sent: int) -> str:
    """An old client's upload: the whole file as one piece, no fingerprint; only `sent` bytes
    go before the client stops sending. The server's answer's status line."""
    url = urllib.parse.urlsplit(api.url)
    path = f"/api/datasets/{dataset_id}/draft/source?filename=airports.geojson"
    head = (f"PUT {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {api.tokens['alice']}\r\nConnection: close\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
            f"Content-Range: bytes 0-{len(data) - 1}/{len(data)}\r\n\r\n")
    with socket.create_connection((url.hostname, url.port), timeout=60) as connection:
        connection.sendall(head.encode() + data[:sent])
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def test_a_resume_goes_on_only_with_the_same_file(api, tmp_path):
    """Issue 13: half of file X arrived, then a different file Y of the same name and size is
    sent: it can never go on from X's bytes, and nothing mixed from both reaches the draft."""
    dataset_id = api.new_id("same-size")
    api.create(dataset_id)
    api.put_manifest(dataset_id, make_manifest(dataset_id, id_field="icao"))
    features = airports_features()
    first = write_geojson(tmp_path / "x.geojson", features).read_bytes()
    for feature in (features[0], features[-1]):  # same length, in both halves
        feature["properties"]["name"] = feature["properties"]["name"][::-1]
    other = write_geojson(tmp_path / "y.geojson", features).read_bytes()
    half = len(first) // 2
    assert len(other) == len(first)
    assert other[:half] != first[:half] and other[half:] != first[half:]
    resume_url = f"/api/datasets/{dataset_id}/draft/source/resume"
    assert put_piece(api, dataset_id, first, 0, half - 1).status_code == 202
    # Y names its own fingerprint: refused, X's upload stays as it was.
    refused = put_piece(api, dataset_id, other, half, len(other) - 1)
    assert refused.status_code == 409, refused.text
    assert (refused.json()["messageCode"], refused.json()["params"]) == (
        "upload_fingerprint_differs", {"filename": "airports.geojson"})
    assert api.get(resume_url, "alice").json()["upload"] == {
        "filename": "airports.geojson", "received": half, "total": len(first),
        "fingerprint": sha256_fingerprint(first), "complete": False}
    # An old client names none: a piece that is not the whole file is refused.
    missing = put_piece(api, dataset_id, other, half, len(other) - 1, fingerprint="")
    assert missing.status_code == 400 and \
        missing.json()["messageCode"] == "upload_fingerprint_missing", missing.text
    malformed = put_piece(api, dataset_id, other, half, len(other) - 1, fingerprint="md5:00")
    assert malformed.status_code == 400 and \
        malformed.json()["messageCode"] == "upload_fingerprint_malformed", malformed.text
    # A client naming X's fingerprint while sending Y's bytes: the finished file (X's first
    # half, Y's second: a file nobody sent) is not X, so it is refused and dropped.
    lying = put_piece(api, dataset_id, other, half, len(other) - 1,
                      fingerprint=sha256_fingerprint(first))
    assert lying.status_code == 409, lying.text
    assert lying.json()["messageCode"] == "upload_fingerprint_mismatch"
    assert api.get(resume_url, "alice").json() == {"upload": None}
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()["upload"] is None
    assert not list((api.server.home / "stewards" / "tmp").glob("upload-*"))
    # Y from byte 0, in pieces named by the page's kind of fingerprint: Y is what arrives.
    blocks = blocks_fingerprint(other)
    assert put_piece(api, dataset_id, other, 0, half - 1, fingerprint=blocks).status_code == 202
    assert api.get(resume_url, "alice").json()["upload"]["fingerprint"] == blocks
    done = put_piece(api, dataset_id, other, half, len(other) - 1, fingerprint=blocks)
    assert done.status_code == 201, done.text
    assert done.json()["upload"]["sha256"] == hashlib.sha256(other).hexdigest()
    # An old client's whole-file piece without a fingerprint is an ordinary upload: cut, it
    # leaves nothing to resume; whole, it arrives.
    assert send_cut_whole_file(api, dataset_id, first, half).split(" ")[1] == "400"
    assert api.get(resume_url, "alice").json() == {"upload": None}
    whole = put_piece(api, dataset_id, first, 0, len(first) - 1, fingerprint="")
    assert whole.status_code == 201, whole.text
    assert whole.json()["upload"]["sha256"] == hashlib.sha256(first).hexdigest()
    # A whole upload naming a fingerprint must be that file.
    wrong = api.put(f"/api/datasets/{dataset_id}/draft/source", "alice", data=other,
                    params={"filename": "airports.geojson",
                            "fingerprint": sha256_fingerprint(first)})
    assert wrong.status_code == 409, wrong.text
    assert wrong.json()["messageCode"] == "upload_fingerprint_mismatch"
    draft = api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()
    assert draft["upload"]["sha256"] == hashlib.sha256(first).hexdigest(), draft["upload"]


@pytest.mark.parametrize("pieces", [[1], [3, 5, 7], [256, 1, 2048, 7]])
def test_both_fingerprints_of_a_file_fed_in_any_pieces(pieces):
    """resume.Fingerprints over 20 MiB (three 8 MiB blocks, the last short), however the
    bytes come, gives the whole file's SHA-256 and the page's block fingerprint."""
    from catalog.stewards.resume import Fingerprints

    data = np.random.default_rng(13).bytes(20 << 20)
    fingerprints, at, turn = Fingerprints(), 0, 0
    while at < len(data):
        size = pieces[turn % len(pieces)] * 4099
        fingerprints.update(data[at:at + size])
        at, turn = at + size, turn + 1
    assert fingerprints.matches(sha256_fingerprint(data))
    assert fingerprints.matches(blocks_fingerprint(data))
    assert not fingerprints.matches(blocks_fingerprint(data[:-1] + b"\0"))
    assert not fingerprints.matches(sha256_fingerprint(data[:-1]))
