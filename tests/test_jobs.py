"""Publishing on the job queue (issue 13, item 2): the API answers at once with a job to follow,
and a job survives the death of the worker running it, on both profiles' queues: the embedded
one (SQLite leases) and the PostgreSQL profile's (procrastinate, in a private PostgreSQL 15 the
session starts from Debian's packages).

The server runs no job threads here (TAZA_JOB_WORKERS=0): jobs run in `taza worker` processes
the test starts and kills, so which process runs a job, and when another may take it, is
decided by the test, not by timing."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT
from tests.stewards_support import Api, running_api
from tests.test_publish import live_version, visible_files
from tests.test_stewards_faults import approved_raster

LEASE_SECONDS = 2  # a dead worker's job is taken again this long after its last renewal


@pytest.fixture(scope="module", params=["embedded", "postgresql"])
def profile(request) -> dict[str, str]:
    """The environment of the server and its workers: which queue they share."""
    environment = {"TAZA_JOB_LEASE_SECONDS": str(LEASE_SECONDS)}
    if request.param == "postgresql":
        cluster = request.getfixturevalue("private_postgres")
        environment["TAZA_DATABASE_URL"] = cluster.create_database("jobs_queue")
    return environment


@pytest.fixture(scope="module")
def api(tmp_path_factory, profile) -> Iterator[Api]:
    with running_api(tmp_path_factory.mktemp("jobs"), workers=1, TAZA_JOB_WORKERS=0,
                     **profile) as running:
        running.profile = profile
        yield running


@pytest.fixture(autouse=True)
def profile_environment(profile, monkeypatch) -> None:
    """The test reads the release records where the profile keeps them (live_version,
    visible_files: files, or PostgreSQL)."""
    for name, value in profile.items():
        monkeypatch.setenv(name, value)


def start_worker(api: Api, kill_at: str | None = None) -> subprocess.Popen:
    """`taza worker` (or tests/killed_worker.py, which SIGKILLs itself at kill_at)."""
    home = api.server.home
    module = ["tests.killed_worker", str(home), kill_at] if kill_at else \
        ["catalog.cli", "worker"]
    env = dict(os.environ, TAZA_HOME=str(home), **api.profile)
    log = (home / f"worker-{kill_at or 'plain'}.log").open("a")
    return subprocess.Popen([sys.executable, "-m", *module], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def approved(api: Api, folder: Path, dataset_id: str | None = None, seed: int = 0) -> str:
    return approved_raster(api, folder, seed, dataset_id, size=200)


@contextlib.contextmanager
def running_worker(api: Api) -> Iterator[subprocess.Popen]:
    worker = start_worker(api)
    try:
        yield worker
    finally:
        stop_worker(worker)


def test_publish_answers_at_once_with_a_job_to_follow(api, tmp_path):
    dataset_id = approved(api, tmp_path)
    answer = api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice")
    # No worker runs yet: the answer came before any work was done.
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["Location"] == f"/api/jobs/{job['id']}"
    assert (job["state"], job["progress"], job["dataset"]) == ("queued", 0, dataset_id)
    assert not (api.server.home / "current.json").exists()  # nothing published yet
    location = answer.headers["Location"]
    assert api.get(location).status_code == 401
    assert api.get(location, "bob").status_code == 403  # another organisation
    assert api.get("/api/jobs/" + "0" * 32, "alice").status_code == 404
    assert api.get("/api/jobs/not-a-job", "alice").status_code == 404
    assert api.get(location + "?verbose=1", "alice").status_code == 400
    # A second publish of the same dataset while the first waits: 409 naming the job.
    again = api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice")
    assert again.status_code == 409 and again.json()["job"] == location

    with running_worker(api):
        done = api.follow(answer)
    assert done["state"] == "succeeded" and done["progress"] == 100, done
    assert done["result"] == {"dataset": dataset_id, "version": 1, "release": 1,
                              "unchanged": False}
    assert done["attempts"] == 1 and done["finished"] >= done["started"] >= done["created"]
    rels = {link["rel"]: link["href"] for link in done["links"]}
    assert rels["self"] == location
    assert rels["version"] == f"/api/datasets/{dataset_id}/versions"
    assert api.get(rels["collection"]).status_code == 200
    api.wait_served(dataset_id, 1)


@pytest.mark.parametrize("kill_at", ["version", "switched"])
def test_a_publish_survives_the_death_of_its_worker(api, tmp_path, kill_at):
    """SIGKILL the worker midway through a publish (converted but not released; or released
    but not recorded as published): while nobody runs the job the previous version serves and
    nothing partial shows; another worker takes the job once its lease has run out and
    finishes it, as one whole new version."""
    home = api.server.home
    dataset_id = approved(api, tmp_path, seed=1)
    with running_worker(api):
        assert api.publish(dataset_id)["version"] == 1
    api.wait_served(dataset_id, 1)
    before = visible_files(home)
    approved(api, tmp_path, dataset_id, seed=2)

    answer = api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice")
    assert answer.status_code == 202, answer.text
    doomed = start_worker(api, kill_at)
    assert doomed.wait(120) == -signal.SIGKILL
    job = api.get(answer.headers["Location"], "alice").json()
    # Its worker is dead and no other runs: the job waits, claimed, for its lease to end.
    assert (job["state"], job["attempts"]) == ("running", 1), job
    assert 0 < job["progress"] < 100 and job["step"] in ("converting", "releasing"), job
    if kill_at == "version":  # converted, not released: version 1 serves, as it was
        assert live_version(home, dataset_id) == 1 and visible_files(home) == before
        assert f"/{dataset_id}/1/" in api.get(f"/ogc/collections/{dataset_id}").text
    else:  # released whole before the kill: version 2 serves; the draft is not marked yet
        assert live_version(home, dataset_id) == 2
        assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()["state"] == \
            "approved"

    with running_worker(api):  # the rescuer
        job = api.follow(answer)
    assert job["state"] == "succeeded" and job["attempts"] == 2, job
    assert job["result"]["version"] == 2
    assert_queue_of_profile(api, job["id"])
    assert live_version(home, dataset_id) == 2
    assert sorted(p.name for p in (home / "datasets" / dataset_id).iterdir()) == ["1", "2"]
    assert not list(home.glob("**/.staging-*"))
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").status_code == 404
    api.wait_served(dataset_id, 2)
    assert api.get(f"/ogc/collections/{dataset_id}/coverage?f=GTiff&"
                   "subset=Lat(42.2:42.3),Long(74.2:74.3)").status_code == 200


def assert_queue_of_profile(api: Api, job_id: str) -> None:
    """The job went through the profile's own queue: procrastinate's table in PostgreSQL, or
    the home's SQLite file (and then no other)."""
    queue_file = api.server.home / "jobs" / "queue.sqlite"
    url = api.profile.get("TAZA_DATABASE_URL")
    if url is None:
        with sqlite3.connect(queue_file) as db:
            assert db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone() == \
                ("succeeded",)
        return
    assert not queue_file.exists()
    with psycopg.connect(url) as db:
        row = db.execute("SELECT p.status, p.task_name FROM taza_jobs t JOIN procrastinate_jobs "
                         "p ON p.id = t.procrastinate_id WHERE t.id = %s", (job_id,)).fetchone()
    assert row == ("succeeded", "publish")
