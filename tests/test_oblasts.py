"""The oblasts layer (datasets/derive_oblasts.py) against its sources and the official figures,
served by the real server; the settlements' regions against it; the Jalal-Abad correction."""

from __future__ import annotations

import re

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape

from tests.conftest import ROOT

GEOD = Geod(ellps="WGS84")

# Official areas (km²) of the National Statistical Committee of the Kyrgyz Republic, as
# tabulated (with the 1999/2009 census populations) in English Wikipedia, "Regions of
# Kyrgyzstan" / "Administrative divisions of Kyrgyzstan", 2012 revision. Other editions of
# that table differ by a few percent (Chuy 19,895; Naryn 44,160), hence the tolerance.
OFFICIAL_KM2 = {"KG-B": 17_023.9, "KG-C": 18_684.4, "KG-J": 33_647.5, "KG-N": 46_706.9,
                "KG-O": 29_165.1, "KG-T": 11_445.9, "KG-Y": 43_114.0}
OFFICIAL_BISHKEK_KM2 = 127.3
# Places whose unit is certain, (lon, lat) -> ISO 3166-2 code of the polygon holding them.
KNOWN_PLACES = {
    "Bishkek, Ala-Too Square": ((74.6037, 42.8765), "KG-GB"),
    "Karakol": ((78.3936, 42.4907), "KG-Y"),
    "Issyk-Kul lake, centre": ((77.30, 42.45), "KG-Y"),
    "Naryn": ((75.9911, 41.4287), "KG-N"),
    "Talas": ((72.2425, 42.5228), "KG-T"),
    "Batken": ((70.8194, 40.0628), "KG-B"),
    "Jalal-Abad": ((72.9930, 40.9450), "KG-J"),
    "Osh (city, inside Osh Region's polygon)": ((72.7985, 40.5283), "KG-O"),
    "Tokmok": ((75.2906, 42.8419), "KG-C"),
}
# ISO 3166-2 code -> (Wikidata id, GeoNames id) of Natural Earth's attributes.
IDS = {"KG-B": ("Q487631", 1463580), "KG-C": ("Q486370", 1538652), "KG-GB": ("Q9361", 1528334),
       "KG-J": ("Q487640", 1529778), "KG-N": ("Q486375", 1527590), "KG-O": ("Q47282", 1346798),
       "KG-T": ("Q109838", 1527297), "KG-Y": ("Q487413", 1528260)}


def items(server, collection: str) -> list[dict]:
    answer = server.get(f"/ogc/collections/{collection}/items", params={"f": "json",
                                                                      "limit": 1000})
    assert answer.status_code == 200, answer.text
    return answer.json()["features"]


@pytest.fixture(scope="module")
def oblasts(server) -> dict[str, dict]:
    return {f["properties"]["region_iso"]: f for f in items(server, "oblasts")}


def km2(geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geometry)[0]) / 1e6


def test_eight_units_with_codes_ids_and_names_in_three_languages(oblasts):
    assert sorted(oblasts) == sorted(IDS)
    for code, feature in oblasts.items():
        props = feature["properties"]
        assert (props["wikidata"], props["geonames_id"]) == IDS[code]
        assert all(props[f"name_{lang}"] for lang in ("en", "ru", "ky"))
    assert oblasts["KG-C"]["properties"]["name_ru"] == "Чуйская область"
    assert oblasts["KG-Y"]["properties"]["name_ky"] == "Ысык-Көл облусу"
    assert oblasts["KG-GB"]["properties"]["name_ky"] == "Бишкек шаары"
    assert oblasts["KG-GB"]["properties"]["unit_type"] == "city"
    # Osh City has no polygon: Osh Region's says it holds the city.
    assert oblasts["KG-O"]["properties"]["contains"] == "KG-GO"


def test_oblast_areas_match_the_official_figures(oblasts):
    for code, official in OFFICIAL_KM2.items():
        area = km2(shape(oblasts[code]["geometry"]))
        assert area == pytest.approx(official, rel=0.06), code
        assert oblasts[code]["properties"]["area_km2"] == pytest.approx(area, rel=1e-3)
    # Bishkek is a 36-vertex outline at 1:10m: documented as 112 against 127 km².
    bishkek = km2(shape(oblasts["KG-GB"]["geometry"]))
    assert bishkek == pytest.approx(OFFICIAL_BISHKEK_KM2, rel=0.15)


def test_known_places_fall_in_their_unit(oblasts):
    polygons = {code: shape(f["geometry"]) for code, f in oblasts.items()}
    for name, ((lon, lat), code) in KNOWN_PLACES.items():
        holders = [c for c, g in polygons.items() if g.contains(shapely.Point(lon, lat))]
        assert holders == [code], name


def test_the_units_tile_the_country_without_overlap(server, oblasts):
    polygons = [shape(f["geometry"]) for f in oblasts.values()]
    country = shapely.union_all([shape(f["geometry"])
                                 for f in items(server, "kyrgyzstan-boundary")])
    union = shapely.union_all(polygons)
    assert km2(union.symmetric_difference(country)) < 2.0
    assert sum(km2(g) for g in polygons) == pytest.approx(km2(country), rel=1e-4)


def documented_mismatches() -> list[tuple[int, str, str]]:
    """(geonames_id, region attribute, nearest polygon) rows of docs/data-corrections.md."""
    text = (ROOT / "docs" / "data-corrections.md").read_text()
    return [(int(m[1]), m[2], m[3])
            for m in re.finditer(r"^\| (\d+) \| [^|]+ \| (KG-\w+) \| (KG-\w+) \|$", text, re.M)]


def test_settlement_regions_agree_with_the_oblast_polygons(server, oblasts):
    polygons = {code: shape(f["geometry"]) for code, f in oblasts.items()}
    outside = []
    for place in items(server, "settlements"):
        point = shape(place["geometry"])
        region = place["properties"]["region_iso"]
        holders = [c for c, g in polygons.items() if g.covers(point)]
        if holders:  # Osh City's places lie inside Osh Region's polygon
            assert holders[0] == {"KG-GO": "KG-O"}.get(region, region), place["properties"]
        else:
            nearest = min(polygons, key=lambda c: polygons[c].distance(point))
            outside.append((place["properties"]["geonames_id"], region, nearest))
    assert sorted(outside) == sorted(documented_mismatches())
    assert len(outside) == 9


def test_jalal_abad_is_not_labelled_manas(server):
    places = items(server, "settlements")
    assert not [p for p in places if p["properties"]["name"] == "Manas"]
    record = server.get("/ogc/collections/settlements/items/1528249",
                        params={"f": "json"}).json()
    assert record["properties"]["name"] == "Jalal-Abad"
    assert "corrected from 'Manas'" in record["properties"]["name_note"]
    # The third-largest listed place, in Jalal-Abad Region.
    ranked = sorted(places, key=lambda p: -p["properties"]["population"])
    assert ranked[2]["properties"]["geonames_id"] == 1528249
    assert record["properties"]["region_iso"] == "KG-J"


# Land area of the Kyrgyz Republic: 191,801 km² (CIA World Factbook, "Kyrgyzstan": total
# 199,951 km², water 8,150 km²).
OFFICIAL_LAND_KM2 = 191_801
# Inside the enclaves: Shakhimardan, Sokh (Uzbekistan), Vorukh (Tajikistan) villages.
ENCLAVES = {"Shakhimardan": (71.810, 39.977), "Sokh": (71.071, 40.035),
            "Vorukh": (70.649, 39.835)}


def test_osm_border_has_the_enclaves_and_lakes_as_holes(server):
    [border] = items(server, "kyrgyzstan-border-osm")
    land = shape(border["geometry"])
    assert km2(land) == pytest.approx(OFFICIAL_LAND_KM2, rel=0.005)
    for name, (lon, lat) in ENCLAVES.items():
        assert not land.contains(shapely.Point(lon, lat)), name
    assert not land.contains(shapely.Point(77.30, 42.45))  # Issyk-Kul is water
    assert land.contains(shapely.Point(74.6037, 42.8765))  # Bishkek
    # Kara-Suu, on the Uzbek border, falls outside the generalised Natural Earth outline.
    assert land.contains(shapely.Point(72.8833, 40.7))
    collection = server.get("/ogc/collections/kyrgyzstan-border-osm", params={"f": "json"})
    assert "ODbL" in collection.text and "share" in collection.text.lower()


def test_towns_give_a_second_population_for_the_same_places(server):
    served = items(server, "towns-simplemaps")
    assert len(served) == 91
    towns = {t["properties"]["name_ascii"]: t["properties"] for t in served}  # one Naryn
    settlements = {p["properties"]["geonames_id"]: p["properties"]
                   for p in items(server, "settlements")}
    matched = [t["properties"] for t in served if t["properties"]["geonames_id"] is not None]
    assert len(matched) == 54
    for town in matched:
        assert settlements[town["geonames_id"]]["population"] == town["geonames_population"]
        assert town["geonames_distance_km"] <= 5
    assert (towns["Bishkek"]["population"], towns["Bishkek"]["geonames_population"]) == (
        1_074_075, 900_000)
    assert towns["Osh"]["region_iso"] == "KG-GO" and towns["Karakol"]["region_iso"] == "KG-Y"
    assert towns["Jalal-Abad"]["geonames_id"] == 1528249  # the corrected "Manas" record
    assert towns["Shark"]["geonames_id"] is None  # a village by Osh, not Osh itself
