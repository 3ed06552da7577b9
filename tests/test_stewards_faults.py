"""Faults on the API's publishing path: concurrent publishes, and the worker SIGKILLed in the
middle of a publish or an upload. The previous version keeps serving; nothing partial shows."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.stewards_support import (  # noqa: F401 (api_environment: an autouse fixture)
    RUN_PROFILE,
    STATE_PROFILES,
    Api,
    api_environment,
    running_api,
    state_profile,
    wait_for,
    workers,
    write_geotiff,
)
from tests.test_publish import live_version, visible_files

BIG = 2000  # pixels a side: converting takes a second or more, a moment to act in


LEASE_SECONDS = 4  # a killed worker's job is taken again this long after its last renewal


@pytest.fixture(scope="module", params=RUN_PROFILE)
def api(request, tmp_path_factory):
    """One worker, so the process to kill is the one publishing (its job thread). Embedded;
    tests marked `on_both_engines` run on each stewards' engine."""
    with state_profile(request, "stewards_faults") as profile, running_api(
            tmp_path_factory.mktemp("stewards-faults"), workers=1,
            TAZA_JOB_LEASE_SECONDS=LEASE_SECONDS, **profile) as running:
        yield running


# The job queue (SQLite or procrastinate on PostgreSQL) and the drafts' state differ by engine:
# the queued/409 answer and a job outliving its worker run on both.
on_both_engines = pytest.mark.parametrize("api", STATE_PROFILES, indirect=True)


def approved_raster(api: Api, folder: Path, seed: int, dataset_id: str | None = None,
                    size: int = BIG) -> str:
    source = write_geotiff(folder / f"grid-{seed}.tif", size=size, seed=seed)
    if dataset_id is None:
        dataset_id, answer = api.draft_dataset("grid", source, "raster")
    else:
        answer = api.upload(dataset_id, source)
    assert answer.status_code == 201, answer.text
    for step, user in (("submit", "alice"), ("approve", "rita")):
        assert api.post(f"/api/datasets/{dataset_id}/draft/{step}", user).status_code == 200
    return dataset_id


@on_both_engines
def test_two_publishes_of_one_dataset_one_is_queued_the_other_409(api, tmp_path):
    dataset_id = approved_raster(api, tmp_path, seed=1)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(
            lambda _: api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice"), range(2)))
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["code"] == "Conflict" and loser["description"]
    job = api.follow(next(a for a in answers if a.status_code == 202))
    assert job["state"] == "succeeded" and job["result"]["version"] == 1
    assert live_version(api.server.home, dataset_id) == 1
    assert sorted(p.name for p in (api.server.home / "datasets" / dataset_id).iterdir()) == ["1"]
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").status_code == 404  # published


def test_publish_while_another_dataset_publishes_waits_its_turn(api, tmp_path):
    """Before the job queue this was 409; now the second publish is queued and runs next."""
    slow = approved_raster(api, tmp_path, seed=2)
    quick = approved_raster(api, tmp_path, seed=3, size=60)  # validates in milliseconds
    running = api.post(f"/api/datasets/{slow}/draft/publish", "alice")
    assert running.status_code == 202, running.text
    assert wait_for(lambda: list(api.server.home.glob(f"datasets/{slow}/.staging-*")), 60, 0.01)
    waiting = api.post(f"/api/datasets/{quick}/draft/publish", "alice")
    assert waiting.status_code == 202, waiting.text
    assert waiting.json()["state"] in ("queued", "running")
    assert api.follow(running)["state"] == "succeeded"
    assert api.follow(waiting)["result"]["version"] == 1
    assert live_version(api.server.home, quick) == 1
    assert live_version(api.server.home, slow) == 1


@on_both_engines
def test_worker_killed_mid_publish_job_is_run_again_to_completion(api, tmp_path):
    """SIGKILL the worker whose job thread is converting: the previous version serves, nothing
    partial shows at any moment, and the replacement worker runs the job again (its lease ran
    out) to completion."""
    home = api.server.home
    dataset_id = approved_raster(api, tmp_path, seed=4)
    assert api.publish(dataset_id)["version"] == 1
    api.wait_served(dataset_id, 1)
    before = visible_files(home)
    approved_raster(api, tmp_path, seed=5, dataset_id=dataset_id)

    queued = api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice")
    assert queued.status_code == 202, queued.text
    assert wait_for(lambda: list(home.glob(f"datasets/{dataset_id}/.staging-*")), 60, 0.005)
    [worker] = workers(api.server)
    os.kill(worker, signal.SIGKILL)

    def finished_without_showing_half() -> dict | None:
        # At every moment: version 1 as it was, or version 2 whole (its release is live).
        assert visible_files(home) == before or live_version(home, dataset_id) == 2
        try:
            job = api.get(queued.headers["Location"], "alice").json()
        except requests.ConnectionError:  # between the dead worker and its replacement
            return None
        return job if job["state"] in ("succeeded", "failed") else None

    job = wait_for(finished_without_showing_half, 180, 0.02)
    assert job and job["state"] == "succeeded", job
    assert job["attempts"] == 2 and job["result"]["version"] == 2
    assert workers(api.server) != [worker]
    assert not list(home.glob("**/.staging-*"))
    api.wait_served(dataset_id, 2)
    coverage = api.get(f"/ogc/collections/{dataset_id}/coverage?f=GTiff&"
                       "subset=Lat(42.2:42.3),Long(74.2:74.3)")
    assert coverage.status_code == 200
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").status_code == 404


def test_worker_killed_mid_upload_leaves_no_partial_file(api, tmp_path):
    home = api.server.home
    dataset_id, answer = api.draft_dataset("upload", write_geotiff(tmp_path / "a.tif"), "raster")
    assert answer.status_code == 201

    def slow_body():
        for _ in range(600):
            yield b"\0" * 65536
            time.sleep(0.01)

    thread = threading.Thread(target=lambda: _swallow(lambda: api.put(
        f"/api/datasets/{dataset_id}/draft/source", "alice",
        params={"filename": "b.tif"}, data=slow_body())))
    thread.start()
    assert wait_for(lambda: list(home.glob("stewards/tmp/*.part")), 30, 0.01)
    [worker] = workers(api.server)
    os.kill(worker, signal.SIGKILL)
    thread.join(60)
    # The draft still holds the earlier upload; the next upload removes the dead one's part.
    wait_for(lambda: api.get("/healthz").status_code == 200, 30)
    draft = api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()
    assert draft["upload"]["filename"] == "a.tif"
    assert api.upload(dataset_id, write_geotiff(tmp_path / "c.tif")).status_code == 201
    assert not list(home.glob("stewards/tmp/*.part"))


def _swallow(call) -> None:
    try:
        call()
    except requests.RequestException:
        pass
