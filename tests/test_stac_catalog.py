"""The static STAC catalog at /stac: valid against the STAC schemas, consistent with the data."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pystac

from tests.conftest import ITEM_IDS
from tests.stac_api_validator_offline import load_map

CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
EXTENSIONS = {  # one fixed set of extension versions; a change must be deliberate
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",  # proj:epsg for GDAL 3.6
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/version/v1.2.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/table/v1.2.0/schema.json",
    CLASSIFICATION,
}


def schema_map_args(schemas: Path | None) -> list[str]:
    """stac-validator's --schema-map pairs for offline use; none means it downloads schemas."""
    if schemas is None:
        return []
    args = []
    for url, path in load_map(schemas).items():
        args += ["--schema-map", url, str(path)]
    return args


def test_stac_validator_accepts_the_whole_catalog(server, stac_schemas, tmp_path):
    log = tmp_path / "stac-validator.json"
    command = [str(Path(sys.executable).parent / "stac-validator"), "validate",
               f"{server.url}/stac/catalog.json", "--recursive", "--links", "--assets",
               "--no_output", "--log_file", str(log), *schema_map_args(stac_schemas)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert log.exists(), f"stac-validator wrote no report:\n{result.stdout}\n{result.stderr}"
    report = json.loads(log.read_text())
    invalid = [r for r in report if not r.get("valid_stac")]
    assert not invalid, json.dumps(invalid, indent=1)[:4000]
    validated = {r["path"].rsplit("/", 1)[-1] for r in report}
    for item_id in ITEM_IDS:
        assert f"{item_id}.json" in validated  # every item was reached and checked


def test_catalog_walk_matches_published_files(server):
    root = pystac.Catalog.from_file(f"{server.url}/stac/catalog.json")
    items = list(root.get_items(recursive=True))
    assert sorted(i.id for i in items) == sorted(ITEM_IDS)
    assert [c.id for c in root.get_children()] == ["land", "infrastructure", "coverage"]
    for item in items:
        # What is served: pystac migrates extensions (projection v1.1.0 -> v2.0.0) on reading.
        served = pystac.StacIO.default().read_json(item.get_self_href())
        assert set(served["stac_extensions"]) <= EXTENSIONS
        for asset in item.assets.values():
            url = urljoin(item.get_self_href(), asset.href)
            body = subprocess.run(["curl", "-sf", url], capture_output=True, timeout=60).stdout
            assert len(body) == asset.extra_fields["file:size"]
            assert "1220" + hashlib.sha256(body).hexdigest() == asset.extra_fields["file:checksum"]


def test_collections_carry_licence_provenance_and_translations(server):
    root = pystac.Catalog.from_file(f"{server.url}/stac/catalog.json")
    for collection in root.get_all_collections():
        fields = collection.extra_fields
        assert collection.license
        assert any(link.rel == "license" for link in collection.links)
        assert fields["taza:provenance"]["method"]
        assert fields["taza:provenance"]["derived_from"]
        assert fields["taza:attribution"]
        assert set(fields["taza:translations"]) == {"ru", "ky"}
        assert fields["taza:translations"]["ky"]["title"]
    coverage = root.get_child("coverage")
    modelled = coverage.get_child("mobile-coverage")
    assert "modelled estimate" in modelled.title.lower()
    assert modelled.extra_fields["taza:nature"] == "modelled"
    assert "44.9" in coverage.description and "1,242" in coverage.description
