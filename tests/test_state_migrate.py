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
from catalog.stewards import sessions
from catalog.stewards.config import StewardSettings
from catalog.stewards.errors import TooManyRequests, Unauthenticated
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
        connection.execute("UPDATE taza_state.versions SET record = record || ' ' "
                           "WHERE dataset = 'airports' AND version = 1")
        connection.execute("DELETE FROM taza_state.release_stac WHERE release = 1")
    check = taza("migrate", "--to", target, "--verify", home=home, check=False)
    assert check.returncode == 1 and "users (1,): email differ" in check.stderr
    assert "airports version 1: record.json differs in the target" in check.stderr
    assert "release 1: static STAC tree missing in the target" in check.stderr
    assert "live release: 3 in the home, 2 in the target" in check.stderr
    refused = taza("migrate", "--to", target, home=home, check=False)
    assert refused.returncode == 1 and "changed on its own" in refused.stderr

    # An object of the bucket that differs from its file, said in the operator's language.
    gpkg = next(name for name in files if name.endswith(".gpkg"))
    key = next(o["Key"] for o in listed["Contents"] if o["Key"].endswith(f"/{gpkg}"))
    s3_client(s3_env).put_object(Bucket=BUCKET, Key=key, Body=b"x")
    size = (home / "datasets/airports/1" / gpkg).stat().st_size
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")
    said = taza("migrate", "--to", target, "--assets", ASSETS_URL, "--verify", home=home,
                check=False)
    assert said.returncode == 1
    assert f"различие: airports, версия 1: {gpkg}: объект — 1 байт, файл — {size} байт\n" \
        in said.stderr, said.stderr


@pytest.fixture(scope="module")
def second_target(private_postgres) -> str:
    private_postgres.drop_database(f"{DATABASE}_again")
    yield private_postgres.create_database(f"{DATABASE}_again")
    private_postgres.drop_database(f"{DATABASE}_again")


def failed_sign_ins(home: Path, name: str, count: int) -> None:
    for _ in range(count):
        with pytest.raises(Unauthenticated):
            sessions.sign_in(home, StewardSettings(), name, "wrong password", "127.0.0.9")


def test_migrate_again_copies_what_changed_and_refuses_a_target_changed_on_its_own(
        tmp_path_factory, second_target, monkeypatch):
    """Sign-in failures (the lockout) move too; after the home changed (an account, a disabled
    account, failures, a new version with its audit entries) a second migrate copies just that;
    a write made in the target itself makes the next one refuse, changing nothing."""
    home = tmp_path_factory.mktemp("migrate-again-home")
    sources = tmp_path_factory.mktemp("migrate-again-sources")
    manifest = copy_dataset("airports", sources)
    taza("publish", str(manifest), home=home)
    taza("users", "add", "alice", "--role", "steward", "--org", "ministry-a", home=home)
    limit = StewardSettings().signin_account_failures
    failed_sign_ins(home, "alice", limit)
    with pytest.raises(TooManyRequests):  # alice is locked out in the embedded profile
        sessions.sign_in(home, StewardSettings(), "alice", "wrong password", "127.0.0.9")

    first = taza("migrate", "--to", second_target, home=home)
    assert f"signin_failures {2 * limit}" in first.stdout
    monkeypatch.setenv("TAZA_DATABASE_URL", second_target)
    with pytest.raises(TooManyRequests):  # and still in the PostgreSQL profile
        sessions.sign_in(home, StewardSettings(), "alice", "wrong password", "127.0.0.9")
    monkeypatch.delenv("TAZA_DATABASE_URL")

    # The embedded home goes on: the failure refused above is gone from the target only if
    # the home lost it too, so the home is what the next run copies from.
    taza("users", "add", "bob", "--role", "steward", "--org", "ministry-b", home=home)
    taza("users", "disable", "alice", home=home)
    failed_sign_ins(home, "bob", 2)
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data["title"]["en"] += " (second version)"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    taza("publish", str(manifest), home=home)
    with psycopg.connect(second_target) as connection:
        audit_before = connection.execute("SELECT max(seq) FROM taza_state.audit").fetchone()[0]

    again = taza("migrate", "--to", second_target, home=home)
    assert "users 2" in again.stdout  # bob new, alice disabled
    assert "PostGIS layers loaded: 1" in again.stdout
    assert taza("migrate", "--to", second_target, "--verify", home=home).stdout.strip() == \
        "the same"
    with psycopg.connect(second_target) as connection:
        audit_after = connection.execute("SELECT max(seq) FROM taza_state.audit").fetchone()[0]
        names = [r[0] for r in connection.execute(
            "SELECT name FROM taza_state.users ORDER BY id")]
    assert audit_after > audit_before and names == ["alice", "bob"]
    monkeypatch.setenv("TAZA_DATABASE_URL", second_target)
    assert "audit chain ok" in taza("audit", home=home).stderr
    assert "version 2" in taza("versions", "airports", home=home).stdout
    taza("users", "add", "carol", "--role", "steward", "--org", "ministry-c", home=home)
    monkeypatch.delenv("TAZA_DATABASE_URL")

    refused = taza("migrate", "--to", second_target, home=home, check=False)
    assert refused.returncode == 1 and "changed on its own" in refused.stderr
    assert "users [3] was added in the target" in refused.stderr
    with psycopg.connect(second_target) as connection:
        names = [r[0] for r in connection.execute(
            "SELECT name FROM taza_state.users ORDER BY id")]
    assert names == ["alice", "bob", "carol"]  # nothing of the refused run was written


def test_a_database_holding_another_catalog_is_refused(tmp_path_factory, private_postgres,
                                                       monkeypatch):
    """A target that no migrate recorded and that holds other state is refused, unchanged."""
    url = private_postgres.create_database(f"{DATABASE}_other")
    try:
        monkeypatch.setenv("TAZA_DATABASE_URL", url)  # a catalog started on PostgreSQL
        taza("users", "add", "olga", "--role", "steward", "--org", "ministry-o",
             home=tmp_path_factory.mktemp("migrate-other-pg"))
        monkeypatch.delenv("TAZA_DATABASE_URL")
        home = tmp_path_factory.mktemp("migrate-other-home")
        taza("users", "add", "alice", "--role", "steward", "--org", "ministry-a", home=home)
        refused = taza("migrate", "--to", url, home=home, check=False)
        assert refused.returncode == 1 and "another catalog" in refused.stderr
        with psycopg.connect(url) as connection:
            names = [r[0] for r in connection.execute("SELECT name FROM taza_state.users")]
        assert names == ["olga"]
    finally:
        private_postgres.drop_database(f"{DATABASE}_other")
