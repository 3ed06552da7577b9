"""Nodes that share no catalog home (issue 13): on the PostgreSQL + object-store profile each app
node, the worker and each publisher has a TAZA_HOME of its own, used as cache and scratch only.
Versions' records and static STAC trees come from the database
(catalog/store/release_records_postgresql.py), files from the bucket
(catalog/store/s3_assets.py).

One cluster for the module (catalog/cluster/local.py with `own_homes`): a private PostgreSQL
database of the session's server, a memstore Ceph RADOS Gateway and two nodes behind nginx, over
a copy of the published samples moved in with `taza migrate --assets` (so the nodes start with
empty homes and everything they serve was copied by migrate). Loopback only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import requests

from catalog.cluster.local import ASSETS_URL, LocalCluster
from catalog.store.harvest_sources_postgresql import PostgresHarvestSources
from tests.conftest import ROOT, SOURCES, copy_dataset, free_port
from tests.stewards_support import Api, add_accounts
from tests.test_harvest import ckan  # noqa: F401 - the local CKAN portal (module fixture)

DATABASE = "own_homes"
# The source of its `taza migrate` is an embedded copy of published_home (files, not rows);
# the cluster itself runs on PostgreSQL (and a bucket) on either test profile.
pytestmark = pytest.mark.embedded_only(
    "migrates an embedded copy of published_home (its release files and SQLite state) into "
    "the cluster's PostgreSQL; the cluster is on the PostgreSQL profile in both test profiles")
PROFILE = ("TAZA_DATABASE_URL", "TAZA_ASSETS_URL")


def _taza(*args: str, home: Path, env: dict[str, str],
          check: bool = True) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in PROFILE}
    result = subprocess.run([sys.executable, "-m", "catalog.cli", *args], cwd=ROOT,
                            env=environment | env | {"TAZA_HOME": str(home)},
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"taza {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def cluster(published_home: Path, tmp_path_factory, private_postgres) -> Iterator[LocalCluster]:
    folder = tmp_path_factory.mktemp("own-homes")
    shutil.copytree(published_home, folder / "home", ignore=shutil.ignore_patterns("run", "cache"))
    private_postgres.drop_database(DATABASE)
    url = private_postgres.create_database(DATABASE)
    running = LocalCluster(folder, free_port(), database_url=url, object_store=True,
                           own_homes=True, objectstore_kind="memstore")
    try:
        # The nodes run no jobs: a publish through /api is the worker's (home of its own),
        # and so are scheduled harvests (its scheduler checks every 0.5 s here).
        running.up(node_count=2, environment={"TAZA_JOB_WORKERS": "0",
                                              "TAZA_HARVEST_CHECK_SECONDS": "0.5"})
        # The samples, published on disk, moved into the database and the bucket: the only
        # home that ever held them is the publishers' (folder/home), which no node reads.
        env = running.environment()
        moved = _taza("migrate", "--to", url, "--assets", ASSETS_URL,
                      home=running.home, env={k: v for k, v in env.items() if k not in PROFILE})
        assert "version records copied: 0" not in moved.stdout, moved.stdout
        assert "static STAC trees copied: 0" not in moved.stdout, moved.stdout
        live = json.loads((running.home / "current.json").read_text())["release"]
        for node in running.nodes:
            _wait_for(lambda node=node: _health(node.url)["release"] == live)
        yield running
    finally:
        running.down()
        private_postgres.drop_database(DATABASE)


@pytest.fixture(scope="module")
def tokens(cluster: LocalCluster, tmp_path_factory) -> dict[str, str]:
    """The test accounts, made once in the cluster's database (`taza users` on it)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in cluster.environment().items():
            patch.setenv(name, value)
        return add_accounts(tmp_path_factory.mktemp("accounts-home"))


def _health(url: str) -> dict:
    return requests.get(f"{url}/healthz", timeout=10).json()


def _wait_for(check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def _static_collection(url: str, theme: str, dataset_id: str) -> dict:
    answer = requests.get(f"{url}/stac/{theme}/{dataset_id}/collection.json", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _serves_version(url: str, dataset_id: str, version: int, features: int) -> None:
    """Everything a client reads of a vector version, from one node."""
    items = requests.get(f"{url}/ogc/collections/{dataset_id}/items", params={"limit": 100},
                         timeout=30).json()
    assert items["numberMatched"] == features
    collection = requests.get(f"{url}/stac/collections/{dataset_id}", timeout=30)
    assert collection.status_code == 200, collection.text
    stac_items = requests.get(f"{url}/stac/collections/{dataset_id}/items", timeout=30).json()
    assert stac_items["features"], stac_items
    item = requests.get(f"{url}/stac/collections/{dataset_id}/items/"
                        f"{stac_items['features'][0]['id']}", timeout=30)
    assert item.status_code == 200, item.text
    static = _static_collection(url, "infrastructure", dataset_id)
    assert static["version"] == str(version)
    for name in (f"{dataset_id}.gpkg", f"{dataset_id}.geojson"):
        download = requests.get(f"{url}/assets/{dataset_id}/{version}/{name}", timeout=30)
        assert download.status_code == 200, (name, download.text[:200])
        if name.endswith(".geojson"):
            assert len(download.json()["features"]) == features
        ranged = requests.get(f"{url}/assets/{dataset_id}/{version}/{name}",
                              headers={"Range": "bytes=0-15"}, timeout=30)
        assert ranged.status_code == 206
        assert ranged.content == download.content[:16]


def test_nodes_start_with_empty_homes_and_serve_everything(cluster: LocalCluster) -> None:
    node_a, node_b = cluster.nodes
    for node in cluster.nodes:
        home = cluster.node_home(node)
        assert home != cluster.home and not (home / "datasets").exists()
        assert not (home / "releases").exists() and not (home / "current.json").exists()
    _serves_version(node_b.url, "airports", 1, 17)
    # A raster: its COG through /assets with Range, and the static STAC tree's root.
    cog = requests.get(f"{node_b.url}/assets/elevation/1/elevation.tif",
                       headers={"Range": "bytes=0-3"}, timeout=30)
    assert cog.status_code == 206 and cog.content in (b"II*\x00", b"MM\x00*")
    root = requests.get(f"{node_b.url}/stac/catalog.json", timeout=30)
    assert root.status_code == 200 and root.json()["type"] == "Catalog"
    assert requests.get(f"{node_b.url}/stac/nothing/catalog.json", timeout=30).status_code == 404
    # Still no version or release folder in either node's home: only caches.
    for node in cluster.nodes:
        assert not (cluster.node_home(node) / "datasets").exists()
        assert not (cluster.node_home(node) / "releases").exists()


def test_a_publish_from_another_home_is_served_by_both_nodes_within_two_seconds(
        cluster: LocalCluster, tmp_path: Path) -> None:
    node_a, node_b = cluster.nodes
    before = _health(node_b.url)["release"]
    sources = tmp_path / "changed"
    manifest = copy_dataset("airports", sources)
    airports = json.loads((sources / "sources" / "airports.geojson").read_text())
    airports["features"] = airports["features"][:5]
    (sources / "sources" / "airports.geojson").write_text(json.dumps(airports))
    publisher = tmp_path / "publisher-home"  # empty: another machine's
    _taza("publish", str(manifest), home=publisher, env=cluster.environment())
    time.sleep(2.0)
    for node in cluster.nodes:
        assert _health(node.url)["release"] == before + 1, node.name
        _serves_version(node.url, "airports", 2, 5)
    # The version's history is known everywhere: a rollback through node A's API (node A's
    # home has never held version 1) is served by node B within 2 s.
    env = cluster.environment()
    _taza("users", "add", "own-homes-admin", "--role", "admin", home=publisher, env=env)
    token = _taza("users", "token", "own-homes-admin", home=publisher, env=env).stdout.strip()
    rolled = requests.post(f"{node_a.url}/api/datasets/airports/rollback", json={"version": 1},
                           headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert rolled.status_code == 200, rolled.text
    time.sleep(2.0)
    assert _health(node_b.url)["release"] == rolled.json()["release"]
    _serves_version(node_b.url, "airports", 1, 17)


def test_a_purge_from_another_home_removes_the_objects_and_the_record(
        cluster: LocalCluster, tmp_path: Path) -> None:
    """After the test above: airports version 2 is not live (rolled back). A purge from an
    empty home (that never held its folder) removes its objects by the database's prefix."""
    env = cluster.environment()
    with psycopg.connect(env["TAZA_DATABASE_URL"]) as connection:
        objects = connection.execute("SELECT objects FROM taza_state.versions WHERE dataset = "
                                     "'airports' AND version = 2").fetchone()[0]
    where = json.loads(objects)
    bucket = _bucket(env)
    assert bucket.list_objects_v2(Bucket=where["bucket"], Prefix=where["prefix"])["KeyCount"]
    _taza("purge", "airports", "2", "--reason", "a test of homes of their own",
          home=tmp_path / "purger-home", env=env)
    assert bucket.list_objects_v2(Bucket=where["bucket"], Prefix=where["prefix"])["KeyCount"] == 0
    with psycopg.connect(env["TAZA_DATABASE_URL"]) as connection:
        row = connection.execute("SELECT record, purged FROM taza_state.versions WHERE "
                                 "dataset = 'airports' AND version = 2").fetchone()
    assert row == (None, True)
    # Any other home now lists version 1 alone as released.
    listed = _taza("list", home=tmp_path / "lister-home", env=env).stdout
    assert f"{'airports':28} version 1 (versions: 1)" in listed, listed


def _bucket(env: dict[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        region_name=env["AWS_DEFAULT_REGION"])

def test_a_draft_uploaded_through_node_a_is_reviewed_on_b_and_published_by_the_worker(
        cluster: LocalCluster, tokens: dict[str, str]) -> None:
    node_a, node_b = cluster.nodes
    through_a = Api(SimpleNamespace(url=node_a.url), tokens)
    through_b = Api(SimpleNamespace(url=node_b.url), tokens)
    dataset_id, uploaded = through_a.draft_dataset("own-homes", SOURCES / "airports.geojson")
    assert uploaded.status_code in (200, 201), uploaded.text
    assert uploaded.json()["summary"]["publishable"], uploaded.text
    # In the bucket by content: the upload is the blob named by its SHA-256.
    draft, sha256 = uploaded.json()["draft"], uploaded.json()["upload"]["sha256"]
    blobs = _bucket(cluster.environment()).list_objects_v2(
        Bucket="taza", Prefix=f"catalog/drafts/{draft}/blobs/")
    assert f"catalog/drafts/{draft}/blobs/{sha256}" in {o["Key"] for o in blobs["Contents"]}
    # Node B reads the draft node A received: its report and its preview.
    report = through_b.get(f"/api/datasets/{dataset_id}/draft/report", "alice")
    assert report.status_code == 200 and report.json()["upload"]["filename"] == "airports.geojson"
    for step, user in (("submit", "alice"), ("approve", "rita")):
        answer = through_b.post(f"/api/datasets/{dataset_id}/draft/{step}", user)
        assert answer.status_code == 200, f"{step}: {answer.text}"
    result = through_a.publish(dataset_id)  # the worker runs it: the nodes run no jobs
    assert result["version"] == 1
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and requests.get(
            f"{node_b.url}/ogc/collections/{dataset_id}/items", timeout=10).status_code != 200:
        time.sleep(0.1)
    items = requests.get(f"{node_b.url}/ogc/collections/{dataset_id}/items",
                         params={"limit": 100}, timeout=30).json()
    assert items["numberMatched"] == 17
    download = requests.get(f"{node_b.url}/assets/{dataset_id}/1/{dataset_id}.geojson",
                            timeout=30)
    assert download.status_code == 200 and len(download.json()["features"]) == 17
    # No home but the worker's ever held the version's folder, and no node's the draft's.
    assert (cluster.worker_home / "datasets" / dataset_id / "1").is_dir()
    for node in cluster.nodes:
        assert not (cluster.node_home(node) / "datasets").exists()


# -- resumable uploads through nginx (catalog/cluster/nginx.py, upstream taza_uploads) --------

def _pieces(data: bytes, count: int) -> list[tuple[int, int]]:
    """`count` (start, end inclusive) ranges covering `data`."""
    size = -(-len(data) // count)
    return [(start, min(start + size, len(data)) - 1) for start in range(0, len(data), size)]


def _send_piece(api: Api, dataset_id: str, data: bytes, start: int, end: int,
                filename: str = "airports.geojson") -> requests.Response:
    fingerprint = f"sha256:{hashlib.sha256(data).hexdigest()}"
    return api.put(f"/api/datasets/{dataset_id}/draft/source", "alice",
                   params={"filename": filename, "fingerprint": fingerprint},
                   data=data[start:end + 1],
                   headers={"Content-Range": f"bytes {start}-{end}/{len(data)}",
                            "Content-Type": "application/octet-stream"})


def _holders(cluster: LocalCluster, dataset_id: str) -> list:
    """The nodes whose home keeps an upload in progress for the dataset."""
    return [node for node in cluster.nodes
            if (cluster.node_home(node) / "stewards" / "resume" / dataset_id / "meta.json")
            .exists()]


def _new_draft(api: Api, prefix: str) -> str:
    from tests.stewards_support import make_manifest

    dataset_id = api.new_id(prefix)
    api.create(dataset_id)
    assert api.put_manifest(dataset_id, make_manifest(dataset_id)).status_code == 200
    return dataset_id


def test_a_resumable_upload_in_pieces_through_nginx_completes_and_is_published(
        cluster: LocalCluster, tokens: dict[str, str]) -> None:
    """Both nodes up, round-robin for everything else: every piece of one upload (and its
    /resume) reaches the node that holds the others, so the upload completes."""
    api = Api(SimpleNamespace(url=cluster.url), tokens)
    dataset_id = _new_draft(api, "upnode")
    data = (SOURCES / "airports.geojson").read_bytes()
    pieces = _pieces(data, 4)
    assert len(pieces) == 4
    holder = None
    for start, end in pieces[:-1]:
        answer = _send_piece(api, dataset_id, data, start, end)
        assert answer.status_code == 202, answer.text
        assert answer.json()["upload"]["received"] == end + 1
        holders = _holders(cluster, dataset_id)
        assert len(holders) == 1, holders
        holder = holder or holders[0]
        assert holders == [holder]
        # The page asks where to go on: the holder answers, whichever node is next in turn.
        for _ in range(3):
            progress = api.get(f"/api/datasets/{dataset_id}/draft/source/resume", "alice")
            assert progress.status_code == 200, progress.text
            assert progress.json()["upload"]["received"] == end + 1
    # Other requests are still spread over both nodes.
    assert {_health(cluster.url)["node"] for _ in range(10)} == {"node-a", "node-b"}
    start, end = pieces[-1]
    last = _send_piece(api, dataset_id, data, start, end)
    assert last.status_code == 201, last.text
    assert last.json()["summary"]["publishable"], last.text
    assert last.json()["upload"]["size"] == len(data)
    assert _holders(cluster, dataset_id) == []
    for step, user in (("submit", "alice"), ("approve", "rita")):
        answer = api.post(f"/api/datasets/{dataset_id}/draft/{step}", user)
        assert answer.status_code == 200, f"{step}: {answer.text}"
    assert api.publish(dataset_id)["version"] == 1
    _wait_for(lambda: requests.get(f"{cluster.url}/ogc/collections/{dataset_id}/items",
                                   timeout=10).status_code == 200)
    for node in cluster.nodes:
        items = requests.get(f"{node.url}/ogc/collections/{dataset_id}/items",
                             params={"limit": 100}, timeout=30).json()
        assert items["numberMatched"] == 17, node.name


def test_when_the_uploads_node_is_gone_the_next_piece_says_start_again(
        cluster: LocalCluster, tokens: dict[str, str]) -> None:
    """The node holding the pieces dies: nginx sends the next piece to the other node, which
    answers 409 upload_not_in_progress; /resume there says no upload is in progress (the page
    then sends from byte 0), and the upload sent again from 0 completes."""
    api = Api(SimpleNamespace(url=cluster.url), tokens)
    dataset_id = _new_draft(api, "upnode-gone")
    data = (SOURCES / "airports.geojson").read_bytes()
    pieces = _pieces(data, 3)
    first = _send_piece(api, dataset_id, data, *pieces[0])
    assert first.status_code == 202, first.text
    [holder] = _holders(cluster, dataset_id)
    cluster.stop_node(holder, kill=True)
    try:
        second = _send_piece(api, dataset_id, data, *pieces[1])
        assert second.status_code == 409, second.text
        assert second.json()["messageCode"] == "upload_not_in_progress", second.text
        progress = api.get(f"/api/datasets/{dataset_id}/draft/source/resume", "alice")
        assert progress.status_code == 200 and progress.json()["upload"] is None, progress.text
        for start, end in pieces[:-1]:
            assert _send_piece(api, dataset_id, data, start, end).status_code == 202
        last = _send_piece(api, dataset_id, data, *pieces[-1])
        assert last.status_code == 201, last.text
        assert last.json()["upload"]["size"] == len(data)
    finally:
        cluster.start_node(holder)
        _wait_for(lambda: _node_answers(holder.url), timeout=180)
        _wait_for(lambda: {_health(cluster.url)["node"] for _ in range(10)}
                  == {"node-a", "node-b"}, timeout=60)


def _node_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_a_source_added_from_another_home_is_harvested_by_the_worker_and_read_through_b(
        cluster: LocalCluster, tokens: dict[str, str], ckan, tmp_path: Path) -> None:  # noqa: F811
    """`taza harvest add --every 1d` from an empty home of its own: the cluster's worker (its
    own home) queues and runs it once; the drafts it wrote are read through node B (files from
    the bucket), and the last run is listed from yet another home."""
    remote, _ = ckan
    env = cluster.environment()
    _taza("harvest", "add", remote, "--type", "ckan", "--name", "own-hdx", "--org",
          "peer-agency", "--email", "data@example.org", "--every", "1d",
          home=tmp_path / "harvester-home", env=env)
    sources = PostgresHarvestSources(env["TAZA_DATABASE_URL"], tmp_path / "reader-home")
    _wait_for(lambda: sources.state("own-hdx")["last_run"] is not None, timeout=180)
    last = sources.state("own-hdx")["last_run"]
    assert last["error"] is None and len(last["new"]) == 4, last
    through_b = Api(SimpleNamespace(url=cluster.nodes[1].url), tokens)
    for dataset_id in last["new"]:
        manifest = through_b.get(f"/api/datasets/{dataset_id}/draft/manifest", "root")
        assert manifest.status_code == 200, manifest.text
        assert dataset_id in manifest.text
    listed = _taza("harvest", "list", home=tmp_path / "lister-home", env=env).stdout
    assert f"\tevery 1d\tlast run {last['finished']}: 4 new" in listed, listed
    _wait_for(lambda: all(state in ("succeeded", "failed")  # its result follows the state
                          for _, state, _ in _harvest_jobs(env["TAZA_DATABASE_URL"])))
    jobs = _harvest_jobs(env["TAZA_DATABASE_URL"])
    assert jobs == [("own-hdx", "succeeded", None)], jobs  # queued once, run once
    assert not (cluster.worker_home / "harvest" / "sources.json").exists()


def _harvest_jobs(url: str) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT subject, state, error FROM taza_jobs "
                                  "WHERE kind = 'harvest' ORDER BY created").fetchall()
