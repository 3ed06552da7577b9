"""Several apps in one process (issue 12, item 4): nothing of an app lives in module globals,
neither ours nor pygeoapi's, so tests can build the app in process (`InProcess`, Flask's test
client) wherever a real server adds nothing.

Before, `/ogc` was pygeoapi's `flask_app` module with its `api_` and `CONFIG` swapped per
release: a second app in the same process took over the first one's pygeoapi answers. Here two
apps with different public URLs and homes answer side by side, each with its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import InProcess

# Answers from each part of the app: our Features routes, pygeoapi's coverage, process and
# OpenAPI views, the STAC API and the portal.
PATHS = ["/ogc/", "/ogc/collections", "/ogc/collections/elevation", "/ogc/processes",
         "/ogc/processes/site-screening", "/ogc/openapi?f=json", "/stac/", "/stac/collections",
         "/"]


@pytest.fixture(scope="module")
def two_apps(published_home: Path) -> tuple[InProcess, InProcess]:
    return (InProcess(published_home, "http://first.example"),
            InProcess(published_home, "http://second.example"))


@pytest.mark.parametrize("path", PATHS)
def test_two_apps_in_one_process_answer_each_with_its_own_address(two_apps, path):
    for app, other in (two_apps, two_apps[::-1]):
        answer = app.get(path)
        assert answer.status_code == 200, answer.text[:300]
        assert app.url in answer.text
        assert other.url not in answer.text


def test_an_app_over_an_empty_home_does_not_see_the_published_one(published_home, tmp_path):
    published = InProcess(published_home, "http://published.example")
    empty = InProcess(tmp_path, "http://empty.example")
    for _ in range(2):  # interleaved: neither app's release replaces the other's
        assert "elevation" in ids(published.get("/ogc/collections").json())
        assert ids(empty.get("/ogc/collections").json()) == []
        assert published.get("/ogc/collections/elevation/coverage",
                             params={"bbox": "74,42,74.1,42.1"}).status_code == 200
        assert empty.get("/ogc/collections/elevation/coverage").status_code == 404


def ids(collections: dict) -> list[str]:
    return [c["id"] for c in collections["collections"]]
