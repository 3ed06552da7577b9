"""Check a vector source with fiona and describe it (fields, geometry types, extent)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import fiona
import shapely
from fiona.errors import FionaError
from shapely.geometry import shape
from shapely.validation import explain_validity

from catalog.problems import Problem

MAX_PROBLEMS_PER_KIND = 20  # enough to fix the pattern; a list of 10,000 helps nobody


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


def inspect_vector(
    path: Path, id_field: str | None = None
) -> tuple[VectorInfo | None, list[Problem]]:
    """Read every feature once; return a description and the problems found."""
    where = path.name
    try:
        layers = fiona.listlayers(open_path(path))
    except (FionaError, OSError, ValueError) as err:
        return None, [Problem(where, f"cannot be read as vector data: {err}")]
    if len(layers) != 1:
        return None, [Problem(where, f"has {len(layers)} layers ({', '.join(layers)}); expected 1")]
    try:
        return _inspect_layer(path, layers[0], id_field)
    except (FionaError, OSError, ValueError, RuntimeError) as err:
        return None, [Problem(where, f"cannot be read as vector data: {err}")]


def _inspect_layer(path: Path, layer: str, id_field: str | None):
    where = path.name
    problems: list[Problem] = []
    with fiona.open(open_path(path), layer=layer) as collection:
        crs = collection.crs.to_string() if collection.crs else ""
        fields = dict(collection.schema["properties"])
        if not crs:
            problems.append(
                Problem(
                    where,
                    "has no coordinate reference system (add a .prj "
                    "or declare the CRS in the file)",
                )
            )
        if id_field and id_field not in fields:
            problems.append(Problem("id_field", f"{id_field!r} is not a field of {where}"))
        geometry_types, count, feature_problems = _check_features(collection, id_field, fields)
    problems.extend(feature_problems)
    if count == 0:
        problems.append(Problem(where, "contains no features"))
    info = VectorInfo(path, layer, crs, count, tuple(sorted(geometry_types)), fields)
    return info, problems


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
            report("empty", Problem(label, "has no geometry"))
            continue
        geometry_types[feature.geometry.type] += 1
        geometry = shape(feature.geometry)
        if geometry.is_empty:
            report("empty", Problem(label, "has an empty geometry"))
        elif not shapely.is_valid(geometry):
            report("invalid", Problem(label, f"invalid geometry: {explain_validity(geometry)}"))
        if id_field and id_field in fields:
            value = feature.properties.get(id_field)
            if value is None:
                report("id", Problem(label, f"has no value for the id field {id_field!r}"))
            elif value in seen_ids:
                report("id", Problem(label, f"duplicate id {value!r} in field {id_field!r}"))
            seen_ids.add(value)
    for kind, total in reported.items():
        if total > MAX_PROBLEMS_PER_KIND:
            problems.append(
                Problem(
                    "features", f"{total - MAX_PROBLEMS_PER_KIND} more {kind} problems not listed"
                )
            )
    return geometry_types, count, problems


def _feature_label(index: int, feature, id_field: str | None) -> str:
    if id_field and feature.properties.get(id_field) is not None:
        return f"feature {index} ({id_field}={feature.properties[id_field]})"
    return f"feature {index}"
