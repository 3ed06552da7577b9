"""coverage-statistics: who and what is covered by mobile broadband, for an area and per region.

Coverage classes come from mobile-coverage: '4G' (4G and 3G), '3G' (3G only), 'none'
elsewhere. A settlement takes the class of the polygon its point lies in.

- Settlements and population: the LISTED places of the settlements layer and the sum of their
  populations, never a region's population (the sample lists 112 places). For a region or the
  whole country from the settlements' region attribute (every settlement of the layer is in
  Kyrgyzstan, even where the generalised boundary misses its point); for a drawn area, the
  settlements whose point lies inside it. The sample coverage model puts a mast at every listed
  settlement, so their being covered is true by construction: the notes say so.
- Areas: geodesic (WGS84) areas of the area clipped to the country and of its intersections
  with the coverage polygons; a region's from its polygon in the regions layer (regions.py).
  Osh City (KG-GO) has no polygon: its row has people and no areas or terrain means.
- Mean elevation and slope: unweighted means of the cells whose centre lies inside.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES
from catalog.processes import inputs, layers
from catalog.processes.base import (
    AREA_INPUT,
    GEOJSON,
    JSON,
    REGION_INPUT,
    Budget,
    CatalogProcessor,
    rounded,
)
from catalog.processes.geojson import feature, feature_collection
from catalog.processes.regions import OUTLINE_METHOD, Region, RegionSet, region_set

CLASSES = ("4G", "3G", "none")
MAX_WINDOW_CELLS = 20_000_000

PROCESS_METADATA = {
    "version": "1.0.0",
    "id": "coverage-statistics",
    "title": {"en": "Mobile coverage statistics",
              "ru": "Статистика покрытия мобильной связью",
              "ky": "Мобилдик байланыш менен камсыздоо статистикасы"},
    "description": {
        "en": "Population and settlements by mobile coverage class (4G, 3G only, none), the "
              "covered share of the area, and mean elevation and slope, for an area or region; "
              "and the same for every region (oblast, Bishkek City, Osh City). Population is the "
              "sum over the settlements the layer lists, not a region's population.",
        "ru": "Население и населённые пункты по классам покрытия (4G, только 3G, нет), доля "
              "покрытой площади, средние высота и уклон - для области на карте и по регионам.",
        "ky": "Калк жана калктуу конуштар байланыш класстары боюнча (4G, 3G гана, жок), "
              "камтылган аянттын үлүшү, орточо бийиктик жана жантаюу - аймак жана региондор "
              "боюнча.",
    },
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": ["coverage", "4G", "3G", "population", "connectivity", "statistics"],
    "inputs": {
        "area": AREA_INPUT,
        "region": REGION_INPUT,
        "include_regions": {
            "title": "Include every region",
            "description": "Also give one row (and one feature) per region.",
            "schema": {"type": "boolean", "default": True},
            "minOccurs": 0, "maxOccurs": 1,
        },
    },
    "outputs": {
        "table": {
            "title": "Table",
            "description": "{area: row, regions: [rows]}: each row has settlements_<class>, "
                           "population_<class> (class 4g, 3g, none, total), "
                           "population_covered_share, area_km2, area_<class>_km2, "
                           "area_covered_share, elevation_mean_m, slope_mean_deg and outline "
                           "(requested, country-boundary, regions-layer, or none for a city "
                           "without a polygon); notes say what each figure counts and sources "
                           "name the dataset each came from.",
            "schema": {"type": "object", "contentMediaType": JSON},
        },
        "features": {
            "title": "Features",
            "description": "GeoJSON FeatureCollection: the area (role 'area') and the region "
                           "outlines (role 'region') with the row as properties.",
            "schema": {"type": "object", "contentMediaType": GEOJSON},
        },
    },
    "example": {"inputs": {"area": [74.3, 42.7, 75.0, 43.0]}},
}


class CoverageStatisticsProcessor(CatalogProcessor):
    METADATA = PROCESS_METADATA

    def compute(self, data: dict, budget: Budget, wanted: list[str]) -> dict[str, Any]:
        inputs.check_names(data, self.metadata["inputs"])
        paths = self.layers
        regions = self.regions()
        country = layers.boundary(paths["boundary"])
        area = inputs.area(data, country, regions.by_code, cities=True)
        include_regions = inputs.boolean(data, "include_regions", True)
        budget.check("area")
        area_row = area_statistics(paths, area, regions)
        rows = region_rows(paths) if include_regions else []
        budget.check("regions")
        result: dict[str, Any] = {}
        notes = _notes(include_regions, paths["datasets"])
        if "table" in wanted:
            result["table"] = {"area": area_row, "regions": rows, "notes": notes,
                               "sources": _sources(paths["datasets"])}
        if "features" in wanted:
            result["features"] = _features(area, area_row, regions, rows, include_regions,
                                           notes)
        return result


def area_statistics(paths: dict, area: inputs.Area, regions: RegionSet) -> dict[str, Any]:
    """The row for the requested area (a drawn area, a region or the whole country)."""
    if area.kind == "country":
        return dict(_country_row(paths["settlements"], paths["boundary"], paths["elevation"],
                                 paths["slope"], paths["coverage"]))
    if area.kind == "region":
        return dict(next(r for r in region_rows(paths) if r["region"] == area.region))
    people = _settlement_classes(paths["settlements"], paths["coverage"])
    places = layers.places(paths["settlements"])
    inside = shapely.intersects_xy(area.requested, places.lon, places.lat)
    row = {"region": None, "name": "area", "outline": "requested"}
    row.update(_people(people, places, inside))
    row.update(_areas(area.geometry, layers.coverage_polygons(paths["coverage"])))
    row.update(_terrain_means(paths, area.geometry))
    return row


@layers.cached(maxsize=2)
def _country_row(settlements: str, boundary: str, elevation: str, slope: str,
                 coverage: str) -> dict[str, Any]:
    places = layers.places(settlements)
    people = _settlement_classes(settlements, coverage)
    terrain = layers.terrain(elevation, slope, coverage)
    row = {"region": None, "name": "Kyrgyzstan", "outline": "country-boundary"}
    row.update(_people(people, places, np.ones(len(places), dtype=bool)))
    row.update(_areas(layers.boundary(boundary), layers.coverage_polygons(coverage)))
    row.update(_means(terrain.elevation[terrain.valid], terrain.slope[terrain.valid]))
    return row


def region_rows(paths: dict) -> list[dict[str, Any]]:
    return [dict(r) for r in _region_rows(paths["regions"], paths["settlements"],
                                          paths["elevation"], paths["slope"],
                                          paths["coverage"])]


@layers.cached(maxsize=2)
def _region_rows(regions_path: str, settlements: str, elevation: str, slope: str,
                 coverage: str) -> list[dict[str, Any]]:
    """One row per region: people from the region attribute, areas from the region's polygon
    (none for a city without one)."""
    regions = region_set(regions_path, settlements, elevation)
    places = layers.places(settlements)
    people = _settlement_classes(settlements, coverage)
    polygons = layers.coverage_polygons(coverage)
    terrain = layers.terrain(elevation, slope, coverage)
    codes = np.array([p.get("region_iso") for p in places.properties], dtype=object)
    means = _region_means(regions, terrain)
    rows = []
    for index, region in enumerate(regions.regions):
        row = {"region": region.code, "name": region.names[FALLBACK_LANGUAGE],
               **{f"name_{lang}": region.names[lang] for lang in LANGUAGES
                  if lang != FALLBACK_LANGUAGE},
               "outline": "regions-layer" if region.outline is not None else "none",
               "within": region.within}
        row.update(_people(people, places, codes == region.code))
        if region.outline is not None:
            row.update(_areas(region.outline, polygons))
            row.update(means[index + 1])
        else:  # a city without a polygon: it has people, not an area of its own
            row.update(dict.fromkeys(("area_km2", "area_4g_km2", "area_3g_km2",
                                      "area_none_km2", "area_covered_share"), None))
            row.update(cells=0, elevation_mean_m=None, slope_mean_deg=None)
        rows.append(row)
    return rows


@layers.cached(maxsize=4)
def _settlement_classes(settlements: str, coverage: str) -> np.ndarray:
    places = layers.places(settlements)
    return layers.coverage_class_at(layers.coverage_polygons(coverage), places.lon, places.lat)


def _people(classes: np.ndarray, places: layers.Places, selected: np.ndarray) -> dict[str, Any]:
    population = np.array([p.get("population") or 0 for p in places.properties], dtype=np.int64)
    row: dict[str, Any] = {}
    for name in CLASSES:
        chosen = selected & (classes == name)
        row[f"settlements_{name.lower()}"] = int(chosen.sum())
        row[f"population_{name.lower()}"] = int(population[chosen].sum())
    row["settlements_total"] = int(selected.sum())
    row["population_total"] = int(population[selected].sum())
    covered = row["population_4g"] + row["population_3g"]
    row["population_covered_share"] = rounded(covered / row["population_total"], 4) \
        if row["population_total"] else None
    return row


def _areas(geometry: BaseGeometry, polygons: dict[str, BaseGeometry]) -> dict[str, Any]:
    total = layers.geodesic_area_km2(geometry)
    four = layers.geodesic_area_km2(geometry.intersection(polygons["4G"]))
    three = layers.geodesic_area_km2(geometry.intersection(polygons["3G"]))
    return {
        "area_km2": rounded(total, 2),
        "area_4g_km2": rounded(four, 2),
        "area_3g_km2": rounded(three, 2),
        "area_none_km2": rounded(max(total - four - three, 0.0), 2),
        "area_covered_share": rounded((four + three) / total, 4) if total else None,
    }


def _terrain_means(paths: dict, geometry: BaseGeometry) -> dict[str, Any]:
    terrain = layers.terrain(paths["elevation"], paths["slope"], paths["coverage"])
    window = layers.window_of(geometry.bounds, terrain.grid, terrain.width, terrain.height)
    if window.cells > MAX_WINDOW_CELLS:
        raise inputs.InvalidInput("area: too large for this grid")
    inside = layers.cells_inside(geometry, window, terrain.grid) & terrain.valid[window.slices]
    return _means(terrain.elevation[window.slices][inside], terrain.slope[window.slices][inside])


def _means(elevation: np.ndarray, slope: np.ndarray) -> dict[str, Any]:
    return {
        "cells": int(elevation.size),
        "elevation_mean_m": rounded(elevation.mean(dtype=np.float64), 1) if elevation.size
        else None,
        "slope_mean_deg": rounded(slope.mean(dtype=np.float64), 2) if slope.size else None,
    }


def _region_means(regions: RegionSet, terrain: layers.Terrain) -> dict[int, dict[str, Any]]:
    labels = regions.cells[terrain.valid]
    size = len(regions.regions) + 1
    counts = np.bincount(labels, minlength=size)
    elevation = np.bincount(labels, weights=terrain.elevation[terrain.valid], minlength=size)
    slope = np.bincount(labels, weights=terrain.slope[terrain.valid], minlength=size)
    return {i: {"cells": int(counts[i]),
                "elevation_mean_m": rounded(elevation[i] / counts[i], 1) if counts[i] else None,
                "slope_mean_deg": rounded(slope[i] / counts[i], 2) if counts[i] else None}
            for i in range(size)}


def _features(area: inputs.Area, area_row: dict, regions: RegionSet, rows: list[dict],
              include_regions: bool, notes: dict[str, str]) -> dict[str, Any]:
    items = []
    if area.kind != "region" or not include_regions:
        items.append(feature(area.geometry, dict(area_row, role="area",
                                                 title=_area_title(area, regions)), "area"))
    by_code: dict[str, Region] = regions.by_code
    for row in rows:
        region = by_code[row["region"]]
        role = "area" if area.kind == "region" and area.region == region.code else "region"
        title = _region_title(region)
        items.append(feature(region.outline or region.place, dict(row, role=role, title=title),
                             region.code))
    return feature_collection(items, title="Mobile coverage statistics", notes=notes)


def _area_title(area: inputs.Area, regions: RegionSet) -> str:
    if area.kind == "region":
        return _region_title(regions.by_code[area.region])
    return "Kyrgyzstan" if area.kind == "country" else "Requested area (inside Kyrgyzstan)"


def _region_title(region: Region) -> str:
    if region.outline is None:
        return f"{region.names['en']} (city; no polygon, inside {region.within or '-'})"
    return f"{region.names['en']} (Natural Earth 1:10m outline)"


def _notes(include_regions: bool, datasets: dict[str, str]) -> dict[str, str]:
    notes = {
        "coverage": f"modelled estimate (dataset {datasets['coverage']}): 4G = 4G and 3G, 3G = "
                    "3G only, none elsewhere",
        "settlements": f"settlements_* count the places listed in dataset "
                       f"{datasets['settlements']} and population_* sum their listed "
                       "populations: not the population of a region or area (most villages "
                       "are not listed). Region and country figures from the settlements' "
                       "region attribute; a drawn area counts the settlements whose point lies "
                       "inside it",
        "by_construction": f"the coverage model ({datasets['coverage']}) puts a mast at every "
                           "listed settlement, so the listed settlements are covered by "
                           "construction: population_covered_share says nothing about people "
                           "outside them",
        "areas": "geodesic km2 of the area clipped to the country boundary "
                 f"({datasets['boundary']})",
        "terrain": f"unweighted means of the cells of {datasets['elevation']} and "
                   f"{datasets['slope']} whose centre lies inside",
    }
    if include_regions:
        notes["region_outlines"] = f"dataset {datasets['regions']}: {OUTLINE_METHOD}"
    return notes


def _sources(datasets: dict[str, str]) -> dict[str, str]:
    """The dataset each figure of a row comes from."""
    return {"settlements_*, population_*": datasets["settlements"],
            "coverage classes, area_<class>_km2": datasets["coverage"],
            "area_km2 (regions)": datasets["regions"], "area_km2 (country)": datasets["boundary"],
            "elevation_mean_m": datasets["elevation"], "slope_mean_deg": datasets["slope"]}
