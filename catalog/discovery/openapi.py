"""The OGC API - Records part of the /ogc OpenAPI document: the record collection, its items,
one record, queryables and sortables, as catalog/discovery/routes.py answers them.

`add_to(document, records)` adds the paths and the collection's tag to a document whose
components already hold the shared parameters and responses (lang, offset; InvalidParameter,
NotFound): catalog/ogc/runtime.py builds that from pygeoapi's generator and calls this through
the `openapi_additions` catalog/app.py gives it (catalog.ogc cannot import this floor-mate).
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.core.record import Record
from catalog.discovery import records
from catalog.discovery.routes import DEFAULT_LIMIT, MAX_LIMIT, RECORDS_ROUTE
from catalog.metadata.links import RECORDS_COLLECTION

TAG = {"name": RECORDS_COLLECTION,
       "description": "OGC API - Records: the catalog's datasets as metadata records"}
ANSWERS = {"400": {"$ref": "#/components/responses/InvalidParameter"},
           "404": {"$ref": "#/components/responses/NotFound"}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "style": "form",
            "explode": False, "description": description, "schema": schema}


def _terms(name: str, description: str, enum: Sequence[str] | None = None) -> dict:
    items: dict = {"type": "string", "enum": list(enum)} if enum else {"type": "string"}
    return _query(name, {"type": "array", "items": items}, description)


FORMAT = _query("f", {"type": "string", "enum": ["json", "html"], "default": "json"},
                "json (the default) or html; without it, Accept decides.")
JSON_ONLY = _query("f", {"type": "string", "enum": ["json"], "default": "json"},
                   "json, the only form of this document.")
LANG = {"$ref": "#/components/parameters/lang"}
ITEMS_PARAMETERS = [
    FORMAT, LANG,
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                     "default": DEFAULT_LIMIT}, "Records per page."),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": (1 << 31) - 1,
                      "default": 0}, "Records skipped before the page."),
    _terms("q", "Free text: comma-separated terms, any of which is a case- and "
                "accent-insensitive substring of a title, description or keyword in any "
                "language."),
    _query("bbox", {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
           "minx,miny,maxx,maxy in WGS84 longitude and latitude: records whose extent meets it."),
    _query("datetime", {"type": "string"},
           "RFC 3339 instant or interval (start/end, `..` for open), tested against the "
           "dataset's temporal extent."),
    _terms("theme", "The catalog's themes (config/themes.yaml), any of them."),
    _terms("keywords", "Whole keywords in any language, any of them."),
    _terms("ids", "Record ids, any of them."),
    _terms("type", "Record types, any of them.", ["dataset"]),
    _query("sortby", {"type": "array", "items": {
        "type": "string", "enum": [f"{sign}{name}" for name in records.SORTABLES
                                   for sign in ("", "+", "-")]}},
           "Comma-separated sortables, each optionally prefixed with + (ascending) or - "
           "(descending)."),
    _query("filter", {"type": "string"},
           "CQL2 filter over the queryables (text by default)."),
    _query("filter-lang", {"type": "string", "enum": ["cql2-text", "cql2-json"],
                           "default": "cql2-text"},
           "Language of `filter`; only with `filter`."),
]


def _json(description: str, *media_types: str) -> dict:
    return {"description": description,
            "content": {media: {"schema": {"type": "object"}} for media in media_types}}


def paths() -> dict[str, dict]:
    """The Records path items, relative to /ogc."""
    url = RECORDS_ROUTE.removeprefix("/ogc")
    tags = [RECORDS_COLLECTION]
    describe = [FORMAT, LANG]
    return {
        url: {"get": {
            "summary": "The catalog's record collection", "tags": tags,
            "operationId": "describeRecordCollection", "parameters": describe,
            "responses": {"200": _json("The record collection", "application/json",
                                       "text/html"), **ANSWERS}}},
        f"{url}/items": {"get": {
            "summary": "Search the catalog's records", "tags": tags,
            "operationId": "getRecords", "parameters": ITEMS_PARAMETERS,
            "responses": {"200": _json("A page of records (GeoJSON)", "application/geo+json",
                                       "text/html"), **ANSWERS}}},
        f"{url}/items/{{recordId}}": {"get": {
            "summary": "One record", "tags": tags, "operationId": "getRecord",
            "parameters": [{"name": "recordId", "in": "path", "required": True,
                            "description": "The dataset's id", "schema": {"type": "string"}},
                           FORMAT, LANG],
            "responses": {"200": _json("The record (GeoJSON)", "application/geo+json",
                                       "text/html"), **ANSWERS}}},
        f"{url}/queryables": {"get": {
            "summary": "Queryable properties of the records", "tags": tags,
            "operationId": "getRecordQueryables", "parameters": [JSON_ONLY, LANG],
            "responses": {"200": _json("JSON Schema", "application/schema+json"),
                          **ANSWERS}}},
        f"{url}/sortables": {"get": {
            "summary": "Sortable properties of the records", "tags": tags,
            "operationId": "getRecordSortables", "parameters": [JSON_ONLY, LANG],
            "responses": {"200": _json("JSON Schema", "application/schema+json"),
                          **ANSWERS}}},
    }


def add_to(document: dict, live_records: Sequence[Record]) -> dict:
    """`document` with the Records paths and tag, once something is published (as
    /ogc/collections lists the record collection)."""
    if live_records:
        document.setdefault("paths", {}).update(paths())
        document.setdefault("tags", []).append(dict(TAG))
    return document
