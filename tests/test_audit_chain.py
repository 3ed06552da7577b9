"""An audit you can prove (issue 11, item 5): a keyed chain (HMAC-SHA256, key file outside the
database), intent and outcome entries around each release switch, the chain's head in each
release.json and in a head file, and `taza audit --verify` catching every kind of tampering an
attacker with write access to the database, but not to the key, can do with the sqlite3 shell.
Logs written before keying keep verifying and are sealed by an explicit migration."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import copy_dataset, start_server, stop_server, taza

DROP_TRIGGERS = "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
TAMPERING = {  # run with the sqlite3 shell, as the attacker would
    "rewritten": "UPDATE audit SET actor = 'mallory' WHERE seq = 2;",
    "reordered": "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3;"
                 " UPDATE audit SET seq = 3 WHERE seq = -1;",
    "missing": "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3;",
    "truncated": "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit);",
}
OLD_SCHEMA = """CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
    actor TEXT NOT NULL, action TEXT NOT NULL, dataset_id TEXT, detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"""  # before keyed MACs


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A home with ten entries: three accounts (each `user.add` and its one-time link), a
    `taza publish` (intent and outcome, the intent's head in releases/1/release.json), then
    one more account after the release."""
    home = tmp_path_factory.mktemp("audit-template") / "home"
    home.mkdir()
    for name in ("one", "two", "three"):
        taza("users", "add", name, "--role", "reviewer", home=home)
    taza("publish", str(copy_dataset("airports", home.parent / "work")), home=home)
    taza("users", "add", "four", "--role", "reviewer", home=home)
    return home


@pytest.fixture()
def home(template, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(template, copy)
    return copy


def database(home: Path) -> Path:
    return home / "stewards" / "stewards.sqlite"


def sqlite_shell(home: Path, *statements: str) -> None:
    script = "\n".join(statements)
    subprocess.run(["sqlite3", str(database(home))], input=script, text=True, check=True,
                   capture_output=True, timeout=60)


def write_rows(home: Path, sql: str, values: list[tuple]) -> None:
    """The attacker's own program, writing what it computed into the database."""
    with sqlite3.connect(database(home)) as connection:
        connection.executemany(sql, values)


def rows(home: Path) -> list[dict]:
    with sqlite3.connect(database(home)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute("SELECT * FROM audit ORDER BY seq")]


def reseal_without_key(home: Path, upto: int | None = None) -> None:
    """What an attacker could always do to the unkeyed log: recompute every link and hash
    (of the first `upto` entries) as a plain SHA-256 chain; the key is out of reach, so the
    MACs cannot be redone."""
    previous, updates = "0" * 64, []
    for row in rows(home)[:upto]:
        digest = unkeyed_hash(previous, row)
        updates.append((previous, digest, row["seq"]))
        previous = digest
    write_rows(home, "UPDATE audit SET prev_hash = ?, hash = ?, scheme = NULL, key_id = NULL "
               "WHERE seq = ?", updates)


def unkeyed_hash(previous: str, row: dict) -> str:
    """The SHA-256 chain link of the log before keyed MACs."""
    fields = {k: row[k] for k in ("seq", "at", "actor", "action", "dataset_id")}
    fields["detail"] = json.loads(row["detail"])
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


def verify(home: Path) -> subprocess.CompletedProcess:
    return taza("audit", "--verify", home=home, check=False)


def test_entries_are_keyed_and_every_switch_has_intent_outcome_and_recorded_head(template):
    assert verify(template).returncode == 0
    log = rows(template)
    account = ["user.add", "user.password_link"]
    assert [e["action"] for e in log] == account * 3 + [
        "release.intent", "dataset.publish"] + account
    assert {e["scheme"] for e in log} == {"hmac-sha256"}
    intent, outcome = log[6], log[7]
    assert json.loads(intent["detail"])["operation"] == "dataset.publish"
    assert json.loads(outcome["detail"])["intent"] == intent["seq"]
    release = json.loads((template / "releases/1/release.json").read_text())
    assert release["audit"] == {"seq": intent["seq"], "mac": intent["hash"]}
    # The key: a file of mode 0600 beside (never inside) the database; the head beside it.
    key = template / "keys" / "audit.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().strip() not in database(template).read_bytes().decode("latin-1")
    head = json.loads((template / "keys" / "audit.head").read_text())
    assert head == {"seq": log[-1]["seq"], "mac": log[-1]["hash"]}


@pytest.mark.parametrize("reseal", [False, True], ids=["as-is", "resealed-without-key"])
@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_with_the_database_is_detected(home, kind, reseal):
    sqlite_shell(home, DROP_TRIGGERS, TAMPERING[kind])
    if reseal:
        reseal_without_key(home)
    result = verify(home)
    assert result.returncode == 1 and "AUDIT CHAIN BROKEN" in result.stderr, result.stderr


def test_truncation_is_named_with_the_head_that_proves_it(home):
    sqlite_shell(home, DROP_TRIGGERS, "DELETE FROM audit WHERE seq > 6;")
    reseal_without_key(home)  # what is left is a perfectly valid unkeyed chain
    result = verify(home)
    assert "entry 7, recorded in releases/1/release.json, is missing" in result.stderr
    shutil.rmtree(home / "releases")
    result = verify(home)
    assert "entry 10, recorded in the head file" in result.stderr and "cut short" in result.stderr


def test_a_missing_or_exposed_key_stops_writes_and_checks(home):
    key = home / "keys" / "audit.key"
    key.chmod(0o644)
    exposed = verify(home)
    assert exposed.returncode == 1 and "mode 0600" in exposed.stderr
    added = taza("users", "add", "five", "--role", "reviewer", home=home, check=False)
    assert added.returncode == 1 and "mode 0600" in added.stderr
    key.unlink()
    missing = verify(home)
    assert missing.returncode == 1 and "key is missing" in missing.stderr
    republish = taza("publish", str(copy_dataset("settlements", home.parent / "w")), home=home,
                     check=False)
    assert republish.returncode == 1 and "nothing was changed" in republish.stderr
    assert json.loads((home / "current.json").read_text()) == {"release": 1}


# The previous version's log was a table of stewards.sqlite: only the embedded profile has one.
LEGACY_SQLITE_LOG = pytest.mark.embedded_only(
    "writes a legacy unkeyed audit log into stewards.sqlite (the embedded profile's earlier "
    "format; the PostgreSQL state was keyed from its start)")

def legacy_home(home: Path, count: int = 3) -> None:
    """A log as the previous version wrote it: unkeyed SHA-256 entries, no key anywhere."""
    home.joinpath("stewards").mkdir(parents=True)
    sqlite_shell(home, OLD_SCHEMA)
    previous, inserts = "0" * 64, []
    for seq in range(1, count + 1):
        row = {"seq": seq, "at": f"2026-11-0{seq}T10:00:00.000+00:00", "actor": "cli:root",
               "action": "user.add", "dataset_id": None, "detail": f'{{"user":"u{seq}"}}'}
        digest = unkeyed_hash(previous, row)
        inserts.append((*row.values(), previous, digest))
        previous = digest
    write_rows(home, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", inserts)


@LEGACY_SQLITE_LOG
def test_an_unkeyed_log_keeps_verifying_and_is_sealed_by_an_explicit_migration(scratch_home):
    legacy_home(scratch_home)
    before = verify(scratch_home)
    assert before.returncode == 0 and "3 unkeyed entries" in before.stderr
    # Until it is migrated, nothing is written that could not be proven.
    refused = taza("users", "add", "new", "--role", "admin", home=scratch_home, check=False)
    assert refused.returncode == 1 and "taza audit --migrate" in refused.stderr
    manifest = copy_dataset("airports", scratch_home.parent / "work")
    unpublished = taza("publish", str(manifest), home=scratch_home, check=False)
    assert unpublished.returncode == 1 and "taza audit --migrate" in unpublished.stderr
    assert not (scratch_home / "current.json").exists()

    migrated = taza("audit", "--migrate", home=scratch_home)
    assert "sealed 3 unkeyed entries" in migrated.stdout
    assert stat.S_IMODE((scratch_home / "keys/audit.key").stat().st_mode) == 0o600
    taza("users", "add", "new", "--role", "admin", home=scratch_home)
    taza("publish", str(manifest), home=scratch_home)
    after = verify(scratch_home)
    assert after.returncode == 0 and "3 unkeyed entries" in after.stderr
    assert "nothing to migrate" in taza("audit", "--migrate", home=scratch_home).stdout

    # The migration entry's MAC covers the last unkeyed hash: rewriting an old entry, even
    # with its SHA-256 chain recomputed, no longer goes unnoticed.
    sqlite_shell(scratch_home, DROP_TRIGGERS,
                 """UPDATE audit SET detail = '{"user":"mallory"}' WHERE seq = 2;""")
    reseal_without_key(scratch_home, upto=3)
    broken = verify(scratch_home)
    assert broken.returncode == 1 and "BROKEN at entry 4" in broken.stderr


@LEGACY_SQLITE_LOG
def test_a_broken_unkeyed_log_is_not_sealed(scratch_home):
    legacy_home(scratch_home)
    sqlite_shell(scratch_home, DROP_TRIGGERS, "UPDATE audit SET actor = 'mallory' WHERE seq = 2;")
    refused = taza("audit", "--migrate", home=scratch_home, check=False)
    assert refused.returncode == 1 and "broken at entry 2" in refused.stderr
    assert not (scratch_home / "keys/audit.key").exists()


def test_a_head_ahead_of_a_restored_database_is_reported_then_reset_on_record(home, tmp_path):
    """A database restored from a backup while the head file, kept outside the home, moved on:
    verify says the log was cut short, and `--reset-head` accepts it with an entry saying so."""
    backup = tmp_path / "backup"
    shutil.copytree(home, backup)
    taza("users", "add", "five", "--role", "reviewer", home=home)  # after the backup
    shutil.copy(home / "keys" / "audit.head", backup / "keys" / "audit.head")
    restored = verify(backup)
    assert restored.returncode == 1 and "entry 12, recorded in the head file" in restored.stderr
    reset = taza("audit", "--reset-head", home=backup)
    assert "entries 11-12 of that log are not in this database" in reset.stdout
    assert verify(backup).returncode == 0
    last = rows(backup)[-1]
    assert last["action"] == "audit.head_reset" and last["seq"] == 11
    assert json.loads(last["detail"])["replaced_head"]["seq"] == 12
    # A chain broken in the database is never accepted this way.
    sqlite_shell(backup, DROP_TRIGGERS, "UPDATE audit SET actor = 'mallory' WHERE seq = 2;")
    refused = taza("audit", "--reset-head", home=backup, check=False)
    assert refused.returncode == 1 and "broken at entry 2" in refused.stderr


def test_the_api_refuses_changes_it_cannot_audit_with_503(scratch_home):
    taza("users", "add", "root", "--role", "admin", home=scratch_home)
    token = taza("users", "token", "root", home=scratch_home).stdout.strip()
    (scratch_home / "keys" / "audit.key").unlink()
    server = start_server(scratch_home, workers=1)
    try:
        answer = requests.post(f"{server.url}/api/datasets", json={"id": "roads",
                               "organisation": "ministry-a"},
                               headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "ServiceUnavailable"
        assert "audit key" in answer.json()["description"]
        # Nothing was changed without its entry: the dataset does not exist.
        assert server.get("/api/datasets/roads",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 404
    finally:
        stop_server(server)
