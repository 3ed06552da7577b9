"""A `taza restore` SIGKILLed while it switches the home (catalog/backups/recovery.py): the
next `taza restore`, or `taza restore --recover`, finishes it when it had committed and undoes
it when it had not; `taza serve` refuses the half-switched home until then. On the PostgreSQL
profile the database's own state (its transaction's comment) decides, and a database that
cannot be reached changes nothing. Kills come from `TAZA_RESTORE_FAULT=kill:<point>`.

psql can die too, with its answer, while the restore itself lives on
(`TAZA_RESTORE_FAULT=lose:<point>`): then the database decides at once, and when it cannot be
asked the restore is left to `--recover`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import ROOT, copy_dataset, free_port, start_server, stop_server, taza

PG_DATABASE = "restore_interrupted"
KILLED = -9
# The first tests restore an embedded home's backup (into new folders too); the PostgreSQL
# profile's interrupted restores are the test_on_postgresql_* tests, on either test profile.
EMBEDDED_HOME = pytest.mark.embedded_only(
    "kills restores of an embedded home's backup; the PostgreSQL profile's: "
    "test_on_postgresql_* in this module")


def tree(home: Path) -> dict[str, str]:
    """Every file of a home (its logs and node caches aside) with its SHA-256."""
    found = {}
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home)
        if path.is_file() and relative.parts[0] not in ("cache", "run") and \
                path.suffix != ".log":
            found[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    """`taza` with more environment variables (a server that does not refuse to start fails
    the test by its timeout)."""
    return subprocess.run([sys.executable, "-m", "catalog.cli", *args], cwd=ROOT, timeout=120,
                          env=dict(os.environ, TAZA_HOME=str(home), **env),
                          capture_output=True, text=True, check=False)


def killed_restore(backup: Path, home: Path, point: str) -> None:
    done = run("restore", str(backup), "--force", home=home,
               TAZA_RESTORE_FAULT=f"kill:{point}")
    assert done.returncode == KILLED, done.stderr
    assert list(home.glob(".replaced-*")), sorted(p.name for p in home.iterdir())


def serve_refused(home: Path, locale: str = "C.UTF-8") -> str:
    refused = run("serve", "--port", str(free_port()), home=home, LANGUAGE="", LC_ALL=locale)
    assert refused.returncode == 1, refused.stderr
    return refused.stderr


def recover(home: Path, locale: str = "C.UTF-8", **env: str) -> subprocess.CompletedProcess:
    return run("restore", "--recover", home=home, LANGUAGE="", LC_ALL=locale, **env)


@pytest.fixture()
def two_states(published_copy: Path, tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    """(home, backup): the backup holds every sample live; the home has since withdrawn
    airports. Also the trees of the home now and of the backup restored into a new folder."""
    backup = tmp_path / "backup"
    taza("backup", str(backup), home=published_copy)
    taza("withdraw", "airports", home=published_copy)
    fresh = tmp_path / "fresh"
    taza("restore", str(backup), home=fresh)
    return published_copy, backup, tree(published_copy), tree(fresh)


@EMBEDDED_HOME
def test_a_restore_killed_halfway_through_the_switch_is_undone(two_states):
    home, backup, before, _ = two_states
    killed_restore(backup, home, "switch")
    assert tree(home) != before  # half switched
    assert "interrupted restore" in serve_refused(home)
    recovered = recover(home)
    assert "had not committed: it was undone" in recovered.stdout
    assert tree(home) == before
    assert not [p for p in home.iterdir() if p.name.startswith((".replaced-", ".restoring-"))]
    server = start_server(home)
    try:
        assert server.get("/ogc/collections/airports").status_code == 404  # still withdrawn
        assert server.get("/ogc/collections/settlements").status_code == 200
    finally:
        stop_server(server)


@EMBEDDED_HOME
def test_a_restore_killed_after_its_marker_is_finished(two_states):
    home, backup, _, restored = two_states
    killed_restore(backup, home, "switched")
    assert "interrupted restore" in serve_refused(home)
    recovered = recover(home)
    assert "had committed: it was finished" in recovered.stdout
    assert tree(home) == restored


@EMBEDDED_HOME
def test_without_a_database_the_marker_is_the_commit(two_states):
    home, backup, before, _ = two_states
    killed_restore(backup, home, "commit")  # switched, marker not yet written
    assert "had not committed" in recover(home).stdout
    assert tree(home) == before


@EMBEDDED_HOME
def test_the_next_restore_undoes_the_killed_one_first_then_restores(two_states):
    home, backup, _, restored = two_states
    killed_restore(backup, home, "switch")
    again = run("restore", str(backup), "--force", home=home, LANGUAGE="", LC_ALL="C.UTF-8")
    assert again.returncode == 0, again.stderr
    assert "had not committed: it was undone" in again.stderr
    assert tree(home) == restored
    assert "has no interrupted restore" in recover(home).stdout


@EMBEDDED_HOME
def test_recovery_speaks_the_operators_language(two_states):
    home, backup, _, _ = two_states
    killed_restore(backup, home, "switch")
    assert "каталог переключён наполовину" in serve_refused(home, "ru_RU.UTF-8")
    assert "жарым-жартылай которулган" in serve_refused(home, "ky_KG.UTF-8")
    assert "артка кайтарылды" in recover(home, "ky_KG.UTF-8").stdout


# -- the PostgreSQL profile: the database decides ---------------------------------------------

@pytest.fixture()
def pg_states(private_postgres, tmp_path, monkeypatch) -> Iterator[tuple[Path, Path, str]]:
    """A home on the PostgreSQL profile with airports published; its backup; then settlements
    published too. (home, backup, database URL)."""
    private_postgres.drop_database(PG_DATABASE)
    url = private_postgres.create_database(PG_DATABASE)
    monkeypatch.setenv("TAZA_DATABASE_URL", url)
    home, backup = tmp_path / "home", tmp_path / "backup"
    taza("publish", str(copy_dataset("airports", tmp_path / "src")), home=home)
    taza("backup", str(backup), home=home)
    taza("publish", str(copy_dataset("settlements", tmp_path / "src")), home=home)
    yield home, backup, url
    private_postgres.drop_database(PG_DATABASE)


def published_datasets(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        return {row[0] for row in connection.execute(
            "SELECT DISTINCT dataset FROM taza_state.versions")}


def test_on_postgresql_a_restore_killed_before_its_commit_is_undone_in_home_and_database(
        pg_states):
    home, backup, url = pg_states
    before, rows_before = tree(home), published_datasets(url)
    killed_restore(backup, home, "switch")
    recovered = recover(home)
    assert "had not committed: it was undone" in recovered.stdout
    assert tree(home) == before
    assert published_datasets(url) == rows_before == {"airports", "settlements"}


def test_on_postgresql_a_restore_killed_after_its_commit_is_finished(pg_states):
    home, backup, url = pg_states
    killed_restore(backup, home, "commit")  # committed, marker not yet written
    assert published_datasets(url) == {"airports"}  # the backup's state is in the database
    recovered = recover(home)
    assert "had committed: it was finished" in recovered.stdout
    assert not list(home.glob(".replaced-*"))
    server = start_server(home)
    try:
        assert server.get("/ogc/collections/airports").status_code == 200
        assert server.get("/ogc/collections/settlements").status_code == 404
    finally:
        stop_server(server)


def test_on_postgresql_an_unreachable_database_decides_nothing(pg_states):
    home, backup, _ = pg_states
    killed_restore(backup, home, "switch")
    half = tree(home)
    unreachable = f"postgresql://taza@127.0.0.1:{free_port()}/{PG_DATABASE}"
    refused = recover(home, TAZA_DATABASE_URL=unreachable)
    assert refused.returncode == 1
    assert "cannot reach the database" in refused.stderr and "nothing was changed" in \
        refused.stderr
    assert tree(home) == half


# -- psql dies and its answer is lost: the database decides -----------------------------------

def test_on_postgresql_a_commit_whose_answer_was_lost_is_finished(pg_states, private_postgres,
                                                                   tmp_path):
    home, backup, url = pg_states
    done = run("restore", str(backup), "--force", home=home, TAZA_RESTORE_FAULT="lose:commit")
    assert done.returncode == 0, done.stderr
    assert published_datasets(url) == {"airports"}
    assert not [p.name for p in home.iterdir() if p.name.startswith(".")]
    # The same home as the backup restored into an empty folder and database.
    private_postgres.drop_database(PG_DATABASE + "_fresh")
    fresh_url = private_postgres.create_database(PG_DATABASE + "_fresh")
    try:
        fresh = tmp_path / "fresh"
        assert run("restore", str(backup), home=fresh,
                   TAZA_DATABASE_URL=fresh_url).returncode == 0
        assert tree(home) == tree(fresh)
    finally:
        private_postgres.drop_database(PG_DATABASE + "_fresh")


def test_on_postgresql_psql_lost_before_the_commit_undoes_home_and_database(pg_states):
    home, backup, url = pg_states
    before = tree(home)
    done = run("restore", str(backup), "--force", home=home,
               TAZA_RESTORE_FAULT="lose:before-commit")
    assert done.returncode == 1
    assert "undone" in done.stderr and "killed at lose:before-commit" in done.stderr
    assert tree(home) == before
    assert published_datasets(url) == {"airports", "settlements"}


def test_on_postgresql_a_lost_commit_the_database_cannot_confirm_waits_for_recover(pg_states):
    home, backup, url = pg_states
    done = run("restore", str(backup), "--force", home=home, LANGUAGE="ru",
               TAZA_RESTORE_FAULT="lose:commit-and-database")
    assert done.returncode == 1
    assert "Ответ базы данных на фиксацию потерян" in done.stderr
    assert list(home.glob(".replaced-*"))  # left for recover, not guessed
    assert "half switched" in serve_refused(home)
    recovered = recover(home)
    assert "had committed: it was finished" in recovered.stdout
    assert published_datasets(url) == {"airports"}
    assert not list(home.glob(".replaced-*"))


# -- other sessions on the database while a restore replaces it --------------------------------

def test_on_postgresql_a_session_holding_a_table_does_not_deadlock_the_restore(pg_states):
    """Autovacuum's ANALYZE (or a reader's planner) holds a feature table and then asks for
    its GiST index. Dropping schema public reaches that index through PostGIS's operator
    class, before its table: without the restore locking every table first, the two waited
    on each other and PostgreSQL cancelled the restore ("deadlock detected")."""
    home, backup, url = pg_states
    with psycopg.connect(url) as holder:
        table = sql.Identifier(*holder.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname = 'taza_features' AND tablename LIKE 'settlements%'").fetchone())
        # What ANALYZE takes on the table it samples:
        holder.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(table))
        restore = subprocess.Popen(
            [sys.executable, "-m", "catalog.cli", "restore", str(backup), "--force"], cwd=ROOT,
            env=dict(os.environ, TAZA_HOME=str(home)), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            wait_for_restore_to_wait_on_a_lock(url)
            # The holder now needs the table's indexes (the planner opens them), then lets go.
            holder.execute(sql.SQL("SELECT count(*) FROM {} WHERE false").format(table))
            holder.rollback()
            _, errors = restore.communicate(timeout=120)
        finally:
            restore.kill()
    assert restore.returncode == 0, errors
    assert published_datasets(url) == {"airports"}


def wait_for_restore_to_wait_on_a_lock(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            if watcher.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE NOT l.granted AND a.application_name LIKE 'taza-restore-%'"
                    ).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the restore never waited on the held table")
