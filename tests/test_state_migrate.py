"""`taza migrate --to postgresql://...`: an embedded catalog (samples, a rollback, a steward
account, the audit chain) copied into the PostgreSQL profile serves the same answers; `--verify`
passes, and names a deliberate change made in the target afterwards."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from tests.conftest import copy_dataset, start_server, stop_server, taza

DATABASE = "state_migrate"


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


def answers(home: Path, token: str, **environment: str) -> dict:
    server = start_server(home, workers=1, env=environment, log_name="migrate-server.log")
    try:
        items = server.get("/ogc/collections/airports/items?limit=5&f=json").json()
        return {
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


def test_migrate_serves_the_same_catalog_and_verify_names_a_change(embedded, target,
                                                                  monkeypatch):
    home, token = embedded
    before = answers(home, token)
    versions = taza("versions", "airports", home=home).stdout

    moved = taza("migrate", "--to", target, home=home)
    assert "users 1" in moved.stdout and "PostGIS layers loaded: 2" in moved.stdout
    again = taza("migrate", "--to", target, home=home)  # idempotent
    assert "none (the target already held them)" in again.stdout
    assert "PostGIS layers loaded: 0" in again.stdout
    assert taza("migrate", "--to", target, "--verify", home=home).stdout.strip() == "the same"

    profile = {"TAZA_DATABASE_URL": target}
    after = answers(home, token, **profile)
    assert before.pop("backend") == "embedded" and after.pop("backend") == "postgresql"
    assert after == before and after["me"]["name"] == "alice"
    monkeypatch.setenv("TAZA_DATABASE_URL", target)
    assert taza("versions", "airports", home=home).stdout == versions
    assert "audit chain ok" in taza("audit", home=home).stderr
    monkeypatch.delenv("TAZA_DATABASE_URL")

    with psycopg.connect(target) as connection, pytest.raises(psycopg.errors.RaiseException,
                                                              match="append-only"):
        connection.execute("DELETE FROM taza_state.audit")  # the trigger refuses it
    with psycopg.connect(target) as connection:
        connection.execute("UPDATE taza_state.users SET email = 'x@example.org' "
                           "WHERE name = 'alice'")
    check = taza("migrate", "--to", target, "--verify", home=home, check=False)
    assert check.returncode == 1 and "users (1,): email differ" in check.stderr
    refused = taza("migrate", "--to", target, home=home, check=False)
    assert refused.returncode == 1 and "another catalog" in refused.stderr
