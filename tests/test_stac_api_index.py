"""The STAC index follows the releases: updated by each publish for the changed dataset only,
and rebuilt or caught up by the API when it is missing or behind (the release is the truth)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from catalog import settings
from catalog.stac import build_catalog, write_static_catalog
from catalog.store import CatalogStore
from catalog.store.watch import CHECK_INTERVAL_S
from tests.conftest import (
    ITEM_IDS,
    SAMPLE_IDS,
    SERIES_IDS,
    copy_dataset,
    start_server,
    stop_server,
    taza,
)

# Every test reads the embedded STAC index's own file (stac-index.sqlite, its meta table).
pytestmark = pytest.mark.embedded_only(
    "reads the SQLite STAC index (stac-index.sqlite); pgstac following the releases: "
    "tests/test_stac_pgstac.py")


def last_update(home: Path) -> dict:
    """What the index recorded about its last update (release, datasets indexed, removed)."""
    with sqlite3.connect(home / "stac-index.sqlite") as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'last_update'").fetchone()
    return json.loads(row[0])


def search(server, **params) -> dict[str, dict]:
    response = server.get("/stac/search", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return {f["id"]: f for f in response.json()["features"]}


def test_a_publish_reindexes_only_its_dataset_and_is_searchable_at_once(published_copy,
                                                                          tmp_path):
    # publish --all releases dataset by dataset; each release indexed just the new one
    assert last_update(published_copy)["indexed"] == {SAMPLE_IDS[-1]: 1}
    server = start_server(published_copy)
    try:
        assert search(server)["airports"]["properties"]["version"] == "1"
        manifest = copy_dataset("airports", tmp_path / "edit")
        text = manifest.read_text(encoding="utf-8")
        manifest.write_text(text.replace("en: Airports and airfields of Kyrgyzstan",
                                         "en: Airports and airfields of Kyrgyzstan (revised)"),
                            encoding="utf-8")
        taza("publish", str(manifest), home=published_copy)
        # No waiting: the publish updated the index before it returned.
        found = search(server, ids="airports")["airports"]
        assert found["properties"]["version"] == "2"
        assert found["properties"]["title"].endswith("(revised)")
        assert {f["id"] for f in search(server, q="revised").values()} == {"airports"}
        assert all(asset["href"].startswith(f"{server.url}/assets/airports/2/")
                   for asset in found["assets"].values())
        release = CatalogStore(published_copy).current().number
        update = last_update(published_copy)
        assert update["release"] == release
        assert update["indexed"] == {"airports": 1} and update["removed"] == []
        assert set(search(server)) == set(ITEM_IDS)
    finally:
        stop_server(server)


def test_a_missing_index_is_built_from_the_live_release_on_first_use(published_copy):
    for path in published_copy.glob("stac-index.sqlite*"):
        path.unlink()
    server = start_server(published_copy)
    try:
        assert set(search(server)) == set(ITEM_IDS)
        # Items indexed per dataset: one, or one per month of a time series.
        assert last_update(published_copy)["indexed"] == {
            dataset_id: sum(item.startswith(f"{dataset_id}-") for item in ITEM_IDS)
            if dataset_id in SERIES_IDS else 1 for dataset_id in SAMPLE_IDS}
    finally:
        stop_server(server)


def test_an_index_left_behind_by_a_crash_catches_up(published_copy):
    """A release switched without the index update (as if the publisher died in between)."""
    server = start_server(published_copy)
    try:
        assert "airports" in search(server)
        store = CatalogStore(published_copy)
        with store.lock():
            datasets = {k: v for k, v in store.current().datasets.items() if k != "airports"}
            records = [store.record(k, v) for k, v in sorted(datasets.items())]
            store.switch(datasets, lambda target: write_static_catalog(
                build_catalog(records, settings.themes(), store.assets), target))
        time.sleep(CHECK_INTERVAL_S + 0.2)  # the API compares with current.json once a second
        assert set(search(server)) == set(ITEM_IDS) - {"airports"}
        update = last_update(published_copy)
        assert update["removed"] == ["airports"] and update["indexed"] == {}
        assert update["release"] == store.current().number
    finally:
        stop_server(server)
