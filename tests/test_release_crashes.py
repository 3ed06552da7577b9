"""The release switch survives a crash at every step (issue 11, item 6).

A publish of a small vector dataset, then a rollback, is SIGKILLed at each of its file system
mutations in turn (tests/fault_injection.py: mkdir, write, fsync, rename/replace, unlink, and
every audit insert and index update), k = 1, 2, ... until the operation completes. After each
kill: the previous or the new release serves, whole, through the real server; no version
counts as released that never went live (in the store and in /api); the audit log holds the
intent without an outcome when the kill fell between them, and still verifies; then the next
publish AND a rollback work, and the first of them records whether the killed switch went live.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from catalog.store import CatalogStore, audit
from tests.conftest import ROOT, Server, copy_dataset, start_server, stop_server, taza
from tests.stewards_support import wait_for

DATASET = "airports"
MAX_POINTS = 150  # bound: a publish makes about 65 mutations here, a rollback about 50


@dataclass
class Sweep:
    home: Path
    manifest: Path
    forks: subprocess.Popen
    admin: dict
    server: Server | None = None
    ever_live: set[int] = field(default_factory=set)
    rounds: int = 0

    @property
    def store(self) -> CatalogStore:
        return CatalogStore(self.home)

    def run(self, **request) -> dict:
        self.forks.stdin.write(json.dumps(request) + "\n")
        self.forks.stdin.flush()
        return json.loads(self.forks.stdout.readline())

    def publish(self, kill_at: int = 0) -> dict:
        """Publish new content (a changed source is a new version, never 'unchanged')."""
        self.rounds += 1
        source = self.manifest.parent / "sources" / f"{DATASET}.geojson"
        data = json.loads(ORIGINAL.read_text())
        data["features"] = copy.deepcopy(data["features"][:3 + self.rounds % 7])
        data["features"][0]["properties"]["name"] = f"round {self.rounds}"
        source.write_text(json.dumps(data))
        return self.run(op="publish", manifest=str(self.manifest), kill_at=kill_at)

    def rollback(self, kill_at: int = 0) -> dict:
        """Roll back to the newest released version that is not live."""
        live = self.store.current().datasets[DATASET]
        target = max(set(self.store.released_versions(DATASET)) - {live})
        return self.run(op="rollback", dataset=DATASET, version=target, kill_at=kill_at)


ORIGINAL = ROOT / "datasets" / "sources" / f"{DATASET}.geojson"


@pytest.fixture()
def sweep(tmp_path):
    # On tmpfs where there is one: the ~340 operations of the sweep then spend no time in
    # fsync. A SIGKILL loses nothing fsync protects (the page cache survives it), so where
    # the kill falls, and what it leaves, is the same on any file system.
    shm = Path("/dev/shm")
    home = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) \
        else tmp_path / "home"
    home.mkdir(exist_ok=True)
    manifest = copy_dataset(DATASET, tmp_path / "work")
    taza("users", "add", "root", "--role", "admin", home=home)
    token = taza("users", "token", "root", home=home).stdout.strip()
    forks = subprocess.Popen([sys.executable, "-m", "tests.fault_injection", str(home),
                              str(manifest)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    running = Sweep(home, manifest, forks, {"Authorization": f"Bearer {token}"})
    try:
        for _ in range(2):  # versions 1 and 2: a rollback has somewhere to go
            assert running.publish()["result"]
        running.ever_live = {1, 2}
        running.server = start_server(home, workers=1)
        yield running
    finally:
        if running.server:
            stop_server(running.server)
        forks.stdin.close()
        forks.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def test_a_publish_or_rollback_killed_at_any_step_leaves_a_working_catalog(sweep):
    points = {}
    for operation in ("publish", "rollback"):
        for kill_at in itertools.count(1):
            assert kill_at <= MAX_POINTS, f"{operation} did not complete after {MAX_POINTS} kills"
            before = last_seq(sweep.home)
            answer = getattr(sweep, operation)(kill_at=kill_at)
            if not answer["killed"]:  # past its last mutation: it ran to the end
                assert "error" not in answer, answer
                check_serves_whole_live_release(sweep)
                break
            assert answer["signal"] == 9, answer
            where = f"{operation} killed at mutation {kill_at}: {answer['event']}"
            check_serves_whole_live_release(sweep, where)
            check_nothing_released_that_never_went_live(sweep, where)
            pending = intent_without_outcome(sweep, before, where)
            check_next_publish_and_rollback_work(sweep, pending, where)
        points[operation] = kill_at - 1
    assert points["publish"] >= 40 and points["rollback"] >= 30, points
    assert taza("audit", "--verify", home=sweep.home).returncode == 0
    assert not list(sweep.home.glob("**/.staging-*"))
    live = sweep.store.current().datasets[DATASET]
    assert wait_for(lambda: f"/{DATASET}/{live}/" in
                    sweep.server.get(f"/ogc/collections/{DATASET}").text, 10)


def last_seq(home: Path) -> int:
    with sqlite3.connect(audit.database_path(home)) as connection:
        return connection.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0]


def check_serves_whole_live_release(sweep: Sweep, where: str = "") -> None:
    """The live release is complete on disk and served as it is by the real server."""
    release = sweep.store.current()
    version = release.datasets[DATASET]
    sizes = {a.file: a.size for a in sweep.store.record(DATASET, version).assets}
    for name, size in sizes.items():
        assert (sweep.store.version_dir(DATASET, version) / name).stat().st_size == size, where
    assert (release.stac_dir / "catalog.json").exists(), where
    assert sweep.server.get("/healthz").json()["release"] == release.number, where
    download = sweep.server.get(f"/assets/{DATASET}/{version}/{DATASET}.gpkg")
    assert download.status_code == 200, where
    assert len(download.content) == sizes[f"{DATASET}.gpkg"], where
    static = sweep.server.get(f"/stac/infrastructure/{DATASET}/collection.json")
    assert static.json()["version"] == str(version), where
    sweep.ever_live.add(version)


def check_nothing_released_that_never_went_live(sweep: Sweep, where: str) -> None:
    assert set(sweep.store.released_versions(DATASET)) <= sweep.ever_live, where
    listed = sweep.server.get(f"/api/datasets/{DATASET}/versions", headers=sweep.admin)
    assert {v["version"] for v in listed.json()["versions"]} <= sweep.ever_live, where


def intent_without_outcome(sweep: Sweep, before: int, where: str) -> tuple[int, bool] | None:
    """The killed operation's intent, if it was written and no outcome followed, and whether
    its release went live; the chain verifies whatever the moment of the kill."""
    new = audit.entries(sweep.home, before, 1000)
    intents = [e for e in new if e["action"] == audit.INTENT]
    assert len(intents) <= 1, where
    check = audit.verify(sweep.home)
    assert check.ok, f"{where}: {check}"
    if not intents:
        assert not new, where  # no entry at all before the intent
        return None
    intent = intents[0]
    outcomes = [e for e in new if e["detail"].get("intent") == intent["seq"]]
    if outcomes:
        assert [e["action"] for e in outcomes] == [intent["detail"]["operation"]], where
        return None
    release = sweep.store.current()
    return intent["seq"], bool(release.audit and release.audit["seq"] == intent["seq"])


def check_next_publish_and_rollback_work(sweep: Sweep, pending: tuple[int, bool] | None,
                                         where: str) -> None:
    published = sweep.publish()
    assert not published["killed"] and "error" not in published, f"{where}: {published}"
    assert sweep.store.current().datasets[DATASET] == published["result"]["version"], where
    sweep.ever_live.add(published["result"]["version"])
    if pending is not None:
        seq, went_live = pending
        recovered = [e for e in audit.entries(sweep.home, seq, 1000)
                     if e["action"] == "release.recovered" and e["detail"]["intent"] == seq]
        assert len(recovered) == 1 and recovered[0]["detail"]["live"] is went_live, where
    rolled = sweep.rollback()
    assert not rolled["killed"] and "error" not in rolled, f"{where}: {rolled}"
    assert sweep.store.current().datasets[DATASET] == rolled["result"]["version"], where
    check_serves_whole_live_release(sweep, where)
    check_nothing_released_that_never_went_live(sweep, where)
