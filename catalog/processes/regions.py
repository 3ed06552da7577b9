"""Regions: the oblasts and the two cities of republican significance (Bishkek, Osh).

The outlines are the polygons of the live dataset with role `regions` (the sample catalog's
`oblasts`: Natural Earth 1:10m admin-1, eight polygons). Osh City (KG-GO) has no polygon in
that source: Natural Earth draws it inside Osh Region (KG-O), whose feature says so in its
`contains` attribute. A unit the settlements name but no polygon outlines is kept as the city
it is: a region without an outline (people counted from the settlements' region attribute; no
area, terrain or zonal figures). Counts of settlements and population per region come from
that attribute, never from the outlines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from rasterio import features
from shapely.geometry.base import BaseGeometry

from catalog.core.languages import LANGUAGES
from catalog.processes import layers

OUTLINE_METHOD = ("Natural Earth 1:10m admin-1 polygons (generalised: lines can be off by a "
                  "few kilometres; not a legal boundary); Osh City (KG-GO) has no polygon and "
                  "lies inside Osh Region's (KG-O), whose area figures include the city")


@dataclass(frozen=True)
class Region:
    code: str  # ISO 3166-2, e.g. KG-C
    names: dict[str, str]  # language (catalog.core.languages) -> name
    outline: BaseGeometry | None  # in degrees; None for a city without a published polygon
    outline_area_km2: float | None
    within: str | None = None  # the region whose polygon holds this city (KG-GO: KG-O)
    place: BaseGeometry | None = None  # a city without polygon: its most populous listed place


@dataclass(frozen=True)
class RegionSet:
    regions: list[Region]  # every region, outlined or not, by code
    by_code: dict[str, Region]
    cells: np.ndarray  # on the terrain grid: index into regions + 1, 0 outside every outline

    @property
    def outlined(self) -> dict[str, Region]:
        """The regions that can be an area: those with a polygon."""
        return {code: r for code, r in self.by_code.items() if r.outline is not None}


@layers.cached(maxsize=2)
def region_set(regions_path: str, settlements_path: str, elevation_path: str) -> RegionSet:
    units = {props["region_iso"]: (props, geometry)
             for props, geometry in layers.read_features(regions_path)
             if geometry is not None and props.get("region_iso")}
    inside = {props["contains"]: code for code, (props, _) in units.items()
              if props.get("contains")}
    regions = []
    for code in sorted(set(units) | set(_settlement_names(settlements_path))):
        if code in units:
            props, geometry = units[code]
            outline = shapely.normalize(geometry)
            names = {lang: props.get(f"name_{lang}") or code for lang in LANGUAGES}
            regions.append(Region(code, names, outline, layers.geodesic_area_km2(outline)))
        else:
            names = _settlement_names(settlements_path)[code]
            regions.append(Region(code, names, None, None, within=inside.get(code),
                                  place=_main_place(settlements_path, code)))
    info = layers.raster_info(elevation_path)
    labelled = features.rasterize(
        [(r.outline, i + 1) for i, r in enumerate(regions)
         if r.outline is not None and not r.outline.is_empty],
        out_shape=(info.height, info.width), transform=info.transform, dtype="int16", fill=0)
    labelled.flags.writeable = False
    return RegionSet(regions, {r.code: r for r in regions}, labelled)


@layers.cached(maxsize=2)
def _settlement_names(settlements_path: str) -> dict[str, dict[str, str]]:
    """{code: {language: name}} of the regions the settlements' attribute names."""
    names: dict[str, dict[str, str]] = {}
    for props in layers.places(settlements_path).properties:
        code = props.get("region_iso")
        if code and code not in names:
            names[code] = {lang: props.get(f"region_{lang}") or code for lang in LANGUAGES}
    return names


def _main_place(settlements_path: str, code: str) -> BaseGeometry:
    places = layers.places(settlements_path)
    members = [i for i, p in enumerate(places.properties) if p.get("region_iso") == code]
    main = max(members, key=lambda i: places.properties[i].get("population") or 0)
    return shapely.Point(places.lon[main], places.lat[main])


def voronoi_cells(places: layers.Places) -> list[BaseGeometry]:
    """The Voronoi cell of each place, in the grid projection, in the places' order (site
    screening finds each cell's nearest place with them)."""
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
