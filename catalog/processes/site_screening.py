"""site-screening: contiguous areas that meet an investor's criteria, ranked by a score.

On the DEM's cells (15 arc-seconds, about 340 x 460 m) a cell is suitable when its centre is
inside the area and not in a lake (the lakes layer: a lake's flat surface reads as 0 degree
slope in the DEM), and its slope, elevation, mobile coverage and distances to the nearest
qualifying settlement, airport and (when asked) river or lake meet the criteria. Suitable
cells that share an edge form a candidate (4-connectivity); candidates smaller than
min_area_km2 are dropped. Each cell gets a score in [0, 1] (docs/processes.md):

    score = (w_slope * (1 - slope / max_slope)
             + w_coverage * {4G: 1, 3G: 0.5, none: 0}
             + w_settlement * max(0, 1 - d_settlement / R_settlement)
             + w_airport * max(0, 1 - d_airport / R_airport)) / (sum of weights)

R is the maximum distance given, or 50 km (settlements) and 150 km (airports) when none is.
A candidate's score is the mean of its cells' scores; candidates are ranked by score, then by
area. Its site is its best-scoring cell; the nearest settlement and airport are reported for
that site with geodesic distances. Cell distances are measured in the grid projection
(layers.py: within 0.05 % of geodesic).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from rasterio import features

from catalog.processes import class_criteria, inputs, layers
from catalog.processes.base import (
    AREA_INPUT,
    GEOJSON,
    REGION_INPUT,
    Budget,
    CatalogProcessor,
    rounded,
)
from catalog.processes.geojson import feature_collection
from catalog.processes.labels import label_components
from catalog.processes.regions import voronoi_cells

MAX_CELLS = 4_000_000  # the whole country's window is 2.7 million cells
MAX_CANDIDATES = 500
MAX_OUTLINE_VERTICES = 5000  # per candidate; larger outlines are simplified
MAX_RESPONSE_VERTICES = 200_000  # all candidates together: bounds the response (~5 MB)
DEFAULT_WEIGHTS = {"slope": 0.35, "coverage": 0.25, "settlement": 0.25, "airport": 0.15}
DEFAULT_REACH_KM = {"settlement": 50.0, "airport": 150.0}
COVERAGE_SCORE = np.array([0.0, 0.5, 1.0])  # by layers.COVERAGE_CODES: none, 3G, 4G
COVERAGE_NAMES = np.array(["none", "3G", "4G"])
REQUIRED_CODE = {"any": 0, "3G": 1, "4G": 2}

PROCESS_METADATA = {
    "version": "1.0.0",
    "id": "site-screening",
    "title": {"en": "Site screening", "ru": "Подбор площадок", "ky": "Аянтчаларды тандоо"},
    "description": {
        "en": "Candidate areas for a site that meet the criteria (maximum slope, elevation "
              "range, required mobile coverage, distance to a settlement of at least N people "
              "and to an airport), as GeoJSON polygons ranked by a documented score, each with "
              "the values behind it.",
        "ru": "Участки-кандидаты, отвечающие критериям (уклон, высота, покрытие связью, "
              "расстояние до населённого пункта и аэропорта), в виде полигонов GeoJSON, "
              "упорядоченных по баллу.",
        "ky": "Критерийлерге (жантаюу, бийиктик, байланыш, калктуу конушка жана аэропортко "
              "чейинки аралык) жооп берген аянттар, упай боюнча иреттелген GeoJSON полигондору.",
    },
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": ["site selection", "suitability", "investment", "slope", "coverage"],
    "inputs": {
        "area": AREA_INPUT,
        "region": REGION_INPUT,
        "max_slope_deg": {
            "title": "Maximum slope (degrees)",
            "schema": {"type": "number", "minimum": 0, "maximum": 90, "default": 15},
            "minOccurs": 0, "maxOccurs": 1},
        "min_elevation_m": {
            "title": "Minimum elevation (m)", "description": "No lower limit by default.",
            "schema": {"type": "number", "minimum": -500, "maximum": 9000},
            "minOccurs": 0, "maxOccurs": 1},
        "max_elevation_m": {
            "title": "Maximum elevation (m)", "description": "No upper limit by default.",
            "schema": {"type": "number", "minimum": -500, "maximum": 9000},
            "minOccurs": 0, "maxOccurs": 1},
        "coverage": {
            "title": "Required mobile coverage",
            "description": "4G; 3G (3G or better, so 4G areas qualify); any (no requirement).",
            "schema": {"type": "string", "enum": ["4G", "3G", "any"], "default": "any"},
            "minOccurs": 0, "maxOccurs": 1},
        "max_settlement_distance_km": {
            "title": "Maximum distance to a settlement (km)",
            "description": "To the nearest settlement of at least min_settlement_population "
                           "people. No limit by default.",
            "schema": {"type": "number", "minimum": 0, "maximum": 1000},
            "minOccurs": 0, "maxOccurs": 1},
        "min_settlement_population": {
            "title": "Minimum settlement population",
            "description": "Settlements smaller than this do not count as nearby.",
            "schema": {"type": "integer", "minimum": 0, "default": 0},
            "minOccurs": 0, "maxOccurs": 1},
        "max_airport_distance_km": {
            "title": "Maximum distance to an airport (km)",
            "description": "No limit by default.",
            "schema": {"type": "number", "minimum": 0, "maximum": 1000},
            "minOccurs": 0, "maxOccurs": 1},
        "max_water_distance_km": {
            "title": "Maximum distance to a river or lake (km)",
            "description": "From the cell centre to the nearest line of the rivers layer or "
                           "shore of the lakes layer. No limit by default. Cells inside a lake "
                           "are never candidates.",
            "schema": {"type": "number", "minimum": 0, "maximum": 1000},
            "minOccurs": 0, "maxOccurs": 1},
        "min_area_km2": {
            "title": "Minimum candidate area (km2)",
            "schema": {"type": "number", "minimum": 0, "maximum": 100000, "default": 1},
            "minOccurs": 0, "maxOccurs": 1},
        "limit": {
            "title": "Number of candidates",
            "description": "The best-ranked candidates returned.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_CANDIDATES,
                       "default": 50},
            "minOccurs": 0, "maxOccurs": 1},
        "weights": {
            "title": "Score weights",
            "description": "Non-negative weights of the score terms slope, coverage, "
                           "settlement, airport (normalised to sum 1). Default 0.35, 0.25, "
                           "0.25, 0.15.",
            "schema": {"type": "object", "additionalProperties": False,
                       "properties": {k: {"type": "number", "minimum": 0}
                                      for k in DEFAULT_WEIGHTS}},
            "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "candidates": {
            "title": "Candidate areas",
            "description": "GeoJSON FeatureCollection of polygons ranked by score (property "
                           "rank, 1 = best), with the values behind each (slope, elevation, "
                           "coverage shares, site, nearest settlement and airport with "
                           "geodesic distances) and the criteria used.",
            "schema": {"type": "object", "contentMediaType": GEOJSON},
        },
    },
    "example": {"inputs": {"region": "KG-C", "max_slope_deg": 5, "coverage": "4G",
                           "max_settlement_distance_km": 20,
                           "min_settlement_population": 10000,
                           "max_airport_distance_km": 100}},
}


PROCESS_METADATA["inputs"].update(class_criteria.INPUTS)


@dataclass(frozen=True)
class Criteria:
    max_slope_deg: float
    min_elevation_m: float | None
    max_elevation_m: float | None
    coverage: str
    max_settlement_distance_km: float | None
    min_settlement_population: int
    max_airport_distance_km: float | None
    max_water_distance_km: float | None
    min_area_km2: float
    limit: int
    weights: dict[str, float]
    classes: tuple[class_criteria.ClassCriterion, ...] = ()  # land cover, urbanisation, climate


class SiteScreeningProcessor(CatalogProcessor):
    METADATA = PROCESS_METADATA

    def compute(self, data: dict, budget: Budget, wanted: list[str]) -> dict[str, Any]:
        inputs.check_names(data, self.metadata["inputs"])
        paths = self.layers
        regions = self.regions()
        area = inputs.area(data, layers.boundary(paths["boundary"]), regions.by_code)
        criteria = dataclasses.replace(read_criteria(data),
                                       classes=class_criteria.read(data, paths))
        return {"candidates": screen(paths, area, criteria, budget)}


def read_criteria(data: dict) -> Criteria:
    low, high = inputs.number_range(data, "min_elevation_m", "max_elevation_m", -500, 9000)
    return Criteria(
        max_slope_deg=inputs.number(data, "max_slope_deg", 15.0, 0, 90),
        min_elevation_m=low,
        max_elevation_m=high,
        coverage=inputs.choice(data, "coverage", "any", tuple(REQUIRED_CODE)),
        max_settlement_distance_km=inputs.number(data, "max_settlement_distance_km", None,
                                                 0, 1000),
        min_settlement_population=inputs.number(data, "min_settlement_population", 0, 0,
                                                1e9, integer=True),
        max_airport_distance_km=inputs.number(data, "max_airport_distance_km", None, 0, 1000),
        max_water_distance_km=inputs.number(data, "max_water_distance_km", None, 0, 1000),
        min_area_km2=inputs.number(data, "min_area_km2", 1.0, 0, 100000),
        limit=inputs.number(data, "limit", 50, 1, MAX_CANDIDATES, integer=True),
        weights=_weights(data.get("weights")),
    )


def _weights(value: Any) -> dict[str, float]:
    if value is None:
        return dict(DEFAULT_WEIGHTS)
    if not isinstance(value, dict):
        raise inputs.InvalidInput("weights: must be an object, e.g. {\"slope\": 1, "
                                  "\"coverage\": 1}")
    unknown = sorted(set(value) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise inputs.InvalidInput(f"weights: unknown term {unknown[0]!r}; terms: "
                                  f"{', '.join(DEFAULT_WEIGHTS)}")
    weights = {k: inputs.number({f"weights.{k}": value.get(k)}, f"weights.{k}", 0.0, 0, 1e6)
               for k in DEFAULT_WEIGHTS}
    total = sum(weights.values())
    if total <= 0:
        raise inputs.InvalidInput("weights: at least one weight must be positive")
    return {k: w / total for k, w in weights.items()}


# -- the computation -----------------------------------------------------------------------

@dataclass
class Cells:
    """The suitable cells of the window, as flat indices with their values."""
    index: np.ndarray
    slope: np.ndarray
    elevation: np.ndarray
    coverage: np.ndarray
    settlement: np.ndarray  # index into the qualifying settlements, -1 when there are none
    settlement_m: np.ndarray
    airport: np.ndarray
    airport_m: np.ndarray

    def keep(self, chosen: np.ndarray) -> Cells:
        return Cells(*(getattr(self, f)[chosen] for f in self.__dataclass_fields__))


def screen(paths: dict, area: inputs.Area, criteria: Criteria, budget: Budget) -> dict:
    terrain = layers.terrain(paths["elevation"], paths["slope"], paths["coverage"])
    window = layers.window_of(area.geometry.bounds, terrain.grid, terrain.width, terrain.height)
    if window.cells > MAX_CELLS:
        raise inputs.InvalidInput.coded("too_many_cells", cells=int(window.cells),
                                          most=MAX_CELLS)
    settlements = layers.places(paths["settlements"])
    population = np.array([p.get("population") or 0 for p in settlements.properties])
    towns = settlements.subset(population >= criteria.min_settlement_population)
    airports = layers.places(paths["airports"])
    allowed = _dry_land(paths, window) & _near_water(paths, criteria, window, terrain)
    cells = _suitable_cells(terrain, window, area, criteria, towns, airports, allowed, budget)
    cells = cells.keep(class_criteria.cells_passing(criteria.classes, cells.index, window,
                                                    terrain.grid))
    budget.check("candidate areas")
    mask = np.zeros((window.height, window.width), dtype=bool)
    mask.flat[cells.index] = True
    labels, count = label_components(mask)
    rows = np.arange(window.row0, window.row1)[cells.index // window.width]
    groups = Groups(labels.flat[cells.index], count, _cell_scores(cells, criteria),
                    layers.row_cell_areas_km2(terrain.grid, terrain.height)[rows])
    ranked = groups.ranked(criteria.min_area_km2)
    budget.check("outlines")
    chosen = ranked[:criteria.limit]
    outlines = _outlines(labels, chosen, window.transform(terrain.grid), abs(terrain.grid.a))
    items = [_candidate(rank + 1, label, groups, outlines[label], cells, window, terrain,
                        towns, airports)
             for rank, label in enumerate(chosen)]
    for item in items:
        item["properties"].update(_site_water(paths, item["properties"]))
    return feature_collection(
        items, title="Site screening candidates",
        criteria=_criteria_echo(criteria, area),
        numberMatched=len(ranked), numberReturned=len(items),
        cells_suitable=int(cells.index.size),
        notes=_notes(criteria, paths["datasets"]["coverage"]) | _water_notes(paths),
        sources=_sources(paths))


def _dry_land(paths: dict, window: layers.Window) -> np.ndarray:
    """False for the window's cells in a lake: never a site, whatever the DEM's slope says."""
    return ~layers.lake_cells(paths["lakes"], paths["elevation"])[window.slices]


def _near_water(paths: dict, criteria: Criteria, window: layers.Window,
                terrain: layers.Terrain) -> np.ndarray:
    """True for the window's cells within max_water_distance_km of a river or lake (all cells
    when no maximum is given). Measured in the grid projection, as the other cell distances."""
    if criteria.max_water_distance_km is None:
        return np.ones((window.height, window.width), dtype=bool)
    water = layers.water(paths["lakes"], paths.get("rivers"))
    zone = layers.from_grid_projection(
        water.buffer(criteria.max_water_distance_km * 1000, quad_segs=16))
    return layers.cells_inside(zone, window, terrain.grid)


def _site_water(paths: dict, properties: dict) -> dict[str, Any]:
    """Distance from a candidate's site to the nearest river or lake, in km."""
    water = layers.water(paths["lakes"], paths.get("rivers"))
    if water.is_empty:
        return {"site_water_distance_km": None}
    x, y = layers.TO_GRID.transform(properties["site_lon"], properties["site_lat"])
    return {"site_water_distance_km": rounded(shapely.distance(water, shapely.Point(x, y))
                                              / 1000, 3)}


def _water_notes(paths: dict) -> dict[str, str]:
    rivers = paths["datasets"].get("rivers")
    return {"water": f"cells whose centre lies in a lake of dataset {paths['datasets']['lakes']} "
                     "are never candidates; distances to water are to its shores"
                     + (f" and to the lines of dataset {rivers}" if rivers else
                        " (no rivers layer is live)")
                     + ", in the grid projection"}


def _sources(paths: dict) -> dict[str, Any]:
    """The dataset each criterion and figure comes from."""
    datasets = paths["datasets"]
    return {"slope": datasets["slope"], "elevation": datasets["elevation"],
            "coverage": datasets["coverage"], "settlement": datasets["settlements"],
            "airport": datasets["airports"], "area": datasets["boundary"],
            "region": datasets.get("regions"),
            "water": [d for d in (datasets["lakes"], datasets.get("rivers")) if d]}


def _suitable_cells(terrain: layers.Terrain, window: layers.Window, area: inputs.Area,
                    criteria: Criteria, towns: layers.Places, airports: layers.Places,
                    allowed: np.ndarray, budget: Budget) -> Cells:
    sl = window.slices
    mask = layers.cells_inside(area.geometry, window, terrain.grid) & terrain.valid[sl]
    mask &= allowed
    slope, elevation, coverage = terrain.slope[sl], terrain.elevation[sl], terrain.coverage[sl]
    mask &= slope <= criteria.max_slope_deg
    if criteria.min_elevation_m is not None:
        mask &= elevation >= criteria.min_elevation_m
    if criteria.max_elevation_m is not None:
        mask &= elevation <= criteria.max_elevation_m
    mask &= coverage >= REQUIRED_CODE[criteria.coverage]
    index = np.flatnonzero(mask)
    budget.check("distances")
    x, y = layers.projected_centres(terrain.grid, terrain.width, terrain.height)
    cx, cy = x[sl].ravel()[index], y[sl].ravel()[index]
    town, town_m = _nearest(towns, window, terrain, index, cx, cy)
    port, port_m = _nearest(airports, window, terrain, index, cx, cy)
    keep = np.ones(index.size, dtype=bool)
    if criteria.max_settlement_distance_km is not None:
        keep &= (town >= 0) & (town_m <= criteria.max_settlement_distance_km * 1000)
    if criteria.max_airport_distance_km is not None:
        keep &= (port >= 0) & (port_m <= criteria.max_airport_distance_km * 1000)
    cells = Cells(index, slope.ravel()[index], elevation.ravel()[index],
                  coverage.ravel()[index], town, town_m, port, port_m)
    return cells.keep(keep)


def _nearest(places: layers.Places, window: layers.Window, terrain: layers.Terrain,
             index: np.ndarray, cx: np.ndarray, cy: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest place (index, -1 if none) and its distance in metres for each cell."""
    if len(places) == 0:
        return np.full(index.size, -1), np.full(index.size, np.inf)
    if len(places) == 1:
        nearest = np.zeros(index.size, dtype=np.int64)
    else:
        cells = _voronoi_in_degrees(places)
        owner = features.rasterize(((c, i + 1) for i, c in enumerate(cells)),
                                   out_shape=(window.height, window.width),
                                   transform=window.transform(terrain.grid), dtype="int32")
        nearest = owner.ravel()[index].astype(np.int64) - 1
        missing = nearest < 0  # a centre on a cell edge GDAL did not burn: measure all
        if missing.any():
            nearest[missing] = np.argmin(np.hypot(
                cx[missing, None] - places.x[None, :], cy[missing, None] - places.y[None, :]),
                axis=1)
    distance = np.hypot(cx - places.x[nearest], cy - places.y[nearest])
    return nearest, distance


_voronoi_cache: dict[tuple, list] = {}


def _voronoi_in_degrees(places: layers.Places) -> list:
    key = (tuple(places.lon), tuple(places.lat))
    cells = _voronoi_cache.get(key)
    if cells is None:
        cells = [layers.from_grid_projection(c, 2000.0) for c in voronoi_cells(places)]
        if len(_voronoi_cache) > 32:  # one entry per distinct min_settlement_population
            _voronoi_cache.clear()
        _voronoi_cache[key] = cells
    return cells


def _cell_scores(cells: Cells, criteria: Criteria) -> np.ndarray:
    w = criteria.weights
    max_slope = criteria.max_slope_deg
    slope_term = 1 - cells.slope / max_slope if max_slope > 0 else np.ones(cells.slope.size)
    reach_town, reach_port = (km * 1000 for km in _reach_km(criteria))
    town_term = _closeness(cells.settlement_m, reach_town)
    port_term = _closeness(cells.airport_m, reach_port)
    score = (w["slope"] * np.clip(slope_term, 0, 1)
             + w["coverage"] * COVERAGE_SCORE[cells.coverage]
             + w["settlement"] * town_term + w["airport"] * port_term)
    return score


def _reach_km(criteria: Criteria) -> tuple[float, float]:
    """Distances at which the closeness terms reach 0: the maxima given, else defaults."""
    town, port = criteria.max_settlement_distance_km, criteria.max_airport_distance_km
    return (DEFAULT_REACH_KM["settlement"] if town is None else town,
            DEFAULT_REACH_KM["airport"] if port is None else port)


def _closeness(distance_m: np.ndarray, reach_m: float) -> np.ndarray:
    if reach_m <= 0:
        return (distance_m <= 0).astype(np.float64)
    return np.clip(1 - distance_m / reach_m, 0, 1)


class Groups:
    """The suitable cells grouped by candidate (component label)."""

    def __init__(self, label: np.ndarray, count: int, score: np.ndarray, cell_km2: np.ndarray):
        self.label, self.score, self.cell_km2 = label, score, cell_km2
        size = count + 1
        self.cells = np.bincount(label, minlength=size)
        self.area_km2 = np.bincount(label, weights=cell_km2, minlength=size)
        self.mean_score = np.bincount(label, weights=score, minlength=size) / np.maximum(
            self.cells, 1)
        self.order = np.argsort(label, kind="stable")  # cells of label k: one slice of order
        self.start = np.concatenate(([0], np.cumsum(self.cells)[:-1]))

    def members(self, label: int) -> np.ndarray:
        """Indices (into the suitable cells) of one candidate's cells."""
        return self.order[self.start[label]:self.start[label] + self.cells[label]]

    def ranked(self, min_area_km2: float) -> list[int]:
        """Labels of candidates of at least min_area_km2: best score first, then larger."""
        labels = np.arange(1, self.cells.size)
        labels = labels[self.area_km2[labels] >= min_area_km2]
        order = np.lexsort((labels, -self.area_km2[labels], -self.mean_score[labels]))
        return [int(v) for v in labels[order]]


def _outlines(labels: np.ndarray, chosen: list[int], transform, cell_deg: float
              ) -> dict[int, tuple[dict, str]]:
    """Outline (GeoJSON polygon, 'exact' or 'simplified') of each chosen candidate."""
    if not chosen:
        return {}
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[chosen] = True
    selected = keep[labels]
    cap = max(MAX_RESPONSE_VERTICES // len(chosen), 100)
    outlines = {}
    for geometry, value in features.shapes(np.where(selected, labels, 0).astype(np.int32),
                                           mask=selected, connectivity=4, transform=transform):
        rings = [np.asarray(ring) for ring in geometry["coordinates"]]
        polygon = shapely.Polygon(rings[0], rings[1:])
        outlines[int(value)] = _bounded(polygon, cell_deg, min(cap, MAX_OUTLINE_VERTICES))
    return outlines


def _bounded(polygon: shapely.Polygon, cell_deg: float, cap: int) -> tuple[dict, str]:
    """The outline along cell edges or, past cap vertices, a simplified one: the
    largest holes that fit kept, then edges simplified from half a cell up, so that a
    country-sized candidate stays a usable map feature (its figures come from its cells)."""
    kind = "exact"
    if shapely.get_num_coordinates(polygon) > cap:
        kind = "simplified"
        holes = np.array(polygon.interiors, dtype=object)
        sizes = shapely.get_num_coordinates(holes) if holes.size else np.array([], int)
        by_area = np.argsort(-shapely.area(shapely.polygons(holes))) if holes.size else sizes
        room = cap // 2 - len(polygon.exterior.coords)
        fits = np.cumsum(sizes[by_area]) <= room
        polygon = shapely.Polygon(polygon.exterior, list(holes[by_area[fits]]))
        tolerance = cell_deg / 2
        simple = polygon
        while shapely.get_num_coordinates(simple) > cap:
            simple = polygon.simplify(tolerance)
            tolerance *= 2
        polygon = simple
    rings = [polygon.exterior, *polygon.interiors]
    return {"type": "Polygon",
            "coordinates": [np.round(np.asarray(r.coords), 6).tolist() for r in rings]}, kind


def _candidate(rank: int, label: int, groups: Groups, outline: tuple[dict, str], cells: Cells,
               window: layers.Window, terrain: layers.Terrain, towns: layers.Places,
               airports: layers.Places) -> dict:
    members = groups.members(label)
    km2 = groups.cell_km2[members]
    area = float(km2.sum())
    best = members[np.argmax(groups.score[members])]  # ties: the first cell in row order
    row, col = divmod(int(cells.index[best]), window.width)
    lon = terrain.grid.c + terrain.grid.a * (window.col0 + col + 0.5)
    lat = terrain.grid.f + terrain.grid.e * (window.row0 + row + 0.5)
    slope, elevation = cells.slope[members], cells.elevation[members]
    share = {code: float(km2[cells.coverage[members] == code].sum()) / area for code in (1, 2)}
    geometry, outline_kind = outline
    properties = {
        "rank": rank,
        "score": rounded(groups.mean_score[label], 4),
        "area_km2": rounded(area, 3),
        "cells": int(members.size),
        "outline": outline_kind,
        "slope_mean_deg": rounded(slope.mean(dtype=np.float64), 2),
        "slope_max_deg": rounded(slope.max(), 2),
        "elevation_min_m": rounded(elevation.min(), 1),
        "elevation_mean_m": rounded(elevation.mean(dtype=np.float64), 1),
        "elevation_max_m": rounded(elevation.max(), 1),
        "coverage_4g_share": rounded(share[2], 4),
        "coverage_3g_share": rounded(share[1], 4),
        "coverage_none_share": rounded(max(1 - share[1] - share[2], 0.0), 4),
        "site_lon": round(lon, 6),
        "site_lat": round(lat, 6),
        "site_score": rounded(groups.score[best], 4),
        "site_slope_deg": rounded(cells.slope[best], 2),
        "site_elevation_m": rounded(cells.elevation[best], 1),
        "site_coverage": str(COVERAGE_NAMES[cells.coverage[best]]),
    }
    # names in English and, where the layers carry them, Russian and Kyrgyz (portal: per page)
    properties.update(_nearest_place("settlement", towns, lon, lat,
                                     ("name", "name_ru", "name_ky", "population", "region_en",
                                      "region_ru", "region_ky")))
    properties.update(_nearest_place("airport", airports, lon, lat,
                                     ("name", "name_ru", "name_ky", "icao", "iata")))
    return {"type": "Feature", "id": rank, "geometry": geometry, "properties": properties}


def _nearest_place(prefix: str, places: layers.Places, lon: float, lat: float,
                   fields: tuple[str, ...]) -> dict[str, Any]:
    """The geodesically nearest place to (lon, lat), with its distance in km."""
    if len(places) == 0:
        return {f"{prefix}_{f.removesuffix('_en')}": None for f in fields} | {
            f"{prefix}_distance_km": None}
    _, _, distances = layers.GEOD.inv(np.full(len(places), lon), np.full(len(places), lat),
                                      places.lon, places.lat)
    nearest = int(np.argmin(distances))
    props = places.properties[nearest]
    found = {f"{prefix}_{f.removesuffix('_en')}": props.get(f) for f in fields}
    found[f"{prefix}_distance_km"] = rounded(distances[nearest] / 1000, 3)
    return found


def _criteria_echo(criteria: Criteria, area: inputs.Area) -> dict[str, Any]:
    echo = {k: v for k, v in criteria.__dict__.items() if k not in ("weights", "classes")}
    echo["weights"] = {k: round(v, 4) for k, v in criteria.weights.items()}
    echo.update(class_criteria.echo(criteria.classes))
    echo["area"] = {"kind": area.kind, "region": area.region,
                    "bbox": [round(v, 6) for v in shapely.bounds(area.geometry).tolist()]}
    return echo


def _notes(criteria: Criteria, coverage_dataset: str) -> dict[str, str]:
    return {
        "cells": "DEM cells (15 arc-seconds); a cell is in the area when its centre is",
        "score": "mean over the candidate's cells of the weighted terms slope "
                 "(1 - slope/max_slope), coverage (4G 1, 3G 0.5, none 0), settlement and "
                 "airport closeness (1 - distance/reach); see docs/processes.md",
        "reach_km": "settlement {:g}, airport {:g}".format(*_reach_km(criteria)),
        "distances": "cells: equidistant conic grid projection (within 0.05 % of geodesic); "
                     "site to settlement/airport: geodesic (WGS84)",
        "coverage": f"modelled estimate (dataset {coverage_dataset})",
    } | class_criteria.notes(criteria.classes)
