"""`taza migrate --to postgresql://... --assets s3://...`: an embedded catalog (samples, a
rollback, a steward account, the audit chain) copied into the PostgreSQL profile and a real S3
store (Ceph's RADOS Gateway, catalog/cluster/objectstore.py) serves the same answers; `--verify`
passes, and names a deliberate change made in the target afterwards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import psycopg
import pytest
import yaml

from catalog.cluster import objectstore
from catalog.core.record import RECORD_FILE, read_record
from catalog.store.s3_assets import OBJECTS_FILE
from tests.conftest import copy_dataset, start_server, stop_server, taza

DATABASE = "state_migrate"
BUCKET = "taza-migrate"
ASSETS_URL = f"s3://{BUCKET}/catalog"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> tuple[Path, str]:
    """A home: airports published twice and rolled back to 1, an account."""
    home = tmp_path_factory.mktemp("migrate-home")
    sources = tmp_path_factory.mktemp("migrate-sources")
    taza("publish", str(copy_dataset("airports", sources)), home=home)
    manifest = sources / "airports.yaml"
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data["title"]["en"] = data["title"]["en"] + " (second version)"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    taza("publish", str(manifest), home=home)
    taza("rollback", "airports", "1", home=home)
    taza("users", "add", "alice", "--role", "steward", "--org", "ministry-a", home=home)
    token = taza("users", "token", "alice", home=home).stdout.strip()
    return home, token


@pytest.fixture(scope="module")
def target(private_postgres) -> str:
    private_postgres.drop_database(DATABASE)
    yield private_postgres.create_database(DATABASE)
    private_postgres.drop_database(DATABASE)


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory) -> dict[str, str]:
    running = objectstore.start(tmp_path_factory.mktemp("migrate-objectstore"))
    try:
        environment = running.environment()
        s3_client(environment).create_bucket(Bucket=BUCKET)
        yield environment
    finally:
        objectstore.stop(running.folder)


def s3_client(environment: dict[str, str]):
    return boto3.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"],
                        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
                        region_name="default")


def answers(home: Path, token: str, **environment: str) -> dict:
    server = start_server(home, workers=1, env=environment, log_name="migrate-server.log")
    try:
        items = server.get("/ogc/collections/airports/items?limit=5&f=json").json()
        files = read_record(home / "datasets/airports/1" / RECORD_FILE).files()
        downloads = {name: hashlib.sha256(server.get(f"/assets/airports/1/{name}").content
                                          ).hexdigest() for name in sorted(files)}
        return {
            "downloads": downloads,
            "collections": sorted(c["id"] for c in server.get(
                "/ogc/collections?f=json").json()["collections"]),
            "items": [f["id"] for f in items["features"]],
            "matched": items.get("numberMatched"),
            "stac": server.get("/stac/collections/airports").json().get("title"),
            "me": server.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json(),
            "backend": server.get("/healthz").json()["backend"],
        }
    finally:
        stop_server(server)


def test_migrate_serves_the_same_catalog_and_verify_names_a_change(embedded, target, s3_env,
                                                                  monkeypatch):
    home, token = embedded
    before = answers(home, token)
    versions = taza("versions", "airports", home=home).stdout

    # The PostgreSQL profile before the move: no write starts a second chain beside the home's.
    monkeypatch.setenv("TAZA_DATABASE_URL", target)
    early = taza("users", "add", "bob", "--role", "steward", "--org", "ministry-b", home=home,
                 check=False)
    assert early.returncode != 0 and "taza migrate" in early.stderr
    monkeypatch.delenv("TAZA_DATABASE_URL")
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    moved = taza("migrate", "--to", target, "--assets", ASSETS_URL, home=home)
    assert "users 1" in moved.stdout and "PostGIS layers loaded: 2" in moved.stdout
    assert "release records copied: 3" in moved.stdout  # publish, publish, rollback
    assert "versions copied to the bucket: 2" in moved.stdout
    where = json.loads((home / "datasets/airports/1" / OBJECTS_FILE).read_text())
    listed = s3_client(s3_env).list_objects_v2(Bucket=BUCKET, Prefix=where["prefix"])
    files = read_record(home / "datasets/airports/1" / RECORD_FILE).files()
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]) == sorted(files)
    again = taza("migrate", "--to", target, "--assets", ASSETS_URL, home=home)  # idempotent
    assert "none (the target already held them)" in again.stdout
    assert "PostGIS layers loaded: 0" in again.stdout
    assert "release records copied: 0" in again.stdout
    assert "versions copied to the bucket: 0" in again.stdout
    verified = taza("migrate", "--to", target, "--assets", ASSETS_URL, "--verify", home=home)
    assert verified.stdout.strip() == "the same"

    profile = {"TAZA_DATABASE_URL": target, "TAZA_ASSETS_URL": ASSETS_URL}
    after = answers(home, token, **profile)
    assert before.pop("backend") == "embedded" and after.pop("backend") == "postgresql"
    assert after == before and after["me"]["name"] == "alice"
    monkeypatch.setenv("TAZA_DATABASE_URL", target)
    assert taza("versions", "airports", home=home).stdout == versions
    assert "audit chain ok" in taza("audit", home=home).stderr
    monkeypatch.delenv("TAZA_DATABASE_URL")
    assert len(after["downloads"]) >= 2  # the GeoPackage (kept on disk) and the others

    with psycopg.connect(target) as connection, pytest.raises(psycopg.errors.RaiseException,
                                                              match="append-only"):
        connection.execute("DELETE FROM taza_state.audit")  # the trigger refuses it
    with psycopg.connect(target) as connection:
        connection.execute("UPDATE taza_state.users SET email = 'x@example.org' "
                           "WHERE name = 'alice'")
        connection.execute("UPDATE taza_state.live_release SET release = 2")
    check = taza("migrate", "--to", target, "--verify", home=home, check=False)
    assert check.returncode == 1 and "users (1,): email differ" in check.stderr
    assert "live release: 3 in the home, 2 in the target" in check.stderr
    refused = taza("migrate", "--to", target, home=home, check=False)
    assert refused.returncode == 1 and "another catalog" in refused.stderr
