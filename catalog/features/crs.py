"""OGC API - Features Part 2: items in another CRS (`crs`), boxes in another CRS (`bbox-crs`)
and filter geometries in another CRS (`filter-crs`).

Layers are stored in CRS84 (longitude, latitude). A CRS is named by its OGC URI
(catalog.core.parse.parse_crs); axis order follows the CRS's definition (EPSG:4326 is
latitude, longitude), as Part 2 requires. Transformers are built once per pair of CRSs.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import shapely
from pygeofilter import ast, values
from pyproj import CRS, Transformer
from shapely.geometry import mapping, shape

from catalog.core.parse import CrsError, CrsRules, parse_crs
from catalog.features.store import CRS84

CRS_RULES = CrsRules()  # OGC CRS URIs only: CRS84 or EPSG, http or https


def not_supported(uri: str, supported: Sequence[str]) -> str:
    return (f"CRS {uri!r} not supported for this collection. List of supported CRSs: "
            f"{', '.join(supported)}.")


@functools.lru_cache(maxsize=64)
def pyproj_crs(uri: str) -> CRS:
    """The CRS an OGC URI names; CrsError when it is not one PROJ knows."""
    return parse_crs(uri, "crs", CRS_RULES).to_pyproj()


@functools.lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer | None:
    """None when both URIs name the same CRS (with the same axis order)."""
    source_crs, target_crs = pyproj_crs(source), pyproj_crs(target)
    if source_crs == target_crs:
        return None
    return Transformer.from_crs(source_crs, target_crs)


def transform_bbox(bbox: Sequence[float], source: str, target: str = CRS84) -> list[float]:
    """A box's two corners in the target CRS (4 or 6 numbers, as given)."""
    if source == target:
        return list(bbox)
    transformer = _transformer(source, target)
    if transformer is None:
        return list(bbox)
    half = len(bbox) // 2
    return [*transformer.transform(*bbox[:half]), *transformer.transform(*bbox[half:])]


def output_transformer(uri: str | None, storage: str = CRS84) -> Transformer | None:
    """What turns stored coordinates into the asked CRS; None when nothing needs doing."""
    if not uri:
        return None
    return _transformer(storage, uri)


def transform_features(features: list[dict], transformer: Transformer | None) -> None:
    """Each feature's GeoJSON geometry in the transformer's target CRS, in place."""
    if transformer is None:
        return
    for feature in features:
        geometry = feature.get("geometry")
        if geometry is not None:
            feature["geometry"] = mapping(_transform(shape(geometry), transformer))


def _transform(geometry: shapely.Geometry, transformer: Transformer) -> shapely.Geometry:
    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(*coords.T))
    return shapely.transform(geometry, project, include_z=shapely.has_z(geometry))


def filter_in_storage_crs(tree: Any, filter_crs: str, storage: str = CRS84) -> Any:
    """The CQL2 tree with its geometry literals moved from `filter_crs` (or the CRS an EWKT
    literal names) into the storage CRS; CrsError when a CRS is unknown. The tree itself when
    nothing moves."""
    storage_crs = pyproj_crs(storage)
    default = pyproj_crs(filter_crs)
    literals = list(_geometry_literals(tree))
    if all(_literal_crs(node, default) == storage_crs for node in literals):
        return tree
    tree = copy.deepcopy(tree)
    for node in _geometry_literals(tree):
        source = _literal_crs(node, default)
        if source != storage_crs:
            node.geometry = mapping(_transform(shape(node.geometry),
                                               Transformer.from_crs(source, storage_crs)))
    return tree


def _geometry_literals(node: Any) -> Iterator[values.Geometry]:
    if isinstance(node, values.Geometry):
        yield node
    elif isinstance(node, ast.Node):
        for child in node.get_sub_nodes():
            yield from _geometry_literals(child)


_EWKT_CRS = re.compile(r"(?:urn:ogc:def:crs:EPSG::|EPSG:)([1-9][0-9]{0,8})")


def _literal_crs(node: values.Geometry, default: CRS) -> CRS:
    """The CRS an EWKT literal names (SRID=...; pygeofilter writes it as an EPSG URN), else
    the filter's."""
    named = (node.geometry.get("crs") or {}).get("properties", {}).get("name")
    if named is None:
        return default
    match = _EWKT_CRS.fullmatch(str(named))
    if match is None:
        raise CrsError("filter", f"filter: unknown CRS {named!r}")
    return pyproj_crs(f"http://www.opengis.net/def/crs/EPSG/0/{match[1]}")
