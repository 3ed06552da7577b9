"""Regions (oblasts and the two cities of republican significance) and approximate outlines.

No official oblast polygons are published. Each settlement carries its region (region_iso and
names in en/ru/ky), so the regions are listed from the settlements, and their outlines are
*derived and approximate*: the Voronoi cells of the settlements (in the grid projection),
dissolved by region and clipped to the country boundary. Every output that uses an outline
says so. Counts of settlements and population per region come from the attribute, never from
these outlines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from rasterio import features
from shapely.geometry.base import BaseGeometry

from catalog.core.languages import LANGUAGES
from catalog.processes import layers

OUTLINE_METHOD = ("derived, approximate: Voronoi cells of the GeoNames settlements, dissolved "
                  "by region and clipped to the Natural Earth country boundary; not an official "
                  "administrative boundary")


@dataclass(frozen=True)
class Region:
    code: str  # ISO 3166-2, e.g. KG-C
    names: dict[str, str]  # language (catalog.core.languages) -> name
    outline: BaseGeometry  # approximate (OUTLINE_METHOD), in degrees
    outline_area_km2: float


@dataclass(frozen=True)
class RegionSet:
    regions: list[Region]
    by_code: dict[str, Region]
    cells: np.ndarray  # on the terrain grid: index into regions + 1, 0 outside every outline


@layers.cached(maxsize=2)
def region_set(settlements_path: str, boundary_path: str, elevation_path: str) -> RegionSet:
    places = layers.places(settlements_path)
    country = layers.boundary(boundary_path)
    codes = [p.get("region_iso") for p in places.properties]
    cells = voronoi_cells(places)
    regions = []
    for code in sorted({c for c in codes if c}):
        members = [i for i, c in enumerate(codes) if c == code]
        projected = shapely.union_all([cells[i] for i in members])
        outline = shapely.make_valid(layers.from_grid_projection(projected)).intersection(country)
        outline = shapely.normalize(_polygonal(outline))
        first = places.properties[members[0]]
        names = {lang: first.get(f"region_{lang}") or code for lang in LANGUAGES}
        regions.append(Region(code, names, outline, layers.geodesic_area_km2(outline)))
    info = layers.raster_info(elevation_path)
    labelled = features.rasterize(
        [(r.outline, i + 1) for i, r in enumerate(regions) if not r.outline.is_empty],
        out_shape=(info.height, info.width), transform=info.transform, dtype="int16", fill=0)
    labelled.flags.writeable = False
    return RegionSet(regions, {r.code: r for r in regions}, labelled)


def voronoi_cells(places: layers.Places) -> list[BaseGeometry]:
    """The Voronoi cell of each place, in the grid projection, in the places' order."""
    points = shapely.points(places.x, places.y)
    if len(points) == 1:
        return [shapely.box(-1e7, -1e7, 1e7, 1e7)]
    envelope = shapely.box(*shapely.MultiPoint(points).buffer(1_000_000).bounds)
    diagram = shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=envelope,
                                       ordered=True)
    cells = list(diagram.geoms)
    if len(cells) != len(points):  # duplicate points share one cell: find it by location
        tree = shapely.STRtree(cells)
        cells = [cells[tree.query(p, predicate="intersects")[0]] for p in points]
    return [c.intersection(envelope) for c in cells]


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """Only the areal parts of a clipped outline (clipping can leave lines and points)."""
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()
