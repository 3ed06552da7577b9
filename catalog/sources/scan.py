"""One pass over an uploaded source: every finding with its place, and opt-in geometry repair.

Vector checks, per feature: missing, empty or unparseable geometry, coordinates that are not
finite numbers (always blocking); invalid geometry (blocking, or repaired when the upload asked
for `repair=geometry`); geometry collections; id values missing or duplicated; attribute values
over the size limit. Per layer: CRS (missing blocks; anything but EPSG:4326 is reprojected on
publication, and said so), mixed geometry types (same family: promoted to Multi*, a notice;
different families: blocking, a layer holds one kind of geometry).

Repair rule (docs/stewards.md): shapely.make_valid(method="structure", keep_collapsed=False),
kept only when the result is non-empty and of the same family (polygon stays polygonal...).
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import fiona
import numpy as np
import shapely
from fiona.crs import CRS
from fiona.errors import FionaError
from shapely.geometry import mapping, shape
from shapely.validation import explain_validity

from catalog.gpkg import read_batches
from catalog.sources.findings import Finding, blocking, notice, repaired
from catalog.sources.raster import inspect_raster
from catalog.sources.vector import list_layers, open_vector

STORAGE_CRS = "EPSG:4326"
MAX_FINDINGS_PER_KIND = 100  # enough to see the pattern; the count of the rest is reported
FAMILIES = {"Point": "point", "MultiPoint": "point", "LineString": "line",
            "MultiLineString": "line", "Polygon": "polygon", "MultiPolygon": "polygon"}
BATCH = 2000
# shapely.get_type_id codes, and the ones a layer may hold.
TYPE_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
              "MultiPolygon", "GeometryCollection")
SUPPORTED_TYPE_IDS = (0, 1, 3, 4, 5, 6)


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    repaired_source: Path | None = None  # set when repair rewrote features


class _Findings:
    """Caps each kind of finding, counting what it leaves out."""

    def __init__(self) -> None:
        self.items: list[Finding] = []
        self.counts: Counter = Counter()

    def add(self, kind: str, finding: Finding) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_FINDINGS_PER_KIND:
            self.items.append(finding)

    def close(self) -> list[Finding]:
        for kind, total in self.counts.items():
            if total > MAX_FINDINGS_PER_KIND:
                status = "repaired" if kind == "repaired" else "blocking"
                left = total - MAX_FINDINGS_PER_KIND
                self.items.append(Finding(status, f"{left} more {kind} findings not listed "
                                          f"({total} in all)", {}, "more_not_listed",
                                          {"count": left, "total": total}))
        return self.items


def scan_vector(path: Path, id_field: str | None, max_attribute_bytes: int,
                repair_to: Path | None = None, rows: bool = False) -> ScanResult:
    """Check every feature; with repair_to, also write a repaired copy there (GeoPackage)."""
    result = ScanResult()
    try:
        layers = list_layers(path)
    except (FionaError, OSError, ValueError) as err:
        result.findings.append(blocking(f"cannot be read as vector data: {err}", file=path.name,
                                        code="unreadable_vector"))
        return result
    if len(layers) != 1:
        result.findings.append(blocking(
            f"holds {len(layers)} layers ({', '.join(layers)}); upload one layer per dataset",
            file=path.name, code="many_layers",
            params={"count": len(layers), "layers": ", ".join(layers)}))
        return result
    try:
        _scan_layer(path, layers[0], id_field, max_attribute_bytes, repair_to, rows, result)
    except (FionaError, OSError, ValueError, RuntimeError) as err:
        result.findings.append(blocking(f"cannot be read as vector data: {err}", file=path.name,
                                        code="unreadable_vector"))
    return result


def _scan_layer(path: Path, layer: str, id_field: str | None, max_bytes: int,
                repair_to: Path | None, rows: bool, result: ScanResult) -> None:
    with open_vector(path, layer) as collection:
        crs = collection.crs.to_string() if collection.crs else ""
        fields = dict(collection.schema["properties"])
        result.findings += _layer_findings(path, crs, fields, id_field)
        state = _FeatureScan(id_field if id_field in fields else None, max_bytes, rows,
                             repair=repair_to is not None)
        bulk = _scan_geopackage(path, layer, fields, state) if repair_to is None else None
        if bulk is not None:
            state = bulk
        elif repair_to is None:
            for index, feature in enumerate(collection):
                state.check(index, feature)
        else:
            schema = {"geometry": "Unknown", "properties": fields}
            with fiona.open(repair_to, "w", driver="GPKG", layer=layer, schema=schema,
                            crs=collection.crs) as sink:
                batch = []
                for index, feature in enumerate(collection):
                    batch.append(state.check(index, feature))
                    if len(batch) == BATCH:
                        sink.writerecords(batch)
                        batch = []
                sink.writerecords(batch)
    findings = state.findings.close()
    result.findings += findings + _type_findings(state.types, state.first_of_type)
    if repair_to is not None:
        if state.findings.counts["repaired"]:
            result.repaired_source = repair_to
        else:
            repair_to.unlink(missing_ok=True)
    result.facts = {"layer": layer, "crs": crs or None, "feature_count": state.count,
                    "geometry_types": dict(state.types), "fields": fields}
    if state.count == 0:
        result.findings.append(blocking("contains no features", file=path.name, code="no_features"))


def _layer_findings(path: Path, crs: str, fields: dict, id_field: str | None) -> list[Finding]:
    findings = []
    if not crs:
        findings.append(blocking("has no coordinate reference system: add a .prj to a "
                                 "Shapefile, or declare the CRS in the file", file=path.name,
                                 code="no_crs"))
    elif not _is_storage_crs(crs):
        findings.append(notice(f"coordinates in {crs} are reprojected to {STORAGE_CRS} on "
                               "publication", file=path.name, code="reprojected",
                               params={"crs": crs, "target": STORAGE_CRS}))
    if id_field and id_field not in fields:
        findings.append(blocking(f"the manifest's id_field {id_field!r} is not a field of the "
                                 f"upload (fields: {', '.join(fields)})", field=id_field,
                                 code="id_field_unknown",
                                 params={"field": id_field, "fields": ", ".join(fields)}))
    return findings


def _is_storage_crs(crs: str) -> bool:
    return CRS.from_user_input(crs) == CRS.from_user_input(STORAGE_CRS)


class _FeatureScan:
    def __init__(self, id_field: str | None, max_bytes: int, rows: bool, repair: bool):
        self.id_field, self.max_bytes, self.rows, self.repair = id_field, max_bytes, rows, repair
        self.findings = _Findings()
        self.types: Counter = Counter()
        self.first_of_type: dict[str, int] = {}
        self.seen_ids: dict = {}
        self.count = 0

    def where(self, index: int, properties) -> dict:
        where: dict = {"row": index + 1, "line": index + 2} if self.rows else {"feature": index}
        if self.id_field and properties.get(self.id_field) is not None:
            where.update(id=properties[self.id_field], id_field=self.id_field)
        return where

    def check(self, index: int, feature) -> dict:
        """Record findings for one feature; return it as a record to write (maybe repaired)."""
        self.count += 1
        properties = dict(feature.properties)
        where = self.where(index, properties)
        geometry = self.check_geometry(feature.geometry, where, index)
        self.check_id(properties, where, index)
        self.check_attributes(properties, where)
        return {"geometry": geometry, "properties": properties}

    def check_geometry(self, raw, where: dict, index: int):
        if raw is None:
            self.missing(where)
            return None
        try:
            geometry = shape(raw)
        except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError) as err:
            self.findings.add("geometry", blocking(f"unparseable geometry: {err}", **where,
                                                   code="unparseable_geometry"))
            return raw
        self.count_type(geometry.geom_type, index)
        if geometry.is_empty:
            self.empty(where)
        elif not np.isfinite(shapely.get_coordinates(geometry, include_z=geometry.has_z)).all():
            self.not_finite(where)
        elif geometry.geom_type not in FAMILIES:
            self.unsupported(geometry.geom_type, where)
        elif not shapely.is_valid(geometry):
            return self.invalid(geometry, raw, where)
        return raw

    def count_type(self, kind: str, index: int, count: int = 1) -> None:
        self.types[kind] += count
        self.first_of_type.setdefault(kind, index)

    def missing(self, where: dict) -> None:
        what = "no coordinates or unparseable geometry" if self.rows else "no geometry"
        code = "row_without_geometry" if self.rows else "no_geometry"
        self.findings.add("geometry", blocking(f"has {what}", **where, code=code))

    def empty(self, where: dict) -> None:
        self.findings.add("geometry", blocking("has an empty geometry", **where,
                                               code="empty_geometry"))

    def not_finite(self, where: dict) -> None:
        self.findings.add("geometry", blocking("has coordinates that are not finite numbers "
                                               "(NaN or infinity)", **where,
                                               code="not_finite"))

    def unsupported(self, kind: str, where: dict) -> None:
        self.findings.add("geometry", blocking(f"{kind} is not supported: use points, lines "
                                               "or polygons", **where,
                                               code="unsupported_geometry",
                                               params={"kind": kind}))

    def check_batch(self, first: int, geometries: np.ndarray, rows: list[tuple],
                    names: list[str]) -> None:
        """The checks of `check` on a decoded batch: shapely array functions, then details
        only for the features that have a problem."""
        self.count += len(rows)
        missing = shapely.is_missing(geometries)
        type_ids = np.where(missing, -1, shapely.get_type_id(geometries))
        for type_id, total in zip(*np.unique(type_ids[~missing], return_counts=True),
                                  strict=True):
            first_at = first + int(np.argmax(type_ids == type_id))
            self.count_type(TYPE_NAMES[type_id], first_at, int(total))
        empty = ~missing & shapely.is_empty(geometries)
        coordinates, owners = shapely.get_coordinates(geometries, return_index=True)
        not_finite = np.zeros(len(rows), dtype=bool)
        not_finite[owners[~np.isfinite(coordinates).all(axis=1)]] = True
        not_finite &= ~missing & ~empty
        supported = np.isin(type_ids, SUPPORTED_TYPE_IDS)
        candidates = ~missing & ~empty & ~not_finite & supported
        invalid = np.zeros(len(rows), dtype=bool)
        invalid[candidates] = ~shapely.is_valid(geometries[candidates])
        for i in np.flatnonzero(missing | empty | not_finite | ~supported | invalid).tolist():
            where = self.where(first + i, dict(zip(names, rows[i], strict=True)))
            if missing[i]:
                self.missing(where)
            elif empty[i]:
                self.empty(where)
            elif not_finite[i]:
                self.not_finite(where)
            elif not supported[i]:
                self.unsupported(TYPE_NAMES[type_ids[i]], where)
            else:
                self.invalid(geometries[i], None, where)
        for i, row in enumerate(rows):
            self.check_row(first + i, row, names)

    def check_row(self, index: int, row: tuple, names: list[str]) -> None:
        """Id and attribute checks on a plain row; its location is built only when needed."""
        if self.id_field is not None:
            value = row[names.index(self.id_field)]
            if value is None or value in self.seen_ids:
                self.check_id(dict(zip(names, row, strict=True)),
                              self.where(index, dict(zip(names, row, strict=True))), index)
            else:
                self.seen_ids[value] = index
        for value in row:
            if isinstance(value, str | bytes) and len(value) * 4 > self.max_bytes:
                properties = dict(zip(names, row, strict=True))
                self.check_attributes(properties, self.where(index, properties))
                return

    def invalid(self, geometry, raw, where: dict):
        reason = explain_validity(geometry)
        if not self.repair:
            self.findings.add("geometry", blocking(
                f"invalid geometry: {reason} (upload with repair=geometry to have it made "
                "valid)", **where, code="invalid_geometry", params={"reason": reason}))
            return raw
        fixed = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
        family = FAMILIES[geometry.geom_type]
        if fixed.is_empty or FAMILIES.get(fixed.geom_type) != family:
            self.findings.add("geometry", blocking(
                f"invalid geometry: {reason}; cannot be repaired without changing its kind "
                f"(make_valid gives {fixed.geom_type})", **where,
                code="invalid_unrepairable", params={"reason": reason, "kind": fixed.geom_type}))
            return raw
        self.findings.add("repaired", repaired(
            f"invalid geometry ({reason}) made valid: {geometry.geom_type} with "
            f"{shapely.get_num_coordinates(geometry)} points became {fixed.geom_type} with "
            f"{shapely.get_num_geometries(fixed)} part(s), {_change(geometry, fixed)}", **where,
            code="geometry_repaired",
            params={"reason": reason, "before": geometry.geom_type, "after": fixed.geom_type,
                    "points": shapely.get_num_coordinates(geometry),
                    "parts": shapely.get_num_geometries(fixed)}))
        return mapping(fixed)

    def check_id(self, properties: dict, where: dict, index: int) -> None:
        if not self.id_field:
            return
        value = properties.get(self.id_field)
        if value is None:
            self.findings.add("id", blocking(f"has no value for the id field "
                                             f"{self.id_field!r}", **where, field=self.id_field,
                                             code="id_missing"))
        elif value in self.seen_ids:
            first = self.seen_ids[value]
            place = f"row {first + 1}" if self.rows else f"feature {first}"
            self.findings.add("id", blocking(f"duplicate id {value!r} in field "
                                             f"{self.id_field!r} (first at {place})",
                                             **where, field=self.id_field, code="id_duplicate",
                                             params={"value": str(value), "first": place}))
        else:
            self.seen_ids[value] = index

    def check_attributes(self, properties: dict, where: dict) -> None:
        for name, value in properties.items():
            size = len(value.encode("utf-8")) if isinstance(value, str) else (
                len(value) if isinstance(value, bytes) else 0)
            if size > self.max_bytes:
                self.findings.add("attribute", blocking(
                    f"value of {size:,} bytes exceeds the attribute limit of "
                    f"{self.max_bytes:,} bytes", **where, field=name, code="attribute_too_large",
                    params={"size": size, "limit": self.max_bytes}))


def _scan_geopackage(path: Path, layer: str, fields: dict,
                     template: _FeatureScan) -> _FeatureScan | None:
    """Check a GeoPackage in batches read with SQLite (catalog.gpkg.read_batches): several
    times faster than fiona's feature-at-a-time loop. None when the file cannot be read this
    way (the caller then uses fiona)."""
    if path.suffix.lower() != ".gpkg":
        return None
    state = _FeatureScan(template.id_field, template.max_bytes, template.rows, repair=False)
    names = list(fields)
    first = 0
    try:
        for geometries, rows in read_batches(path, layer, names):
            state.check_batch(first, geometries, rows, names)
            first += len(rows)
    except (ValueError, sqlite3.Error, shapely.errors.GEOSException):
        return None
    return state


def _change(before, after) -> str:
    if FAMILIES[before.geom_type] == "polygon":
        # Invalid polygons have no meaningful area of their own; compare with the repaired
        # shape's area in the layer's units so a steward can judge the size of the change.
        return f"area {after.area:.6g} (layer units)"
    return f"length {after.length:.6g} (layer units)"


def _type_findings(types: Counter, first: dict[str, int]) -> list[Finding]:
    families = {FAMILIES[t] for t in types if t in FAMILIES}
    described = ", ".join(f"{t} ({n}, first at feature {first[t]})"
                          for t, n in sorted(types.items()))
    if len(families) > 1:
        return [blocking(f"mixed geometry types: {described}. A layer holds one kind of "
                         "geometry: split it into one dataset per kind", code="mixed_geometry",
                         params={"types": described})]
    if len([t for t in types if t in FAMILIES]) > 1:
        return [notice(f"geometry types {described} are stored as the Multi* type",
                       code="stored_as_multi", params={"types": described})]
    return []


def scan_raster(path: Path, max_pixels: int) -> ScanResult:
    """The pipeline's raster checks, per band, plus what the steward should know."""
    info, problems = inspect_raster(path, max_pixels)
    result = ScanResult()
    for problem in problems:
        where: dict = {"file": path.name}
        if " band " in problem.where:
            where["band"] = int(problem.where.rsplit(" band ", 1)[1])
        result.findings.append(blocking(problem.message, **where))
    if info is None:
        return result
    result.facts = {"crs": info.crs or None, "width": info.width, "height": info.height,
                    "bands": info.count, "data_types": list(info.dtypes),
                    "nodata": None if info.nodata is None or math.isnan(info.nodata)
                    else info.nodata}
    if info.crs and not _is_storage_crs(info.crs):
        result.findings.append(notice(f"the grid stays in {info.crs} (rasters are not "
                                      f"resampled); its extent is given in {STORAGE_CRS}",
                                      file=path.name, code="grid_keeps_crs",
                                      params={"crs": info.crs, "target": STORAGE_CRS}))
    if info.nodata is None:
        result.findings.append(notice("declares no nodata value: every pixel counts as data",
                                      file=path.name, code="no_nodata"))
    return result
