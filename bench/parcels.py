"""A deterministic synthetic layer of land parcels inside Kyrgyzstan, for load tests.

    python -m bench.parcels [--count 1000000] [--out bench/.work/parcels]

Not real cadastre data: every parcel is invented. Method (seeded, so the same count gives the
same bytes):

1. A grid of 0.0025 x 0.002 degree cells (about 210 x 220 m) over the Natural Earth boundary;
   cells whose centre lies inside the country are candidates. The country holds about 4.3
   million such cells; when `count` is more than half of them, every cell is split into
   k x k (the smallest k that keeps `count` at most half of the candidates: k = 3 for 10
   million, cells of about 70 x 73 m), so that the draw below still follows the weights.
   Counts up to half the coarse grid are unchanged by this (k = 1).
2. Each candidate is weighted by settlement density (a Gaussian kernel of sigma 4 km, then 15 km,
   around each of the 112 GeoNames settlements, by population) plus a uniform background, times
   exp(-slope / 10 degrees); `count` cells are drawn without replacement (Gumbel top-k).
3. Each drawn cell holds one parcel: a quadrilateral whose corners are jittered inside the
   cell's four quarters, so parcels never overlap and are always valid.
4. Attributes: parcel_id; region (of the nearest settlement); land_use, drawn from
   class shares that depend on the distance to the nearest settlement and the slope; area_m2
   (planar area scaled by the local metres per degree, within 0.5 % of geodesic); mean_slope_deg,
   the GEBCO-derived slope at the parcel centre (parcels are smaller than a slope pixel).
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import fiona
import numpy as np
import rasterio
import shapely
from shapely.geometry import shape

from catalog.gpkg import BulkLoader

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "datasets" / "sources"
DATASET_ID = "land-parcels-synthetic"
LAYER = "parcels"
SEED = 20261128
CELL_X, CELL_Y = 0.0025, 0.002
# At most this share of the candidate cells is drawn; more would flatten the weighting.
MAX_DRAWN_SHARE = 0.5
LAND_USES = ("cropland", "pasture", "residential", "orchard", "forest", "commercial", "industrial")
# Class shares near (< 3 km from) a settlement, on open flat land, and on steep land (> 15 deg).
SHARES = {
    "near": (0.25, 0.05, 0.45, 0.12, 0.0, 0.08, 0.05),
    "flat": (0.45, 0.38, 0.03, 0.10, 0.03, 0.005, 0.005),
    "steep": (0.02, 0.70, 0.0, 0.03, 0.25, 0.0, 0.0),
}
SCHEMA = {
    "geometry": "Polygon",
    "properties": {
        "parcel_id": "str:10",
        "region": "str:40",
        "land_use": "str:12",
        "area_m2": "float",
        "mean_slope_deg": "float",
    },
}
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQUATOR = 111_320.0


def boundary() -> shapely.Geometry:
    collection = json.loads((SOURCES / "kyrgyzstan-boundary.geojson").read_text("utf-8"))
    return shape(collection["features"][0]["geometry"])


def settlements() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    collection = json.loads((SOURCES / "settlements.geojson").read_text("utf-8"))
    features = collection["features"]
    x = np.array([f["geometry"]["coordinates"][0] for f in features])
    y = np.array([f["geometry"]["coordinates"][1] for f in features])
    population = np.array([max(f["properties"]["population"] or 0, 500) for f in features])
    regions = [f["properties"]["region_en"] for f in features]
    return x, y, population.astype(float), regions


class SlopeGrid:
    """The slope COG in memory, sampled at points (nearest pixel; NaN outside or nodata)."""

    def __init__(self, path: Path):
        with rasterio.open(path) as source:
            self.data = source.read(1, masked=True).filled(np.nan).astype(np.float32)
            self.inverse = ~source.transform

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        col, row = self.inverse * (x, y)
        col, row = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
        inside = (row >= 0) & (row < self.data.shape[0]) & (col >= 0) & (col < self.data.shape[1])
        out = np.full(x.shape, np.nan, dtype=np.float32)
        out[inside] = self.data[row[inside], col[inside]]
        return out


@dataclass(frozen=True)
class Grid:
    """Cell size in degrees; `split` is how many times the coarse cell's sides were divided."""

    split: int = 1

    @property
    def x(self) -> float:
        return CELL_X / self.split

    @property
    def y(self) -> float:
        return CELL_Y / self.split


def split_for(count: int, coarse_candidates: int) -> int:
    """The smallest k such that `count` is at most MAX_DRAWN_SHARE of k * k * candidates."""
    return max(1, math.ceil(math.sqrt(count / (MAX_DRAWN_SHARE * coarse_candidates)) - 1e-9))


def candidate_cells(country: shapely.Geometry, grid: Grid = Grid()
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left corners of the grid cells whose centre lies inside the country."""
    minx, miny, maxx, maxy = country.bounds
    xs = minx + grid.x * np.arange(int((maxx - minx) / grid.x))
    ys = miny + grid.y * np.arange(int((maxy - miny) / grid.y))
    shapely.prepare(country)
    corners_x, corners_y = [], []
    for y in ys:  # row by row: bounded memory, and the result stays in row-major order
        inside = shapely.contains_xy(country, xs + grid.x / 2, np.full(xs.shape, y + grid.y / 2))
        corners_x.append(xs[inside])
        corners_y.append(np.full(int(inside.sum()), y))
    return np.concatenate(corners_x), np.concatenate(corners_y)


def nearest_settlement(x: np.ndarray, y: np.ndarray, towns) -> tuple[np.ndarray, np.ndarray]:
    """Index of and distance (km) to the nearest settlement, by equirectangular distance."""
    tx, ty, _, _ = towns
    best = np.zeros(x.shape, dtype=np.int64)
    best_d2 = np.full(x.shape, np.inf)
    scale = np.cos(np.radians(y)) * M_PER_DEG_LON_EQUATOR / 1000
    for i in range(len(tx)):
        d2 = ((x - tx[i]) * scale) ** 2 + ((y - ty[i]) * M_PER_DEG_LAT / 1000) ** 2
        closer = d2 < best_d2
        best[closer], best_d2[closer] = i, d2[closer]
    return best, np.sqrt(best_d2)


def cell_weights(x: np.ndarray, y: np.ndarray, slope: np.ndarray, towns, grid: Grid
                 ) -> np.ndarray:
    tx, ty, population, _ = towns
    cx, cy = x + grid.x / 2, y + grid.y / 2
    scale = np.cos(np.radians(cy)) * M_PER_DEG_LON_EQUATOR / 1000
    density = np.full(cx.shape, 0.02)
    share = population / population.sum()
    for i in range(len(tx)):
        near = (np.abs(cx - tx[i]) < 0.6) & (np.abs(cy - ty[i]) < 0.45)  # ~50 km window
        d2 = ((cx[near] - tx[i]) * scale[near]) ** 2 + ((cy[near] - ty[i]) * 110.574) ** 2
        density[near] += share[i] * (40 * np.exp(-d2 / 32) + 4 * np.exp(-d2 / 450))
    return density * np.exp(-np.nan_to_num(slope, nan=30.0) / 10)


def quadrilaterals(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, grid: Grid
                   ) -> np.ndarray:
    """One parcel per cell: corners jittered inside the cell's quarters (never self-crossing)."""
    n = len(x)
    w, h = grid.x, grid.y
    inset = rng.uniform(0.02, 0.45, size=(n, 8))
    corners = np.empty((n, 5, 2))
    corners[:, 0] = np.column_stack([x + inset[:, 0] * w, y + inset[:, 1] * h])
    corners[:, 1] = np.column_stack([x + (1 - inset[:, 2]) * w, y + inset[:, 3] * h])
    corners[:, 2] = np.column_stack(
        [x + (1 - inset[:, 4]) * w, y + (1 - inset[:, 5]) * h]
    )
    corners[:, 3] = np.column_stack([x + inset[:, 6] * w, y + (1 - inset[:, 7]) * h])
    corners[:, 4] = corners[:, 0]
    return shapely.polygons(np.round(corners, 7))


def land_use(distance_km: np.ndarray, slope: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    setting = np.where(distance_km < 3, 0, np.where(np.nan_to_num(slope) > 15, 2, 1))
    draw = rng.random(len(setting))
    out = np.empty(len(setting), dtype=object)
    for code, name in enumerate(("near", "flat", "steep")):
        mask = setting == code
        cumulative = np.cumsum(SHARES[name])
        index = np.minimum(np.searchsorted(cumulative, draw[mask] * cumulative[-1]), 6)
        out[mask] = np.array(LAND_USES, dtype=object)[index]
    return out


def area_m2(polygons: np.ndarray, y: np.ndarray, grid: Grid) -> np.ndarray:
    scale = np.cos(np.radians(y + grid.y / 2)) * M_PER_DEG_LON_EQUATOR * M_PER_DEG_LAT
    return np.round(shapely.area(polygons) * scale, 1)


def generate(count: int, out_dir: Path) -> Path:
    """Write <out_dir>/parcels.gpkg and its manifest; return the manifest path."""
    started = time.monotonic()
    rng = np.random.default_rng(SEED)
    country, towns = boundary(), settlements()
    slope = SlopeGrid(SOURCES / "slope.tif")
    x, y = candidate_cells(country)
    grid = Grid(split_for(count, len(x)))
    if grid.split > 1:
        x, y = candidate_cells(country, grid)
        print(f"cells split {grid.split} x {grid.split}: {len(x):,} candidates", flush=True)
    cell_slope = slope.sample(x + grid.x / 2, y + grid.y / 2)
    keys = (np.log(cell_weights(x, y, cell_slope, towns, grid))
            - np.log(-np.log(rng.random(len(x)))))
    chosen = np.sort(np.argpartition(-keys, count - 1)[:count])  # row-major: spatial locality
    del keys
    x, y, cell_slope = x[chosen], y[chosen], cell_slope[chosen]
    polygons = quadrilaterals(x, y, rng, grid)
    town, distance = nearest_settlement(x + grid.x / 2, y + grid.y / 2, towns)
    columns = {
        "parcel_id": [f"P{i:08d}" for i in range(1, count + 1)],
        "region": np.array(towns[3], dtype=object)[town],
        "land_use": land_use(distance, cell_slope, rng),
        "area_m2": area_m2(polygons, y, grid),
        "mean_slope_deg": np.round(np.nan_to_num(cell_slope, nan=0.0).astype(float), 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    gpkg = out_dir / "parcels.gpkg"
    gpkg.unlink(missing_ok=True)
    write_geopackage(gpkg, polygons, columns)
    manifest = out_dir / f"{DATASET_ID}.yaml"
    manifest.write_text(manifest_text(count, grid), encoding="utf-8")
    print(f"wrote {count:,} synthetic parcels to {gpkg} ({gpkg.stat().st_size / 1e6:.0f} MB) "
          f"in {time.monotonic() - started:.1f} s")
    return manifest


def write_geopackage(path: Path, polygons: np.ndarray, columns: dict) -> None:
    with fiona.open(path, "w", driver="GPKG", layer=LAYER, schema=SCHEMA, crs="EPSG:4326",
                    SPATIAL_INDEX="YES"):
        pass  # GDAL writes the empty layer and its metadata; rows go in below in bulk
    names = list(SCHEMA["properties"])
    with BulkLoader(path, LAYER) as loader:
        for start in range(0, len(polygons), 100_000):
            stop = start + 100_000
            rows = zip(*(_plain(columns[n][start:stop]) for n in names), strict=True)
            loader.append(polygons[start:stop], list(rows))


def _plain(values) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def manifest_text(count: int, grid: Grid = Grid()) -> str:
    return textwrap.dedent(f"""\
        id: {DATASET_ID}
        theme: land
        title:
          en: Land parcels of Kyrgyzstan, synthetic benchmark layer ({count:,} invented parcels)
        description:
          en: >-
            SYNTHETIC data for load tests of the catalogue: {count:,} invented land parcels
            placed inside the country boundary, denser around settlements and on gentle slopes.
            No parcel, identifier or attribute describes real land, ownership or use.
        keywords:
          en: [synthetic, benchmark, land parcels, test data]
        licence: CC0-1.0
        attribution: "Synthetic benchmark data by the Taza Koom open geodata team; not real parcels"
        steward:
          name: Open geodata team
          organisation: Taza Koom open geodata team (benchmark data)
          email: opendata@tazakoom.example
        source: parcels.gpkg
        nature: synthetic
        provenance:
          method: |
            Generated by bench/parcels.py (seed {SEED}, count {count}); see its docstring.
            Cells of {grid.x:g} x {grid.y:g} degrees inside the Natural Earth boundary, weighted by
            settlement density (GeoNames populations) and exp(-slope / 10 degrees), drawn
            without replacement; one jittered quadrilateral per cell. land_use is drawn from
            class shares by distance to the nearest settlement and slope; region is the nearest
            settlement's region; mean_slope_deg is the slope layer at the parcel centre; area_m2
            is the planar area scaled by local metres per degree.
          derived_from:
            - title: Natural Earth 1:10m Admin 0 - Countries (placement)
              href: https://www.naturalearthdata.com/
              licence: public domain
            - title: GeoNames geographical database (settlement density, regions)
              href: https://www.geonames.org/
              licence: CC-BY-4.0
            - title: GEBCO 2023 Grid (slope)
              href: https://www.gebco.net/
              licence: public domain, GEBCO grid terms of use
          limitations: |
            Entirely synthetic. Parcel shapes, identifiers, land-use classes and their shares
            are invented to exercise the servers; only the boundary, settlement positions and
            slope come from real data. Do not use for any decision about land.
        update_frequency: notPlanned
        temporal_extent: {{start: 2026-01-01, end: null}}
        """)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parcels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / ".work" / "parcels")
    args = parser.parse_args(argv)
    generate(args.count, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
