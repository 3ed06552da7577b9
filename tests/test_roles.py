"""Processes find their layers by the role manifests give them, not by dataset id (issue 12,
item 5): a catalog whose boundary and coverage datasets have other ids runs every process
and answers as the sample catalog does; roles are checked when a manifest is read and when
it is published, and one live dataset holds each role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.conftest import DATASETS, SAMPLE_IDS, copy_dataset, start_server, stop_server, taza

RENAMED = {"kyrgyzstan-boundary": "country-outline", "mobile-coverage": "cell-coverage"}


def catalog_with_other_ids(folder: Path) -> list[Path]:
    """The sample manifests and sources, the boundary and the coverage under other ids."""
    manifests = []
    for dataset_id in SAMPLE_IDS:
        manifest = copy_dataset(dataset_id, folder)
        new_id = RENAMED.get(dataset_id)
        if new_id:
            text = manifest.read_text().replace(f"id: {dataset_id}\n", f"id: {new_id}\n", 1)
            manifest.unlink()
            manifest = folder / f"{new_id}.yaml"
            manifest.write_text(text)
        manifests.append(manifest)
    return manifests


def with_role(dataset_id: str, folder: Path, role: str | None) -> Path:
    """A copy of a sample manifest with its role replaced (None: no role)."""
    manifest = copy_dataset(dataset_id, folder)
    text = re.sub(r"^role: .*\n", "", manifest.read_text(), flags=re.M)
    if role is not None:
        text = text.replace("\ntheme:", f"\nrole: {role}\ntheme:", 1)
    manifest.write_text(text)
    return manifest


def execute(url: str, process: str, inputs: dict) -> requests.Response:
    return requests.post(f"{url}/ogc/processes/{process}/execution", json={"inputs": inputs},
                         timeout=120)


@pytest.fixture(scope="module")
def renamed_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("renamed-datasets")
    home = tmp_path_factory.mktemp("renamed-home")
    taza("publish", *map(str, catalog_with_other_ids(folder)), home=home)
    running = start_server(home, workers=1)
    yield running
    stop_server(running)


def test_the_processes_run_over_layers_with_other_ids(server, renamed_server):
    listed = renamed_server.get("/ogc/processes").json()["processes"]
    assert {p["id"] for p in listed} == {"site-screening", "coverage-statistics",
                                         "zonal-statistics"}
    assert {c["id"] for c in renamed_server.get("/ogc/collections").json()["collections"]} \
        >= set(RENAMED.values())
    for process, inputs in (("coverage-statistics", {"include_regions": False}),
                            ("zonal-statistics", {"raster": "slope", "region": "KG-C"}),
                            ("site-screening", {"region": "KG-T", "limit": 3})):
        renamed = execute(renamed_server.url, process, inputs)
        sample = execute(server.url, process, inputs)
        assert renamed.status_code == sample.status_code == 200, renamed.text
        assert renamed.json() == _named(sample.json()), process


def _named(answer):
    """The sample catalog's answer with the renamed datasets' ids as in the renamed one."""
    if isinstance(answer, dict):
        return {k: _named(v) for k, v in answer.items()}
    if isinstance(answer, list):
        return [_named(v) for v in answer]
    if isinstance(answer, str):  # every mention of a renamed dataset's id
        return re.sub(r"\b(?:kyrgyzstan-boundary|mobile-coverage)\b",
                      lambda found: RENAMED[found.group(0)], answer)
    return answer


def test_the_notes_name_the_dataset_that_holds_the_role(renamed_server):
    answer = execute(renamed_server.url, "coverage-statistics", {"include_regions": False})
    assert "(dataset cell-coverage)" in answer.json()["table"]["notes"]["coverage"]


@pytest.mark.parametrize(("dataset_id", "role", "words"), [
    ("airports", "capital", "'capital' is not one of: boundary, settlements"),
    ("airports", "elevation", "'elevation' is a raster role; this source is a vector"),
    ("slope", "boundary", "'boundary' is a vector role; this source is a raster"),
    ("airports", "[settlements]", "is not one of"),
    ("kyrgyzstan-boundary", "airports", "the airports layer has Point geometries; this source "
                                        "has Polygon"),
    ("airports", "settlements", "the settlements layer needs the attribute(s) population, "
                                "region_iso; this source lacks them"),
    ("settlements", "coverage", "the coverage layer has Polygon geometries"),
])
def test_a_role_the_layer_cannot_play_is_refused(tmp_path, dataset_id, role, words):
    manifest = with_role(dataset_id, tmp_path, role)
    result = taza("validate", str(manifest), home=tmp_path / "home", check=False)
    assert result.returncode == 1
    assert words in result.stderr, result.stderr
    assert "role" in result.stderr


def test_one_live_dataset_per_role(renamed_server, tmp_path):
    """The original boundary (role boundary) next to country-outline: refused before any
    conversion, and the catalog keeps serving as it was."""
    before = renamed_server.get("/healthz").json()["release"]
    manifest = copy_dataset("kyrgyzstan-boundary", tmp_path)
    result = taza("publish", str(manifest), home=renamed_server.home, check=False)
    assert result.returncode == 1
    assert "country-outline already holds the role 'boundary'" in result.stderr
    assert not (renamed_server.home / "datasets" / "kyrgyzstan-boundary").exists()
    assert renamed_server.get("/healthz").json()["release"] == before
    # Without the role it is just another layer: published, and the processes are unchanged.
    result = taza("publish", str(with_role("kyrgyzstan-boundary", tmp_path, None)),
                  home=renamed_server.home)
    assert "published kyrgyzstan-boundary version 1" in result.stdout
    answer = execute(renamed_server.url, "zonal-statistics", {"raster": "slope"})
    assert answer.status_code == 200


def test_every_sample_dataset_holds_its_role():
    roles = {}
    for path in sorted(DATASETS.glob("*.yaml")):
        found = re.search(r"^role: (\S+)$", path.read_text(), flags=re.M)
        roles[path.stem] = found.group(1) if found else None
    assert roles == {"airports": "airports", "elevation": "elevation",
                     "kyrgyzstan-boundary": "boundary", "mobile-coverage": "coverage",
                     "settlements": "settlements", "slope": "slope", "oblasts": "regions",
                     "lakes": "lakes", "rivers": "rivers", "kyrgyzstan-border-osm": None,
                     "towns-simplemaps": None,
                     "land-cover": "land-cover", "urbanisation": "urbanisation",
                     "climate-zones": "climate-zones", "precipitation-normals": None,
                     "temperature-normals": None}


def test_a_rollback_that_would_bring_two_holders_together_is_refused(tmp_path, scratch_home):
    """v1 of the boundary holds the role, v2 does not and country-outline takes it: rolling
    the boundary back to v1 would make two holders, so the release stays as it is."""
    taza("publish", str(copy_dataset("kyrgyzstan-boundary", tmp_path / "v1")), home=scratch_home)
    without = with_role("kyrgyzstan-boundary", tmp_path / "v2", None)
    with without.open("a") as manifest:
        manifest.write("# version 2: no role\n")
    taza("publish", str(without), home=scratch_home)
    outline = catalog_with_other_ids(tmp_path / "renamed")
    taza("publish", *[str(p) for p in outline if p.stem == "country-outline"], home=scratch_home)
    result = taza("rollback", "kyrgyzstan-boundary", "1", home=scratch_home, check=False)
    assert result.returncode != 0
    assert "would both hold the role 'boundary'" in result.stderr + result.stdout
    listing = taza("list", home=scratch_home).stdout
    assert re.search(r"kyrgyzstan-boundary +version 2 ", listing), listing
