"""Every answer stays the same: each request of tests/golden/cases.py against the real server
over the sample catalog, compared field by field with its golden entry (tests/golden/*.json).

A failure names the request and each field that changed. After a deliberate change, re-record
with `python -m tests.golden record [GROUP ...]` and review `git diff tests/golden`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import TEST_PROFILE
from tests.golden import answers, load
from tests.golden.cases import CASES, GROUPS

# The answers recorded on the embedded profile that differ on the PostgreSQL test profile
# (TAZA_TEST_PROFILE=postgresql), by design: (requests, the differences allowed: a field's
# path, or one whole difference line). Any other difference fails there as it does here.
POSTGRESQL_DIFFERENCES = [
    # /healthz names the engine.
    (re.compile(r"GET /healthz"), {'body.json.backend: expected "embedded", got "postgresql"'}),
    # Vector tiles are encoded by PostGIS (ST_AsMVT) instead of mapbox-vector-tile: the same
    # features with the same properties (compared decoded), other geometry bytes.
    (re.compile(r"GET /tiles/[^ ]+\.mvt$"), {"body.sha256", "body.size", "headers.Etag"}),
    # The static STAC tree is read from the release's rows, not files: a content ETag (its
    # Last-Modified is the file's time, as on the embedded profile; its 404s name the document
    # on both profiles).
    (re.compile(r"GET /stac/[^ ]*\.json"), {"headers.Etag"}),
]


def allowed_on_this_profile(key: str, found: list[str]) -> list[str]:
    """The differences left once those the PostgreSQL test profile has by design are set
    apart (none are on the embedded profile)."""
    if TEST_PROFILE != "postgresql":
        return found
    allowed = set().union(*(fields for pattern, fields in POSTGRESQL_DIFFERENCES
                            if pattern.match(key)))
    return [line for line in found
            if line not in allowed and line.split(":", 1)[0] not in allowed]


@pytest.fixture(scope="module")
def client(server) -> Iterator[tuple[requests.Session, answers.Run]]:
    session = answers.new_session()
    yield session, answers.Run(server.url, answers.publish_instants(session, server.url))
    session.close()


@pytest.fixture(scope="module")
def golden() -> dict[str, dict | None]:
    return {group: load(group) for group in GROUPS}


@pytest.mark.parametrize("case", CASES, ids=[case.key for case in CASES])
def test_answer_is_as_recorded(server, client, golden, case):
    document = golden[case.group]
    if document is None:
        pytest.fail(f"tests/golden/{case.group}.json is missing: "
                    f"python -m tests.golden record {case.group}", pytrace=False)
    expected = answers.expected_entry(document, case.key)
    if expected is None:
        pytest.fail(f"{case.key}: not recorded in tests/golden/{case.group}.json "
                    f"(python -m tests.golden record {case.group})", pytrace=False)
    session, run = client
    actual = answers.entry(case, answers.send(session, server.url, case), run)
    found = allowed_on_this_profile(case.key, answers.differences(expected, actual))
    if found:
        pytest.fail(f"{case.key} answers differently from tests/golden/{case.group}.json:\n  "
                    + "\n  ".join(found), pytrace=False)


def test_every_recorded_answer_has_its_request():
    """A request removed from cases.py takes its golden entry with it (re-record the group)."""
    keys = {case.key for case in CASES}
    stale = [f"{group}: {key}" for group in GROUPS for key in (load(group) or {"answers": {}})
             ["answers"] if key not in keys]
    assert not stale, "golden entries without a request in tests/golden/cases.py: " + \
        "; ".join(stale)


# -- the normalisation itself: masks hide only what differs between runs ---------------------

def test_masks_touch_only_the_run_address_publish_instants_and_job_ids():
    run = answers.Run("http://127.0.0.1:5555", frozenset({"2026-12-03T12:16:38+00:00"}))
    text = ("http://127.0.0.1:5555/ogc ?next=http%3A%2F%2F127.0.0.1%3A5555%2Fstac 127.0.0.1:5555 "
            "2026-12-03T12:16:38+00:00 2026-12-03T12:16:38Z 2026-12-03T12:16:39Z "
            "2023-01-01T00:00:00Z /ogc/jobs/0b8d5a1e-7c1f-4c7e-9e2a-3f5b6c7d8e9f "
            "http://127.0.0.1:5556/")
    assert run.text(text) == (
        "http://SERVER/ogc ?next=http%3A%2F%2FSERVER%2Fstac SERVER <published> <published> "
        "2026-12-03T12:16:39Z 2023-01-01T00:00:00Z /ogc/jobs/<uuid> http://127.0.0.1:5556/")


GEOPACKAGE = "application/geopackage+sqlite3"


def test_checksums_are_masked_only_for_geopackages():
    assets = {"gpkg": {"type": GEOPACKAGE, "file:checksum": "1220aa"},
              "tif": {"type": "image/tiff", "file:checksum": "1220bb"},
              "page": {"timeStamp": "2026-12-03T12:16:38.123456Z", "numberMatched": 112}}
    assert answers.normalise_json(assets) == {
        "gpkg": {"type": GEOPACKAGE, "file:checksum": "<GeoPackage checksum>"},
        "tif": {"type": "image/tiff", "file:checksum": "1220bb"},
        "page": {"timeStamp": "<timeStamp>", "numberMatched": 112}}


def test_differences_name_the_field_and_both_values():
    expected = {"status": 200, "body": {"json": {"links": [{"title": "Items"}], "n": 1}}}
    actual = {"status": 200, "body": {"json": {"links": [{"title": "items"}], "n": 1.0}}}
    assert answers.differences(expected, actual) == [
        'body.json.links[0].title: expected "Items", got "items"',
        "body.json.n: expected 1, got 1.0"]
    lines = {"lines": ["<p>", "a", "</p>"]}
    assert answers.differences(lines, {"lines": ["<p>", "b", "</p>"]})[0] == \
        "lines: text differs:"
