"""Published files in an S3 bucket (TAZA_ASSETS_URL=s3://...): a real S3 server (a private
single-node Ceph RADOS Gateway, catalog/cluster/objectstore.py), the samples published into it,
and the real server (`taza serve`) reading them with GDAL's /vsis3/ and streaming /assets.

One object store, one published home and one server for the whole module; the failed
publish runs last, since it publishes a second version into that home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from catalog.cluster import objectstore
from catalog.store.s3_assets import OBJECTS_FILE, BucketLocation, ObjectStoreSettingsError
from tests.conftest import RASTER_IDS, ROOT, SAMPLE_IDS, copy_dataset, start_server, stop_server
from tests.golden import answers, load, observe
from tests.golden.cases import CASES
from tests.test_http import REFUSED_ASSET_PATHS

BUCKET = "taza-test"
ASSETS_URL = f"s3://{BUCKET}/catalog"
# The golden groups whose answers read published files: each must answer as recorded on disk.
FILE_GROUPS = ("assets", "tiles", "ogc-coverages", "ogc-processes", "portal", "api")
COG = "/assets/elevation/1/elevation.tif"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[objectstore.ObjectStore]:
    running = objectstore.start(tmp_path_factory.mktemp("objectstore"))
    try:
        yield running
    finally:
        objectstore.stop(running.folder)


@pytest.fixture(scope="module")
def s3_env(store) -> dict[str, str]:
    env = store.environment() | {"TAZA_ASSETS_URL": ASSETS_URL}
    _client(env).create_bucket(Bucket=BUCKET)
    return env


@pytest.fixture(scope="module")
def s3_home(tmp_path_factory, s3_env) -> Path:
    home = tmp_path_factory.mktemp("s3-home")
    _taza("publish", "--all", home=home, env=s3_env)
    return home


@pytest.fixture(scope="module")
def s3_server(s3_home, s3_env):
    running = start_server(s3_home, env=s3_env)
    yield running
    stop_server(running)


def _taza(*args: str, home: Path, env: dict[str, str],
          check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "catalog.cli", *args], cwd=ROOT,
                            env=dict(os.environ, TAZA_HOME=str(home), **env),
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"taza {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _client(env: dict[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        region_name=env["AWS_DEFAULT_REGION"])


def _keys(env: dict[str, str], prefix: str) -> dict[str, dict]:
    listing = _client(env).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"]: item for item in listing.get("Contents", [])}


def test_published_files_are_in_the_bucket_not_on_disk(s3_home, s3_env):
    for dataset_id in SAMPLE_IDS:
        folder = s3_home / "datasets" / dataset_id / "1"
        record = json.loads((folder / "record.json").read_text())
        where = json.loads((folder / OBJECTS_FILE).read_text())
        assert where["bucket"] == BUCKET
        assert where["prefix"].startswith(f"catalog/{dataset_id}/1/")
        objects = _keys(s3_env, where["prefix"])
        for asset in record["assets"]:
            assert objects[where["prefix"] + asset["file"]]["Size"] == asset["size"]
            # Only the GeoPackage stays on disk: the FeatureStore reads it as SQLite.
            kept = asset["media_type"] == "application/geopackage+sqlite3"
            assert (folder / asset["file"]).exists() == kept, asset["file"]
        assert where["prefix"] + "manifest.yaml" in objects
    for dataset_id in RASTER_IDS:
        assert not list((s3_home / "datasets" / dataset_id / "1").glob("*.tif"))


def test_answers_that_read_files_are_those_recorded_on_disk(s3_server):
    """The golden answers (recorded with files on disk) of every group that reads a file:
    downloads with Range and 416, tiles, coverages (whole GeoTIFF, subsets, CoverageJSON),
    processes, point values, dataset pages, /api. Only the ETag's form differs: S3's content
    hash where werkzeug writes "<mtime>-<size>-<adler32>" (both masked alike)."""
    cases = [case for case in CASES if case.group in FILE_GROUPS]
    observed = observe(s3_server.url, cases)
    found = []
    for case in cases:
        expected = answers.expected_entry(load(case.group), case.key)
        actual = observed[case.key]
        headers = actual.get("headers", {})
        for name, value in headers.items():
            # an S3 (MD5) ETag, on a file streamed from the bucket
            if name.lower() == "etag" and len(value.strip('"')) == 32:
                headers[name] = "<file etag>"
        found += [f"{case.key}: {line}" for line in answers.differences(expected, actual)]
    assert not found, "\n".join(found)


def test_range_head_etag_and_416_behave_as_on_disk(s3_server, server):
    whole = server.get(COG).content
    assert s3_server.get(COG).content == whole
    size = len(whole)
    for spec, start, stop in (("bytes=0-99", 0, 100), ("bytes=1000-", 1000, size),
                              ("bytes=-500", size - 500, size),
                              (f"bytes={size - 10}-{size + 99}", size - 10, size)):
        on_disk = server.get(COG, headers={"Range": spec})
        in_bucket = s3_server.get(COG, headers={"Range": spec})
        assert in_bucket.status_code == on_disk.status_code == 206, spec
        assert in_bucket.content == on_disk.content == whole[start:stop], spec
        assert in_bucket.headers["Content-Range"] == on_disk.headers["Content-Range"]
    refused = s3_server.get(COG, headers={"Range": f"bytes={size}-"})
    on_disk = server.get(COG, headers={"Range": f"bytes={size}-"})
    assert refused.status_code == on_disk.status_code == 416
    assert refused.json() == on_disk.json()
    head = requests.head(s3_server.url + COG, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == size
    etag = s3_server.get(COG).headers["ETag"]
    assert s3_server.get(COG, headers={"If-None-Match": etag}).status_code == 304
    assert s3_server.get(COG).headers["Cache-Control"] == server.get(COG).headers["Cache-Control"]


def test_gdal_reads_the_cog_through_assets(s3_server, server):
    """gdalinfo /vsicurl/ (HTTP Range reads) sees the same raster, pixel checksums included."""
    def info(base: str) -> dict:
        result = subprocess.run(["gdalinfo", "-json", "-checksum", f"/vsicurl/{base}{COG}"],
                                capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"))
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        return {key: document[key] for key in ("size", "geoTransform", "coordinateSystem")} | {
            "bands": [(band["type"], band["checksum"]) for band in document["bands"]]}

    assert info(s3_server.url) == info(server.url)


@pytest.mark.parametrize("path", [
    *REFUSED_ASSET_PATHS, f"/assets/elevation/1/{OBJECTS_FILE}",
    f"/assets/elevation/1/..%2F{OBJECTS_FILE}", "/assets/elevation/1/%2e%2e",
])
def test_no_path_traversal_or_unlisted_files(s3_server, path):
    response = s3_server.get(path, allow_redirects=False)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("url", ["s3://", "http://bucket/x", "s3://bucket/a/../b",
                                 "s3://bucket/x?y=1"])
def test_a_bad_assets_url_is_refused_by_name(url):
    with pytest.raises(ObjectStoreSettingsError, match="TAZA_ASSETS_URL"):
        BucketLocation.parse(url)


def test_a_publish_failing_midway_leaves_the_previous_version_serving(
        s3_server, s3_home, s3_env, store, tmp_path):
    """The bucket refuses the manifest copy, uploaded after the COG: the publish fails, the
    COG it uploaded is removed, nothing is committed and version 1 keeps serving. Published
    again once allowed, version 2 gets new keys: version 1's objects are not overwritten."""
    before = s3_server.get("/healthz").json()
    cog = s3_server.get(COG).content
    first = _keys(s3_env, "catalog/elevation/1/")
    manifest = copy_dataset("elevation", tmp_path / "work")
    data = yaml.safe_load(manifest.read_text())
    data["attribution"] = data.get("attribution", "") + " (revised)"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    client = _client(s3_env)
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*manifest.yaml"}]}))
    try:
        failed = _taza("publish", str(manifest), home=s3_home, env=s3_env, check=False)
    finally:
        client.delete_bucket_policy(Bucket=BUCKET)
    assert failed.returncode != 0
    assert "manifest.yaml" in failed.stderr and "Traceback" not in failed.stderr
    assert s3_server.get("/healthz").json() == before
    assert s3_server.get(COG).content == cog
    assert _keys(s3_env, "catalog/elevation/2/") == {}  # the uploaded COG was taken back
    assert not (s3_home / "datasets" / "elevation" / "2").exists()

    _taza("publish", str(manifest), home=s3_home, env=s3_env)
    assert s3_server.get("/assets/elevation/2/elevation.tif").status_code == 200
    assert s3_server.get(COG).status_code == 404  # not live any more, though still stored
    assert {key: item["ETag"] for key, item in _keys(s3_env, "catalog/elevation/1/").items()} \
        == {key: item["ETag"] for key, item in first.items()}


def test_files_answer_503_json_while_the_object_store_is_down(s3_server, store):
    """Last: it stops the store's gateway. A file answers 503 naming the problem, never a 500
    or a 200 cut short (the first GET is made before the answer starts)."""
    from catalog.cluster.processes import stop_process

    stop_process(store.pids()["rgw"])
    for path in ("/assets/elevation/2/elevation.tif", "/assets/settlements/1/settlements.geojson"):
        response = s3_server.get(path)
        assert response.status_code == 503, path
        assert "storage" in response.json()["description"]
