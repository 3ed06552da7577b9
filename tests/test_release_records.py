"""Release records, the live-release pointer and the operation locks on PostgreSQL
(TAZA_DATABASE_URL; catalog/store/release_records_postgresql.py, catalog/store/locks.py).

A small vector dataset is published, republished and rolled back through the command line with
the database set: the records are rows of `taza_state`, not files of the home, a running server
follows each switch within 2 s, a switch whose base moved records nothing, and the publish and
dataset locks exclude processes that share no folder, and go with a killed holder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from catalog.core.record import read_record
from catalog.stewards.errors import Conflict
from catalog.stewards.locks import dataset_lock
from catalog.store import CatalogStore, StoreBusy
from catalog.store.release_records_postgresql import PostgresReleaseRecords
from tests.conftest import ROOT, Server, copy_dataset, start_server, stop_server, taza

DATABASE = "release_records"
DATASET = "airports"


@pytest.fixture(scope="module")
def database_url(private_postgres) -> Iterator[str]:
    private_postgres.drop_database(DATABASE)
    yield private_postgres.create_database(DATABASE)
    private_postgres.drop_database(DATABASE)


@pytest.fixture(scope="module")
def home(tmp_path_factory, database_url: str) -> Path:
    home = tmp_path_factory.mktemp("records-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TAZA_DATABASE_URL", database_url)
        taza("publish", str(copy_dataset(DATASET, tmp_path_factory.mktemp("records-src"))),
             home=home)
    return home


@pytest.fixture(scope="module")
def server(home: Path, database_url: str) -> Iterator[Server]:
    running = start_server(home, workers=1, env={"TAZA_DATABASE_URL": database_url},
                           log_name="records-server.log")
    yield running
    stop_server(running)


def rows(url: str) -> tuple[int, dict[int, dict]]:
    with psycopg.connect(url) as connection:
        live = connection.execute("SELECT release FROM taza_state.live_release").fetchone()[0]
        found = connection.execute("SELECT number, state FROM taza_state.releases").fetchall()
    return live, {number: json.loads(state) for number, state in found}


def served_release(server: Server) -> int:
    return server.get("/healthz").json()["release"]


def served_within(server: Server, url: str, seconds: float = 2.0) -> bool:
    """The server answers from the database's live release within `seconds` of the switch."""
    expected = rows(url)[0]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if served_release(server) == expected:
            return True
        time.sleep(0.1)
    return served_release(server) == expected


def test_records_are_rows_and_the_server_follows_each_switch(home, database_url, server,
                                                             tmp_path, monkeypatch):
    live, recorded = rows(database_url)
    assert recorded[live]["datasets"] == {DATASET: 1} and recorded[live]["audit"]["seq"] > 0
    assert not (home / "current.json").exists()
    assert not list(home.glob("releases/*/release.json"))
    assert (home / f"releases/{live}/stac/catalog.json").exists()  # the static tree stays
    assert served_release(server) == live

    monkeypatch.setenv("TAZA_DATABASE_URL", database_url)
    manifest = copy_dataset(DATASET, tmp_path)
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data["title"]["en"] += " (second version)"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    taza("publish", str(manifest), home=home)
    assert served_within(server, database_url)
    taza("rollback", DATASET, "1", home=home)
    assert served_within(server, database_url)

    live, recorded = rows(database_url)
    assert recorded[live]["datasets"] == {DATASET: 1}
    assert recorded[live]["previous"] in recorded
    assert recorded[recorded[live]["previous"]]["datasets"] == {DATASET: 2}
    assert "audit chain ok" in taza("audit", home=home).stderr  # anchors read from the rows
    assert "2" in taza("versions", DATASET, home=home).stdout

    # A purge rewrites the rows that held the version.
    taza("purge", DATASET, "2", "--reason", "a test of the records", home=home)
    _, after = rows(database_url)
    assert all(state["datasets"].get(DATASET) != 2 for state in after.values())
    assert {"dataset": DATASET, "version": 2} in after[recorded[live]["previous"]]["purged"]
    assert "audit chain ok" in taza("audit", home=home).stderr


def test_versions_and_static_trees_are_rows_a_home_of_its_own_reads(home, database_url,
                                                                     tmp_path):
    """Issue 13: another process with an empty home of its own (another machine's) reads the
    versions' records and the live release's static STAC tree from the database, and knows
    the purged number (after the test above: versions 1 and 2, 2 purged)."""
    elsewhere = CatalogStore(tmp_path / "empty-home", database_url=database_url)
    on_disk = read_record(home / "datasets" / DATASET / "1")
    assert elsewhere.record(DATASET, 1).as_json() == on_disk.as_json()
    assert elsewhere.versions(DATASET) == [1]
    assert elsewhere.purged_versions(DATASET) == {2}
    assert elsewhere.next_version(DATASET) == 3
    assert elsewhere.version_objects(DATASET, 1) is None  # no bucket: the files are on disk
    with pytest.raises(FileNotFoundError):
        elsewhere.record(DATASET, 2)  # purged: its record is gone from the database too
    live = elsewhere.current()
    tree = home / "releases" / str(live.number) / "stac"
    documents = {p.relative_to(tree).as_posix(): p.read_bytes()
                 for p in tree.rglob("*") if p.is_file()}
    assert documents and sorted(documents) == elsewhere.stac_paths(live)
    for path, body in documents.items():
        kept = elsewhere.stac_document(live, path)
        assert kept.body == body
        # The file's time, as the embedded profile's Last-Modified says it.
        assert kept.modified.timestamp() == pytest.approx((tree / path).stat().st_mtime,
                                                          abs=1e-5)
    with pytest.raises(FileNotFoundError):
        elsewhere.stac_document(live, "no/such/collection.json")
    assert not (tmp_path / "empty-home" / "datasets").exists()
    # The purge took version 2's collection out of every tree in the database.
    with psycopg.connect(database_url) as connection:
        collections = connection.execute(
            "SELECT release, body FROM taza_state.release_stac WHERE path LIKE %s",
            (f"%/{DATASET}/collection.json",)).fetchall()
    assert collections and all(json.loads(bytes(body))["version"] == "1"
                               for _, body in collections)


def test_a_switch_whose_base_moved_records_nothing(home, database_url):
    records = PostgresReleaseRecords(database_url, home, CatalogStore(home, database_url=None)
                                     .records)
    live, before = rows(database_url)
    stale = {"release": max(before) + 1, "datasets": {}, "previous": live - 1}
    with pytest.raises(RuntimeError, match="went live"):
        records.go_live(max(before) + 1, stale)
    assert rows(database_url) == (live, before)


def test_locks_hold_across_homes_and_go_with_a_killed_holder(home, database_url, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("TAZA_DATABASE_URL", database_url)
    other = tmp_path / "other-node"  # shares no folder with `home`
    with CatalogStore(home).lock(wait=False):
        with pytest.raises(StoreBusy):
            with CatalogStore(other).lock(wait=False):
                pass
    with dataset_lock(home, DATASET):
        with pytest.raises(Conflict):
            with dataset_lock(other, DATASET):
                pass
        with dataset_lock(other, "settlements"):  # another dataset is free
            pass

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom pathlib import Path\n"
         "from catalog.stewards.locks import dataset_lock\n"
         f"with dataset_lock(Path(sys.argv[1]), {DATASET!r}):\n"
         "    print('held', flush=True)\n    sys.stdin.read()\n", str(tmp_path / "holder")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Conflict):
            with dataset_lock(other, DATASET):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert free_within(other, DATASET, seconds=10)  # PostgreSQL ended the dead session's lock


def free_within(home: Path, dataset_id: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with dataset_lock(home, dataset_id):
                return True
        except Conflict:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


def test_the_live_release_is_read_in_one_statement(home, database_url, monkeypatch):
    """`CatalogStore.current()` (every request's watch reads it once a second per worker) is one
    statement on PostgreSQL: the pointer joined to its release, no transaction around it."""
    store = CatalogStore(home, database_url=database_url)
    expected = store.current()  # the pool's first connection and the tables' check, once
    live, states = rows(database_url)
    assert (expected.number, expected.datasets) == (live, states[live]["datasets"])
    sent: list[str] = []
    execute, transaction = psycopg.Cursor.execute, psycopg.Connection.transaction

    def counted_execute(self, query, *args, **kwargs):
        text = query if isinstance(query, str) else query.as_string(self)
        if text.strip():  # the pool checks a connection with an empty query: no statement
            sent.append(text)
        return execute(self, query, *args, **kwargs)

    def counted_transaction(self, *args, **kwargs):
        sent.append("BEGIN")
        return transaction(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.Connection, "transaction", counted_transaction)
    for _ in range(3):
        assert store.current() == expected
    assert len(sent) == 3, sent
    assert all("live_release" in text and "releases" in text for text in sent), sent
