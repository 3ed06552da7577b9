"""`taza backup` / `taza restore` on the PostgreSQL + object-store profile (a private PostgreSQL
and a real Ceph RADOS Gateway): the backup holds the bucket's objects the database refers to
(published versions' files and drafts' uploads), a second backup links them from the first
instead of downloading them again, and a restore into a wiped database, bucket and home answers
exactly as before (features, STAC items, asset bytes with Range). A restore that fails at any
step (an injected failure, a corrupt dump) leaves the previous catalog serving, unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest

from catalog.backups.recovery import RECOVERED_KINDS
from catalog.backups.restore import FAULT_VARIABLE, STEPS
from catalog.backups.texts import failure_text, reason_word, text
from catalog.cluster import objectstore
from catalog.core.languages import LANGUAGES
from catalog.core.record import Record
from tests.conftest import ROOT, Server, copy_dataset, start_server, stop_server, taza
from tests.stewards_support import Api, running_api, write_geojson
from tests.test_backup import put_audit_key_back

DATABASE = "backup_bucket"
BUCKET = "taza-backup"
ASSETS_URL = f"s3://{BUCKET}/catalog"
RANGE = "bytes=100-899"


@pytest.fixture(scope="module")
def store_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A memstore RADOS Gateway with the catalog's bucket; its AWS_* settings."""
    running = objectstore.start(tmp_path_factory.mktemp("backup-objectstore"))
    try:
        environment = running.environment()
        _client(environment).create_bucket(Bucket=BUCKET)
        yield environment
    finally:
        objectstore.stop(running.folder)


@pytest.fixture()
def profile(private_postgres, store_env, monkeypatch) -> Iterator[str]:
    """The PostgreSQL + bucket profile for `taza` and the servers of one test; its database
    URL. The bucket is emptied after the test."""
    private_postgres.drop_database(DATABASE)
    url = private_postgres.create_database(DATABASE)
    for name, value in store_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TAZA_DATABASE_URL", url)
    monkeypatch.setenv("TAZA_ASSETS_URL", ASSETS_URL)
    yield url
    private_postgres.drop_database(DATABASE)
    _empty_bucket(_client(store_env), remove=False)


def _client(environment: dict[str, str]):
    return boto3.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"],
                        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
                        region_name="default")


def _keys(client) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _empty_bucket(client, remove: bool) -> None:
    keys = sorted(_keys(client))
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=BUCKET, Delete={
            "Objects": [{"Key": key} for key in keys[start:start + 1000]]})
    if remove:
        client.delete_bucket(Bucket=BUCKET)


def _publish(home: Path, folder: Path, *dataset_ids: str) -> None:
    for dataset_id in dataset_ids:
        taza("publish", str(copy_dataset(dataset_id, folder / dataset_id)), home=home)


def _restore(backup: Path, home: Path, *args: str,
             **environment: str) -> subprocess.CompletedProcess:
    """`taza restore` with extra environment (the fault hook, the operator's language)."""
    env = dict(os.environ, TAZA_HOME=str(home), **environment)
    return subprocess.run([sys.executable, "-m", "catalog.cli", "restore", str(backup), *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


def answers(server: Server, draft: tuple[str, Api] | None = None) -> dict:
    """What a client reads: features, STAC items, and asset bytes (whole and a Range)."""
    def plain(response) -> object:
        assert response.status_code == 200, (response.url, response.text[:300])
        data = json.loads(response.text.replace(server.url, "{BASE}"))
        data.pop("timeStamp", None)
        return data

    found = {
        "release": server.get("/healthz").json()["release"],
        "airports": plain(server.get("/ogc/collections/airports/items?f=json&limit=50")),
        "stac": plain(server.get("/stac/collections/land-cover/items")),
        "stac-airports": plain(server.get("/stac/collections/airports/items")),
    }
    for dataset_id in ("land-cover", "airports"):
        for item in server.get(f"/stac/collections/{dataset_id}/items").json()["features"]:
            for name, asset in sorted(item["assets"].items()):
                path = asset["href"].removeprefix(server.url)
                whole = server.get(path)
                part = server.get(path, headers={"Range": RANGE})
                found[f"{dataset_id}/{name}"] = (
                    whole.status_code, hashlib.sha256(whole.content).hexdigest(),
                    part.status_code, part.headers.get("Content-Range"),
                    hashlib.sha256(part.content).hexdigest())
    if draft is not None:
        dataset_id, api = draft
        report = api.get(f"/api/datasets/{dataset_id}/draft/report", "alice")
        assert report.status_code == 200, report.text
        found["draft"] = (report.json()["upload"]["sha256"],
                          report.json()["upload"]["filename"],
                          report.json()["summary"]["publishable"])
    return found


def test_a_backup_holds_the_buckets_objects_and_restores_into_a_wiped_profile(
        profile, private_postgres, store_env, tmp_path):
    home, restored = tmp_path / "home", tmp_path / "restored"
    first, second = tmp_path / "first", tmp_path / "second"
    _publish(home, tmp_path / "sources", "airports", "land-cover")
    client = _client(store_env)
    with running_api(home, workers=1) as api:
        draft_id, uploaded = api.draft_dataset("parcels", write_geojson(
            tmp_path / "parcels.geojson", [{"type": "Feature", "properties": {"code": "P1"},
                                            "geometry": {"type": "Point",
                                                         "coordinates": [74.6, 42.9]}}]))
        assert uploaded.status_code == 201, uploaded.text
        before = answers(api.server, (draft_id, api))
        assert before["land-cover/data"][2:4] == (206, f"bytes 100-899/"
                                                       f"{_object_size(client, 'land-cover')}")
        taza("backup", str(first), home=home)
        # The second backup downloads nothing: every object is linked from the first.
        again = taza("backup", str(second), "--previous", str(first), home=home)
        assert "0 object(s) downloaded" in again.stderr, again.stderr

    manifest = json.loads((first / "backup.json").read_text())
    listed = {(o["bucket"], o["key"]) for o in manifest["bucket"]["objects"]}
    with psycopg.connect(profile) as connection:
        rows = connection.execute("SELECT record, objects FROM taza_state.versions "
                                  "WHERE NOT purged").fetchall()
        (draft, files), = connection.execute("SELECT draft_id, files FROM "
                                             "taza_state.draft_files").fetchall()
    expected = {(json.loads(objects)["bucket"], json.loads(objects)["prefix"] + name)
                for record, objects in rows
                for name in Record.from_json(json.loads(record)).files()}
    # The draft's current files (the bucket also keeps the generation before, for readers).
    blobs = {(BUCKET, f"catalog/drafts/{draft}/blobs/{digest}")
             for digest in json.loads(files).values()}
    assert uploaded.json()["upload"]["sha256"] in {key.rsplit("/", 1)[1] for _, key in blobs}
    assert blobs <= {(BUCKET, key) for key in _keys(client)}
    assert listed == expected | blobs  # every object the database refers to, nothing else
    assert manifest["bucket"]["downloaded"] == len(listed) and manifest["bucket"]["linked"] == 0
    linked = json.loads((second / "backup.json").read_text())["bucket"]
    assert (linked["downloaded"], linked["linked"]) == (0, len(listed))
    for entry in linked["objects"]:  # the same files, not copies
        relative = Path(entry["bucket"]) / entry["key"]
        assert (first / "bucket" / relative).stat().st_ino == \
            (second / "bucket" / relative).stat().st_ino

    # Everything gone: the database, the bucket (and its objects), the home.
    private_postgres.drop_database(DATABASE)
    assert private_postgres.create_database(DATABASE) == profile
    _empty_bucket(client, remove=True)
    checked = taza("restore", "--check", str(second), home=tmp_path / "unused")
    assert "ok:" in checked.stdout
    taza("restore", str(second), home=restored)
    assert {(BUCKET, key) for key in _keys(client)} == listed
    put_audit_key_back(home, restored)
    server = start_server(restored, workers=1)
    try:
        after = answers(server, (draft_id, Api(server, api.tokens)))
    finally:
        stop_server(server)
    for key, value in before.items():
        assert after[key] == value, f"{key} differs after the restore"


def _object_size(client, dataset_id: str) -> int:
    for key in _keys(client):
        if f"/{dataset_id}/" in key and key.endswith(".tif"):
            return client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    raise AssertionError(f"no COG of {dataset_id} in the bucket")


def _home_files(home: Path) -> dict[str, tuple[int, str]]:
    """The home's files (but the server's runtime and cache folders) with size and digest."""
    found = {}
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home).as_posix()
        if path.is_file() and not relative.startswith(("run/", "cache/")) \
                and not relative.endswith(".log"):
            found[relative] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def _database_state(url: str) -> tuple:
    with psycopg.connect(url) as connection:
        return (connection.execute("SELECT number, state FROM taza_state.releases "
                                   "ORDER BY number").fetchall(),
                connection.execute("SELECT release FROM taza_state.live_release").fetchall(),
                connection.execute("SELECT dataset, version, record FROM taza_state.versions "
                                   "ORDER BY 1, 2").fetchall())


def test_a_restore_that_fails_at_any_step_leaves_the_previous_catalog_serving(
        profile, store_env, tmp_path):
    home, backup = tmp_path / "home", tmp_path / "backup"
    _publish(home, tmp_path / "sources", "airports", "land-cover")
    taza("backup", str(backup), home=home)  # release 2: both datasets
    _publish(home, tmp_path / "sources-2", "lakes")  # release 3 serves, lakes besides
    damaged = tmp_path / "damaged"  # the same backup, its dump cut short (checksums updated)
    taza("backup", str(damaged), "--copy", home=home)
    dump = damaged / "database.dump"
    dump.write_bytes(dump.read_bytes()[:dump.stat().st_size // 2])
    manifest = json.loads((damaged / "backup.json").read_text())
    manifest["database_dump"].update(size=dump.stat().st_size,
                                     sha256=hashlib.sha256(dump.read_bytes()).hexdigest())
    (damaged / "backup.json").write_text(json.dumps(manifest))
    client = _client(store_env)

    server = start_server(home, workers=1)
    try:
        before = answers(server)
        assert before["release"] == 3
        assert server.get("/ogc/collections/lakes?f=json").status_code == 200
        files, state, objects = _home_files(home), _database_state(profile), _keys(client)
        attempts = [(backup, {FAULT_VARIABLE: step, "LANGUAGE": "ru"}, step) for step in STEPS]
        attempts.append((damaged, {"LANGUAGE": "ky"}, "database"))
        for source, environment, step in attempts:
            failed = _restore(source, home, "--force", **environment)
            assert failed.returncode == 1, (step, failed.stdout, failed.stderr)
            if environment["LANGUAGE"] == "ru":
                assert "Восстановление не удалось на шаге" in failed.stderr, failed.stderr
                assert "прежний каталог работает, как раньше" in failed.stderr
                assert f"injected after step '{step}'" in failed.stderr
            else:
                assert "Калыбына келтирүү" in failed.stderr and "Себеби" in failed.stderr
                assert "маалымат базасын жүктөө" in failed.stderr, failed.stderr
            # The previous catalog, exactly: the home, the database, the bucket, the answers.
            assert _home_files(home) == files, step
            assert not list(home.glob(".re*")), step  # no staging, script or moved-aside home
            assert _database_state(profile) == state, step
            assert _keys(client) == objects, step
            assert answers(server) == before, step
            assert server.get("/ogc/collections/lakes?f=json").status_code == 200
    finally:
        stop_server(server)

    # Without a fault the same restore replaces the catalog: release 2, no lakes.
    (tmp_path / "kept" / "keys").mkdir(parents=True)  # keys are kept apart from backups
    shutil.copy2(home / "keys" / "audit.key", tmp_path / "kept" / "keys" / "audit.key")
    done = _restore(backup, home, "--force")
    assert done.returncode == 0, done.stderr
    put_audit_key_back(tmp_path / "kept", home)
    assert "audit chain ok" in taza("audit", "--verify", home=home).stderr
    server = start_server(home, workers=1)
    try:
        restored = answers(server)
        assert restored["release"] == 2
        assert server.get("/ogc/collections/lakes?f=json").status_code == 404
        assert {k: v for k, v in restored.items() if k != "release"} == \
            {k: v for k, v in before.items() if k != "release"}
    finally:
        stop_server(server)


def test_every_restore_message_is_in_every_language(monkeypatch):
    codes = ["restore_failed", "restore_reason", *(f"step.{step}" for step in STEPS),
             *(f"restore_recovered.{kind}" for kind in RECOVERED_KINDS),
             "restore_nothing_to_recover", "restore_interrupted_serve",
             "restore_commit_unknown"]
    assert set(codes) <= set(text.table)
    for code in codes:
        assert set(text.table[code]) == set(LANGUAGES) and all(text.table[code].values()), code
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "ky_KG.UTF-8")
    assert failure_text("switch").startswith("Калыбына келтирүү «жаңы абалга которуу»")
    monkeypatch.setenv("LANGUAGE", "de:ru")  # the first language the catalog speaks
    assert reason_word() == "Причина"
    monkeypatch.setenv("LANGUAGE", "")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # set, and none of ours: English
    assert reason_word() == "Reason"
