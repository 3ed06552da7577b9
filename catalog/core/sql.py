"""Small SQLite facts shared by the CQL2 translator and the GeoPackage library."""

from __future__ import annotations

# SQLite integers are 64-bit: binding a larger Python int raises OverflowError.
SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1


def quote_ident(name: str) -> str:
    """Quote an SQL identifier. Only for names read from a table's own metadata (or fixed
    names of our own), never for request text: values always travel as `?` parameters."""
    return '"' + name.replace('"', '""') + '"'
