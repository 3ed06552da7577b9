"""A publish that fails for a problem of its source says the problem's code and params (issue
17): the stewards' API puts them in the failed job's error, and the review page says them in
its language (catalog/sources/finding_texts.yml).

The draft is checked and approved by a server with the usual limits; the server then starts
again with a lower limit (the pixel budget, the reader's largest written file), so the same
source fails at publish time, as when an operator lowers a limit between approval and publish.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from catalog.portal.i18n import strings
from catalog.sources.findings import finding_texts
from tests import test_portal
from tests.conftest import home_on_run_profile, start_server, stop_server
from tests.stewards_support import Api, running_api, write_geotiff
from tests.test_portal import sign_in

browser = test_portal.browser
page = test_portal.page

SIZE = 600  # pixels a side, one float32 band of noise: a COG of more than 1 MB


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with home_on_run_profile(request, tmp_path_factory.mktemp("publish-problems")) as home, \
            running_api(home, workers=1) as running:
        yield running


def approved_raster(api: Api, folder: Path, submit_only: bool = False) -> str:
    source = write_geotiff(folder / "grid.tif", size=SIZE, seed=7)
    dataset_id, answer = api.draft_dataset("grid", source, "raster")
    assert answer.status_code == 201, answer.text
    steps = [("submit", "alice")] + ([] if submit_only else [("approve", "rita")])
    for step, user in steps:
        response = api.post(f"/api/datasets/{dataset_id}/draft/{step}", user)
        assert response.status_code == 200, f"{step}: {response.text}"
    return dataset_id


def restart(api: Api, **environment: str) -> None:
    stop_server(api.server)
    api.server = start_server(api.server.home, workers=1, env=environment)


LIMITS = {
    # the source reader's pixel budget: a Problem of catalog/sources/raster.py
    "pixels": ({"TAZA_RASTER_MAX_PIXELS": "1000"}, "raster_too_many_pixels",
               {"width": SIZE, "height": SIZE, "bands": 1, "pixels": SIZE * SIZE,
                "limit": 1000}),
    # the isolated reader's limit on the files it writes (the COG): a ReaderFailed
    "file size": ({"TAZA_READER_FILE_MB": "1"}, "reader_file_size", {"mb": 1}),
}


@pytest.mark.parametrize("limit", sorted(LIMITS))
def test_a_publish_failing_on_a_source_limit_answers_the_code_and_params(api, tmp_path,
                                                                         limit):
    environment, code, params = LIMITS[limit]
    restart(api)  # the usual limits, whatever the previous case left
    dataset_id = approved_raster(api, tmp_path)
    restart(api, **environment)
    job = api.follow(api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice"))
    assert job["state"] == "failed", job
    error = job["error"]
    assert error["status"] == 422 and error["messageCode"] == "pipeline_rejected", error
    [found] = [p for p in error["problems"] if p.get("code") == code]
    assert {k: v for k, v in found["params"].items() if k != "file"} == params, found
    assert found["params"].get("file", ".tif").endswith(".tif"), found
    assert found["message"]  # the English words stay beside the code, for API clients
    assert set(finding_texts()[code]) == {"ky", "ru", "en"}
    # nothing was published: the dataset has no version, the draft waits approved
    assert api.get(f"/api/datasets/{dataset_id}/versions", "alice").status_code == 404
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").json()["state"] == "approved"


def test_the_review_page_says_the_failed_publish_in_russian(api, tmp_path, page: Page):
    restart(api)
    dataset_id = approved_raster(api, tmp_path, submit_only=True)
    restart(api, TAZA_RASTER_MAX_PIXELS="1000")
    page.goto(f"{api.server.url}/review?lang=ru")
    sign_in(page, "rita", "rita-password-1")
    item = page.locator(f'#queue li[data-dataset="{dataset_id}"]')
    item.locator("button.approve").click()
    expect(item.locator(".status").last).to_contain_text(strings()["steward_state_approved"]["ru"])
    item.locator("button.publish").click()
    expect(item.locator("progress.publish-progress")).to_have_attribute("data-state", "failed",
                                                                        timeout=60_000)
    status = item.locator(".publish-status")
    failed = strings()["pb.failed"]["ru"].split("{")[0]
    expect(status).to_contain_text(failed)
    ru = finding_texts()["raster_too_many_pixels"]["ru"]
    # the words between the params, in Russian, and the budget as the page writes numbers
    expect(status.locator(".publish-problem")).to_contain_text(
        ru.split("{pixels}")[1].split("{limit}")[0])
    expect(status.locator(".publish-problem")).to_contain_text(re.compile(r"1[\s\u00a0\u202f]?000"))
    text = status.inner_text()
    assert "accepts at most" not in text and "{" not in text, text
