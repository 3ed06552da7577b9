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

from tests.conftest import start_server, stop_server
from tests.stewards_support import Api, running_api, wait_for, workers, write_geotiff
from tests.test_publish import live_version, visible_files

BIG = 2000  # pixels a side: converting takes a second or more, a moment to act in


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One worker, so the process to kill is the one publishing."""
    with running_api(tmp_path_factory.mktemp("stewards-faults"), workers=1) as running:
        yield running


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


def publish_in_background(api: Api, dataset_id: str) -> dict:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["response"] = api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice")
        except requests.ConnectionError as err:
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    outcome["thread"] = thread
    return outcome


def test_two_publishes_of_one_dataset_one_wins_the_other_409(api, tmp_path):
    dataset_id = approved_raster(api, tmp_path, seed=1)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(
            lambda _: api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice"), range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["code"] == "Conflict" and loser["description"]
    assert live_version(api.server.home, dataset_id) == 1
    assert sorted(p.name for p in (api.server.home / "datasets" / dataset_id).iterdir()) == ["1"]
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").status_code == 404  # published


def test_publish_while_another_dataset_publishes_gets_409(api, tmp_path):
    slow = approved_raster(api, tmp_path, seed=2)
    quick = approved_raster(api, tmp_path, seed=3, size=60)  # validates in milliseconds
    running = publish_in_background(api, slow)
    assert wait_for(lambda: list(api.server.home.glob(f"datasets/{slow}/.staging-*")), 60, 0.01)
    busy = api.post(f"/api/datasets/{quick}/draft/publish", "alice")
    running["thread"].join(120)
    assert running["response"].status_code == 200
    assert busy.status_code == 409 and "another publish" in busy.json()["description"]
    # Nothing was lost by the refusal: the draft is still approved and publishes now.
    assert api.get(f"/api/datasets/{quick}/draft", "alice").json()["state"] == "approved"
    assert api.post(f"/api/datasets/{quick}/draft/publish", "alice").status_code == 200


def test_worker_killed_mid_publish_leaves_previous_version(api, tmp_path):
    home = api.server.home
    dataset_id = approved_raster(api, tmp_path, seed=4)
    first = api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice")
    assert first.status_code == 200
    api.wait_served(dataset_id, 1)
    before = visible_files(home)
    approved_raster(api, tmp_path, seed=5, dataset_id=dataset_id)

    publishing = publish_in_background(api, dataset_id)
    assert wait_for(lambda: list(home.glob(f"datasets/{dataset_id}/.staging-*")), 60, 0.005)
    [worker] = workers(api.server)
    os.kill(worker, signal.SIGKILL)
    publishing["thread"].join(60)
    assert "error" in publishing or publishing["response"].status_code >= 500

    def check_previous_version_serves() -> None:
        assert live_version(home, dataset_id) == 1
        assert visible_files(home) == before
        coverage = api.get(f"/ogc/collections/{dataset_id}/coverage?f=GTiff&"
                           "subset=Lat(42.2:42.3),Long(74.2:74.3)")
        assert coverage.status_code == 200
        assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()["state"] == \
            "approved"

    # gunicorn replaced the worker; then a full restart, as after a crash of the machine.
    assert wait_for(lambda: workers(api.server) and workers(api.server) != [worker], 30)
    wait_for(lambda: api.get("/healthz").status_code == 200, 30)
    check_previous_version_serves()
    stop_server(api.server)
    api.server = start_server(home, workers=1)
    check_previous_version_serves()

    # The next publish clears the debris and completes; nothing partial remains anywhere.
    second = api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice")
    assert second.status_code == 200 and second.json()["version"] == 2
    assert not list(home.glob("**/.staging-*"))
    api.wait_served(dataset_id, 2)


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
