"""Check a vector source with fiona and describe it (fields, geometry types, extent)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import fiona
import numpy as np
import shapely
from fiona.errors import FionaError
from shapely.geometry import shape
from shapely.validation import explain_validity

from catalog.gpkg import read_batches
from catalog.problems import Problem
from catalog.sources.content import driver_for

SINGLE_LAYER_DRIVERS = ("GeoJSON", "CSV", "FlatGeobuf")
MAX_LAYERS = 100  # layers probed before a source counts as having too many
MAX_PROBLEMS_PER_KIND = 20  # enough to fix the pattern; a list of 10,000 helps nobody
GEOMETRY_TYPES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
                  "MultiPolygon", "GeometryCollection")  # by shapely type id


@dataclass(frozen=True)
class VectorInfo:
    path: Path
    layer: str
    crs: str
    feature_count: int
    geometry_types: tuple[str, ...]
    fields: dict[str, str]  # name -> fiona type ('str', 'int', 'float', 'date', ...)


def open_path(path: Path) -> str:
    """Fiona path for a source; zipped shapefiles are read in place through /vsizip/."""
    return f"zip://{path}" if path.suffix.lower() == ".zip" else str(path)


def open_vector(path: Path, layer: str | int | None = None):
    """A fiona collection of the source, opened only by the driver its format names (GDAL
    would otherwise pick one from the content, a VRT or SQLite file included)."""
    return fiona.open(open_path(path), driver=driver_for(path), layer=layer,
                      allow_unsupported_drivers=True)  # KML: fiona lists it as write-only


def list_layers(path: Path) -> list[str]:
    """Layer names, through the pinned driver (fiona.listlayers lets GDAL choose one)."""
    with open_vector(path) as first:
        names = [first.name]
    if driver_for(path) in SINGLE_LAYER_DRIVERS:
        return names
    for index in range(1, MAX_LAYERS + 1):
        try:
            with open_vector(path, index) as collection:
                names.append(collection.name)
        except ValueError:  # fiona: "Null layer", past the last one
            break
    return names


def inspect_vector(
    path: Path, id_field: str | None = None
) -> tuple[VectorInfo | None, list[Problem]]:
    """Read every feature once; return a description and the problems found."""
    where = path.name
    try:
        layers = list_layers(path)
    except (FionaError, OSError, ValueError) as err:
        return None, [Problem(where, f"cannot be read as vector data: {err}",
                              code="unreadable_vector")]
    if len(layers) != 1:
        return None, [Problem(where, f"has {len(layers)} layers ({', '.join(layers)}); expected 1",
                              code="many_layers",
                              params={"count": len(layers), "layers": ", ".join(layers)})]
    try:
        return _inspect_layer(path, layers[0], id_field)
    except (FionaError, OSError, ValueError, RuntimeError) as err:
        return None, [Problem(where, f"cannot be read as vector data: {err}",
                              code="unreadable_vector")]


def _inspect_layer(path: Path, layer: str, id_field: str | None):
    where = path.name
    problems: list[Problem] = []
    with open_vector(path, layer) as collection:
        crs = collection.crs.to_string() if collection.crs else ""
        fields = dict(collection.schema["properties"])
        if not crs:
            problems.append(
                Problem(
                    where,
                    "has no coordinate reference system (add a .prj "
                    "or declare the CRS in the file)",
                    code="no_crs",
                )
            )
        if id_field and id_field not in fields:
            problems.append(Problem("id_field", f"{id_field!r} is not a field of {where}",
                                    code="id_field_unknown",
                                    params={"field": id_field, "fields": ", ".join(fields)}))
        checked = _check_geopackage_rows(path, layer, id_field, fields)
        if checked is None:  # not a GeoPackage, or not one SQLite can read in bulk
            checked = _check_features(collection, id_field, fields)
        geometry_types, count, feature_problems = checked
    problems.extend(feature_problems)
    families = sorted({kind.removeprefix("Multi") for kind in geometry_types})
    if len(families) > 1:
        problems.append(Problem(where, f"mixes {' and '.join(families)} geometries; a layer "
                                       "holds one kind (Multi* variants of it are fine)",
                                code="mixed_geometry", params={"types": ", ".join(families)}))
    if count == 0:
        problems.append(Problem(where, "contains no features", code="no_features"))
    info = VectorInfo(path, layer, crs, count, tuple(sorted(geometry_types)), fields)
    return info, problems


class _Report:
    """Problems found, at most MAX_PROBLEMS_PER_KIND of each kind, then a count of the rest."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.reported: Counter = Counter()

    def __call__(self, kind: str, problem: Problem) -> None:
        self.reported[kind] += 1
        if self.reported[kind] <= MAX_PROBLEMS_PER_KIND:
            self.problems.append(problem)

    def close(self) -> list[Problem]:
        for kind, total in self.reported.items():
            if total > MAX_PROBLEMS_PER_KIND:
                self.problems.append(Problem(
                    "features", f"{total - MAX_PROBLEMS_PER_KIND} more {kind} problems not listed",
                    code="more_not_listed",
                    params={"count": total - MAX_PROBLEMS_PER_KIND, "total": total}))
        return self.problems


def _check_geopackage_rows(
    path: Path, layer: str, id_field: str | None, fields: dict
) -> tuple[Counter, int, list] | None:
    """The checks of `_check_features` on a GeoPackage, a batch of rows at a time.

    Reads geometry blobs with SQLite and tests them with shapely's array functions (a million
    parcels in seconds instead of minutes through fiona). None when the file is not a
    GeoPackage this reader handles (the caller then uses fiona).
    """
    if path.suffix.lower() != ".gpkg":
        return None
    report, geometry_types, seen_ids = _Report(), Counter(), set()
    names = list(fields)
    id_column = names.index(id_field) if id_field in fields else None
    count = 0
    try:
        for geometries, rows in read_batches(path, layer, names):
            _check_batch(geometries, rows, count, (id_field, id_column), report,
                         geometry_types, seen_ids)
            count += len(rows)
    except (ValueError, sqlite3.Error, shapely.errors.GEOSException):
        return None
    return geometry_types, count, report.close()


def _check_batch(geometries, rows, first: int, id_spec, report, geometry_types, seen_ids) -> None:
    id_field, id_column = id_spec
    missing = shapely.is_missing(geometries)
    empty = ~missing & shapely.is_empty(geometries)
    invalid = ~missing & ~empty & ~shapely.is_valid(geometries)
    type_ids = shapely.get_type_id(geometries)
    for type_id, total in zip(*np.unique(type_ids[~missing], return_counts=True), strict=True):
        geometry_types[GEOMETRY_TYPES[type_id]] += int(total)

    def label(i: int) -> str:
        if id_column is not None and rows[i][id_column] is not None:
            return f"feature {first + i} ({id_field}={rows[i][id_column]})"
        return f"feature {first + i}"

    for i in np.flatnonzero(missing | empty | invalid).tolist():
        if missing[i]:
            report("empty", Problem(label(i), "has no geometry", code="no_geometry"))
        elif empty[i]:
            report("empty", Problem(label(i), "has an empty geometry", code="empty_geometry"))
        else:
            reason = explain_validity(geometries[i])
            report("invalid", Problem(label(i), f"invalid geometry: {reason}",
                                      code="geometry_invalid", params={"reason": reason}))
    if id_column is None:
        return
    for i, row in enumerate(rows):
        if missing[i]:
            continue  # fiona's loop skips the id checks of features without geometry
        value = row[id_column]
        if value is None:
            report("id", Problem(label(i), f"has no value for the id field {id_field!r}",
                                 code="id_missing"))
        elif value in seen_ids:
            report("id", Problem(label(i), f"duplicate id {value!r} in field {id_field!r}",
                                 code="id_repeated",
                                 params={"value": str(value), "field": id_field}))
        seen_ids.add(value)


def _check_features(collection, id_field: str | None, fields: dict) -> tuple[Counter, int, list]:
    geometry_types: Counter = Counter()
    problems: list[Problem] = []
    seen_ids: set = set()
    reported: Counter = Counter()

    def report(kind: str, problem: Problem) -> None:
        reported[kind] += 1
        if reported[kind] <= MAX_PROBLEMS_PER_KIND:
            problems.append(problem)

    count = 0
    for index, feature in enumerate(collection):
        count += 1
        label = _feature_label(index, feature, id_field)
        if feature.geometry is None:
            report("empty", Problem(label, "has no geometry", code="no_geometry"))
            continue
        geometry_types[feature.geometry.type] += 1
        geometry = shape(feature.geometry)
        if geometry.is_empty:
            report("empty", Problem(label, "has an empty geometry", code="empty_geometry"))
        elif not shapely.is_valid(geometry):
            reason = explain_validity(geometry)
            report("invalid", Problem(label, f"invalid geometry: {reason}",
                                      code="geometry_invalid", params={"reason": reason}))
        if id_field and id_field in fields:
            value = feature.properties.get(id_field)
            if value is None:
                report("id", Problem(label, f"has no value for the id field {id_field!r}",
                                     code="id_missing"))
            elif value in seen_ids:
                report("id", Problem(label, f"duplicate id {value!r} in field {id_field!r}",
                                     code="id_repeated",
                                     params={"value": str(value), "field": id_field}))
            seen_ids.add(value)
    for kind, total in reported.items():
        if total > MAX_PROBLEMS_PER_KIND:
            problems.append(Problem(
                "features", f"{total - MAX_PROBLEMS_PER_KIND} more {kind} problems not listed",
                code="more_not_listed",
                params={"count": total - MAX_PROBLEMS_PER_KIND, "total": total}))
    return geometry_types, count, problems


def _feature_label(index: int, feature, id_field: str | None) -> str:
    if id_field and feature.properties.get(id_field) is not None:
        return f"feature {index} ({id_field}={feature.properties[id_field]})"
    return f"feature {index}"
