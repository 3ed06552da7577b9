"""Complete pygeoapi's OpenAPI document with what the server really accepts.

Clients read the OpenAPI document to learn what they can ask for. GDAL's OAPIF driver
(3.6) sends `-where` to the server as CQL only when the items operation lists a `filter-lang`
parameter offering `cql-text`; otherwise it downloads the whole layer and filters locally.
pygeoapi lists neither `filter` nor `filter-lang`, and its `sortby` parameter is a reference to
a document on GitHub that offline clients cannot resolve.
"""

from __future__ import annotations

FILTER_LANGUAGES = ["cql2-text", "cql2-json", "cql-text"]  # cql-text: the pre-1.0 name GDAL uses

ITEMS_PARAMETERS = [
    {"name": "filter", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "CQL2 filter expression (OGC API - Features - Part 3). Text by default.",
     "schema": {"type": "string"}},
    {"name": "filter-lang", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Language of `filter`: cql2-text (default), cql2-json, or cql-text "
                    "(accepted as cql2-text).",
     "schema": {"type": "string", "enum": FILTER_LANGUAGES, "default": "cql2-text"}},
    {"name": "filter-crs", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "CRS of geometries in `filter` (default CRS84).",
     "schema": {"type": "string", "format": "uri"}},
    {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "RFC 3339 instant or interval (start/end, `..` for open), tested against "
                    "the dataset's temporal extent.",
     "schema": {"type": "string"}},
    {"name": "q", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Free text: comma-separated terms, any of which matches a text property "
                    "(case-insensitive substring).",
     "schema": {"type": "string"}},
    {"name": "sortby", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Comma-separated properties, each optionally prefixed with + (ascending) "
                    "or - (descending).",
     "schema": {"type": "array", "items": {"type": "string", "pattern": r"^[+-]?[\w.:-]+$"}}},
    {"name": "resulttype", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "`hits` returns only numberMatched.",
     "schema": {"type": "string", "enum": ["results", "hits"], "default": "results"}},
]


def complete_openapi(document: dict, feature_collections: list[str]) -> dict:
    """Add the items parameters pygeoapi leaves out, for each feature collection."""
    for collection_id in feature_collections:
        operation = document.get("paths", {}).get(f"/collections/{collection_id}/items", {})
        get = operation.get("get")
        if get is None:
            continue
        parameters = [p for p in get.get("parameters", []) if not _is_external_sortby(p)]
        present = {p.get("name") for p in parameters}
        parameters += [p for p in ITEMS_PARAMETERS if p["name"] not in present]
        get["parameters"] = parameters
    return document


def _is_external_sortby(parameter: dict) -> bool:
    reference = parameter.get("$ref", "")
    return reference.startswith("http") and reference.endswith("sortby.yaml")
