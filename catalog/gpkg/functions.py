"""SQL functions registered on every connection of the library: exact spatial predicates
(shapely, on geometry blobs) and Unicode text folding, as catalog.core.cql2 names them.

- ``gpkg_<op>(blob, wkb)`` for op in the values of `catalog.core.cql2.SPATIAL_OPS`: the exact
  predicate op(feature, literal) between a GeoPackage geometry blob and a WKB literal;
- ``gpkg_lower(text)``: Unicode lower case (SQLite's lower() folds ASCII only);
- ``gpkg_unaccent(text)``: combining marks stripped (CQL2 ACCENTI).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from catalog.core.cql2 import LOWER_SQL, SPATIAL_OPS, UNACCENT_SQL, unaccent
from catalog.gpkg import blob

LOGGER = logging.getLogger(__name__)
PREPARED_LITERALS = 64  # per connection; more distinct literals start the cache afresh


def predicate_sql_name(op: str) -> str:
    """The SQL function testing spatial predicate `op`."""
    return f"gpkg_{op}"


def _prepared_predicate(op: str) -> Callable[[BaseGeometry, BaseGeometry], bool]:
    """op(feature, literal), evaluated with the literal first so GEOS uses its prepared form."""
    literal_first = {
        "intersects": shapely.intersects,
        "disjoint": shapely.disjoint,
        "touches": shapely.touches,
        "within": shapely.contains,  # feature within L  <=>  L contains feature
        "contains": shapely.within,  # feature contains L  <=>  L within feature
    }
    if op in literal_first:
        function = literal_first[op]
        return lambda feature, literal: function(literal, feature)
    function = getattr(shapely, op)
    return lambda feature, literal: function(feature, literal)


def register_functions(conn: sqlite3.Connection) -> None:
    """Register the library's SQL functions on `conn`, as deterministic functions.

    Prepared literals are cached per connection, i.e. per thread: GEOS prepared geometries
    must not be shared between threads.
    """
    literals: dict[bytes, BaseGeometry] = {}

    def literal_geometry(wkb: bytes) -> BaseGeometry:
        geometry = literals.get(wkb)
        if geometry is None:
            if len(literals) > PREPARED_LITERALS:
                literals.clear()
            geometry = shapely.from_wkb(wkb)
            shapely.prepare(geometry)
            literals[wkb] = geometry
        return geometry

    def make(op: str) -> Callable[[bytes | None, bytes | None], int | None]:
        test = _prepared_predicate(op)

        def predicate(data: bytes | None, wkb: bytes | None) -> int | None:
            if data is None or wkb is None:
                return None  # SQL NULL: unknown, like any comparison with NULL
            try:
                feature = blob.decode(data)
            except (ValueError, shapely.errors.GEOSException) as err:
                LOGGER.warning("unreadable geometry blob skipped: %s", err)
                return None
            return int(bool(test(feature, literal_geometry(wkb))))

        return predicate

    for op in SPATIAL_OPS.values():
        conn.create_function(predicate_sql_name(op), 2, make(op), deterministic=True)
    conn.create_function(LOWER_SQL, 1, _text(str.lower), deterministic=True)
    conn.create_function(UNACCENT_SQL, 1, _text(unaccent), deterministic=True)


def _text(function: Callable[[str], str]) -> Callable[[Any], Any]:
    return lambda value: function(value) if isinstance(value, str) else value
