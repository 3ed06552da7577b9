"""Takedown (issue 11, item 4): after a rollback or a withdrawal only the live version is public
on every surface (assets with Range, tiles, dataset page, STAC API and static catalog, /api
versions and files), while the dataset's stewards, reviewers and admins still read the earlier
ones through /api; `taza purge` removes a version's every trace, with an audit entry."""

from __future__ import annotations

import json
import math
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import urljoin

import pytest

from catalog import settings
from tests.conftest import home_on_run_profile, taza
from tests.stewards_support import (
    Api,
    make_manifest,
    polygon_features,
    running_api,
    wait_for,
    write_geojson,
    write_geotiff,
)

IN_SCOPE = ("alice", "rita", "root")  # the owner's steward, a national reviewer, an admin
OUTSIDE = (None, "bob")  # anonymous, a steward of another organisation


@pytest.fixture(scope="module")
def api(request, tmp_path_factory):
    """One worker, so every answer comes from a worker that has seen the latest release."""
    with home_on_run_profile(request, tmp_path_factory.mktemp("takedown")) as home, \
            running_api(home, workers=1) as running:
        yield running


def tile_at(lon: float, lat: float, z: int = 8) -> str:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"{z}/{x}/{y}"


TILE = tile_at(74.05, 42.55)  # over the parcels and inside the test rasters


def source(folder: Path, kind: str, seed: int, marker: str = "") -> Path:
    if kind == "raster":
        return write_geotiff(folder / f"grid-{seed}.tif", size=60, seed=seed)
    features = polygon_features(3 + seed)
    for feature in features:
        feature["properties"]["name"] += marker
    return write_geojson(folder / f"parcels-{seed}.geojson", features)


def two_versions(api: Api, folder: Path, kind: str, title: str = "") -> str:
    """A dataset of alice's organisation with versions 1 and 2 (2 live), tiles of both cached."""
    dataset_id, answer = api.draft_dataset(f"down-{kind}", source(folder, kind, 1), kind)
    assert answer.status_code == 201, answer.text
    api.review_and_publish(dataset_id)
    assert api.get(tile_url(dataset_id, 1, kind)).status_code == 200
    assert api.upload(dataset_id, source(folder, kind, 2, marker=title)).status_code == 201
    if title:
        manifest = make_manifest(dataset_id, kind, title={"en": f"Parcels {title}",
                                                          "ru": "Участки", "ky": "Участоктор"})
        assert api.put_manifest(dataset_id, manifest).status_code == 200
    assert api.review_and_publish(dataset_id)["version"] == 2
    assert api.get(tile_url(dataset_id, 2, kind)).status_code == 200
    return dataset_id


def asset_name(dataset_id: str, kind: str) -> str:
    return f"{dataset_id}.geojson" if kind == "vector" else f"{dataset_id}.tif"


def tile_url(dataset_id: str, version: int, kind: str) -> str:
    if kind == "vector":
        return f"/tiles/{dataset_id}/{version}/{TILE}.mvt"
    return f"/tiles/{dataset_id}/{version}/values/{TILE}.png"


def anonymous_answers(api: Api, dataset_id: str, version: int, kind: str) -> dict[str, int]:
    """What the public gets for one version on the surfaces that name versions."""
    asset = f"/assets/{dataset_id}/{version}/{asset_name(dataset_id, kind)}"
    api_file = f"/api/datasets/{dataset_id}/versions/{version}/files/{asset_name(dataset_id, kind)}"
    return {"asset": api.get(asset).status_code,
            "asset range": api.get(asset, headers={"Range": "bytes=0-99"}).status_code,
            "tile": api.get(tile_url(dataset_id, version, kind)).status_code,
            "api file": api.get(api_file).status_code}


LIVE = {"asset": 200, "asset range": 206, "tile": 200, "api file": 200}
TAKEN_DOWN = {"asset": 404, "asset range": 404, "tile": 404, "api file": 401}


def listed_versions(api: Api, dataset_id: str, user: str | None) -> list[int] | int:
    answer = api.get(f"/api/datasets/{dataset_id}/versions", user)
    if answer.status_code != 200:
        return answer.status_code
    return [v["version"] for v in answer.json()["versions"]]


def file_answers(api: Api, dataset_id: str, version: int, kind: str) -> dict:
    path = f"/api/datasets/{dataset_id}/versions/{version}/files/{asset_name(dataset_id, kind)}"
    answers = {user: api.get(path, user).status_code for user in (*OUTSIDE, *IN_SCOPE)}
    answers["alice range"] = api.get(path, "alice", headers={"Range": "bytes=0-9"}).status_code
    return answers


def stac_api_versions(api: Api, dataset_id: str) -> set[str] | int:
    """Versions the STAC API shows: the collection's and those its items' assets link to."""
    collection = api.get(f"/stac/collections/{dataset_id}")
    if collection.status_code != 200:
        return collection.status_code
    items = api.get(f"/stac/search?collections={dataset_id}").json()["features"]
    return {collection.json()["version"]} | asset_versions(items)


def static_stac_versions(api: Api, dataset_id: str) -> set[str]:
    """The same, walking the static catalog from /stac/catalog.json."""
    found: set[str] = set()
    root = api.url + "/stac/catalog.json"
    for theme in children(api, root, "child"):
        for collection_url in children(api, theme, "child"):
            collection = api.get(collection_url.removeprefix(api.url)).json()
            if collection["id"] == dataset_id:
                found.add(collection["version"])
                items = [api.get(u.removeprefix(api.url)).json()
                         for u in children(api, collection_url, "item")]
                found |= asset_versions(items, collection_url)
    return found


def children(api: Api, url: str, rel: str) -> list[str]:
    document = api.get(url.removeprefix(api.url)).json()
    return [urljoin(url, link["href"]) for link in document["links"] if link["rel"] == rel]


def asset_versions(items: list[dict], base: str = "") -> set[str]:
    hrefs = [urljoin(base, a["href"]) for item in items for a in item["assets"].values()]
    return {h.split("/assets/")[1].split("/")[1] for h in hrefs if "/assets/" in h}


def dataset_page(api: Api, dataset_id: str) -> str | int:
    page = api.get(f"/datasets/{dataset_id}?lang=en")
    return page.text if page.status_code == 200 else page.status_code


@pytest.mark.parametrize("kind", ["vector", "raster"])
def test_after_a_rollback_only_the_live_version_is_public(api, tmp_path, kind):
    dataset_id = two_versions(api, tmp_path, kind)
    assert anonymous_answers(api, dataset_id, 2, kind) == LIVE
    assert api.post(f"/api/datasets/{dataset_id}/rollback", "alice",
                    json={"version": 1}).status_code == 200
    api.wait_served(dataset_id, 1)

    assert anonymous_answers(api, dataset_id, 1, kind) == LIVE
    assert anonymous_answers(api, dataset_id, 2, kind) == TAKEN_DOWN
    page = dataset_page(api, dataset_id)
    assert f"/assets/{dataset_id}/1/" in page and f"/assets/{dataset_id}/2/" not in page
    assert wait_for(lambda: stac_api_versions(api, dataset_id) == {"1"}, 5)
    assert static_stac_versions(api, dataset_id) == {"1"}
    # /api: the public and other organisations see the live version; the scope sees both.
    assert {user: listed_versions(api, dataset_id, user) for user in (*OUTSIDE, *IN_SCOPE)} \
        == {None: [1], "bob": [1], "alice": [1, 2], "rita": [1, 2], "root": [1, 2]}
    assert file_answers(api, dataset_id, 2, kind) == {
        None: 401, "bob": 403, "alice": 200, "rita": 200, "root": 200, "alice range": 206}
    # A version's URLs no longer promise "immutable, one year": five minutes, revalidated.
    for path in (f"/assets/{dataset_id}/1/{asset_name(dataset_id, kind)}",
                 tile_url(dataset_id, 1, kind),
                 f"/api/datasets/{dataset_id}/versions/1/files/{asset_name(dataset_id, kind)}"):
        answer = api.get(path)
        assert answer.headers["Cache-Control"] == settings.VERSION_CACHE_CONTROL, path
        assert answer.headers["ETag"], path
    private = api.get(f"/api/datasets/{dataset_id}/versions/2/files/"
                      f"{asset_name(dataset_id, kind)}", "alice")
    assert private.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("kind", ["vector", "raster"])
def test_after_a_withdrawal_no_version_is_public(api, tmp_path, kind):
    dataset_id = two_versions(api, tmp_path, kind)
    assert api.post(f"/api/datasets/{dataset_id}/withdraw", "alice").status_code == 200
    api.wait_served(dataset_id, None)

    for version in (1, 2):
        assert anonymous_answers(api, dataset_id, version, kind) == TAKEN_DOWN
        assert api.get(f"/assets/{dataset_id}/latest/{asset_name(dataset_id, kind)}",
                       allow_redirects=False).status_code == 404
        assert file_answers(api, dataset_id, version, kind) == {
            None: 401, "bob": 403, "alice": 200, "rita": 200, "root": 200, "alice range": 206}
    assert dataset_page(api, dataset_id) == 404
    assert wait_for(lambda: stac_api_versions(api, dataset_id) == 404, 5)
    assert static_stac_versions(api, dataset_id) == set()
    assert {user: listed_versions(api, dataset_id, user) for user in (*OUTSIDE, *IN_SCOPE)} \
        == {None: 401, "bob": 403, "alice": [1, 2], "rita": [1, 2], "root": [1, 2]}


def test_purge_removes_every_trace_of_a_version_and_is_audited(api, tmp_path):
    home = api.server.home
    marker = f"takedown-{uuid.uuid4().hex}"  # in version 2's title and features only
    dataset_id = two_versions(api, tmp_path, "vector", title=marker)
    assert wait_for(lambda: stac_api_versions(api, dataset_id) == {"2"}, 5)  # indexed
    assert api.get(f"/stac/search?q={marker}").json()["features"]
    assert api.post(f"/api/datasets/{dataset_id}/rollback", "alice",
                    json={"version": 1}).status_code == 200
    api.wait_served(dataset_id, 1)
    assert files_holding(home, marker.encode())  # still on disk: taken down, not purged
    assert cached_tiles(home, dataset_id) == {1: 1, 2: 1}

    live = taza("purge", dataset_id, "1", "--reason", "test", home=home, check=False)
    assert live.returncode == 1 and "is live: withdraw" in live.stderr
    assert "roll back to another version first" in live.stderr
    missing = taza("purge", dataset_id, "9", "--reason", "test", home=home, check=False)
    assert missing.returncode == 1 and "has no version 9" in missing.stderr
    no_reason = taza("purge", dataset_id, "2", "--reason", " ", home=home, check=False)
    assert no_reason.returncode == 1 and "say why" in no_reason.stderr

    purged = taza("purge", dataset_id, "2", "--reason", "court order 17/2026", home=home)
    assert f"purged {dataset_id} version 2" in purged.stdout
    # Nothing holds its content: version folder, cached tiles, STAC trees and index, the
    # publishing draft's files, the server's runtime files.
    assert files_holding(home, marker.encode()) == []
    assert not (home / "datasets" / dataset_id / "2").exists()
    assert cached_tiles(home, dataset_id) == {1: 1}  # version 2's gone, version 1's kept
    for release in home.glob("releases/*/release.json"):
        assert json.loads(release.read_text())["datasets"].get(dataset_id) != 2, release
    assert not api.get(f"/stac/search?q={marker}").json()["features"]
    # Nothing lets it come back, and its number is never used again.
    assert listed_versions(api, dataset_id, "root") == [1]
    assert api.post(f"/api/datasets/{dataset_id}/rollback", "alice",
                    json={"version": 2}).status_code == 404
    assert "no released version 2" in taza("rollback", dataset_id, "2", home=home,
                                           check=False).stderr
    assert api.get(f"/api/datasets/{dataset_id}/versions/2/files/{dataset_id}.geojson",
                   "root").status_code == 404
    assert api.upload(dataset_id, source(tmp_path, "vector", 3)).status_code == 201
    assert api.review_and_publish(dataset_id)["version"] == 3

    log = api.get(f"/api/audit?dataset={dataset_id}", "root").json()
    intent, outcome = [e for e in log["entries"] if "dataset.purge" in
                       (e["action"], e["detail"].get("operation"))]
    assert intent["action"] == "release.intent" and outcome["action"] == "dataset.purge"
    assert intent["detail"]["version"] == outcome["detail"]["version"] == 2
    assert intent["actor"].startswith("cli:") and outcome["detail"]["intent"] == intent["seq"]
    assert outcome["detail"]["reason"] == "court order 17/2026"
    assert outcome["detail"]["files"] > 0 and outcome["detail"]["releases_rewritten"]
    assert outcome["detail"]["tiles"] == 1
    assert log["chain"]["ok"]


def files_holding(home: Path, needle: bytes) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and needle in p.read_bytes())


def cached_tiles(home: Path, dataset_id: str) -> dict[int, int]:
    """Version -> tiles of the dataset in the tile cache (catalog/store/tile_cache.py)."""
    with sqlite3.connect(home / "cache" / "tiles.sqlite") as cache:
        return dict(cache.execute("SELECT version, count(*) FROM tiles WHERE dataset = ? "
                                  "GROUP BY version", (dataset_id,)).fetchall())
