"""The Features part of the /ogc OpenAPI document: each vector layer's collection, items,
item, queryables and schema operations, as catalog/features/api.py answers them.

`paths(records, layers)` gives the path items and `tags(records)` the collection tags;
`add_to(document, records, layers)` puts both into a document whose components already hold
the shared parameters and responses (f, lang, bbox, crs, bbox-crs, skipGeometry, offset,
featureId; Collection, Features, Feature, Queryables, InvalidParameter, NotFound; the cql2Json
and exception schemas): catalog/ogc/runtime.py builds the rest from pygeoapi's generator.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from catalog.core.record import Record
from catalog.features.documents import collection_title
from catalog.features.items import CQL2_JSON_MEDIA
from catalog.features.store import LayerDescription

DEFAULT_LANGUAGE = "en"
FILTER_LANGUAGES = ["cql2-text", "cql2-json", "cql-text"]  # cql-text: the pre-1.0 name GDAL uses


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, schema: dict, description: str | None = None) -> dict:
    parameter: dict = {"name": name, "in": "query", "required": False, "style": "form",
                       "explode": False}
    if description is not None:
        parameter["description"] = description
    parameter["schema"] = schema
    return parameter


FORMAT = {
    "name": "f", "in": "query",
    "description": "The optional f parameter indicates the output format which the server "
                   "shall provide as part of the response document.  The default format is "
                   "GeoJSON.",
    "required": False,
    "schema": {"type": "string", "enum": ["json", "html", "jsonld", "csv"], "default": "json"},
    "style": "form", "explode": False,
}
PROFILE = _query("profile", {"type": "string", "enum": ["actual-domain", "valid-domain"]},
                 "The profile to be applied to a given request")
# What the items operation takes beyond pygeoapi's generated parameters (GDAL's OAPIF driver
# sends `-where` as CQL only when `filter-lang` offers cql-text).
ITEMS_PARAMETERS = [
    _query("filter", {"type": "string"},
           "CQL2 filter expression (OGC API - Features - Part 3). Text by default."),
    _query("filter-lang", {"type": "string", "enum": FILTER_LANGUAGES, "default": "cql2-text"},
           "Language of `filter`: cql2-text (default), cql2-json, or cql-text (accepted as "
           "cql2-text)."),
    _query("filter-crs", {"type": "string", "format": "uri"},
           "CRS of geometries in `filter` (default CRS84)."),
    _query("datetime", {"type": "string"},
           "RFC 3339 instant or interval (start/end, `..` for open), tested against the "
           "dataset's temporal extent."),
    _query("q", {"type": "string"},
           "Free text: comma-separated terms, any of which matches a text property "
           "(case-insensitive substring)."),
    _query("sortby", {"type": "array", "items": {"type": "string", "pattern": r"^[+-]?[\w.:-]+$"}},
           "Comma-separated properties, each optionally prefixed with + (ascending) or - "
           "(descending)."),
    _query("resulttype", {"type": "string", "enum": ["results", "hits"], "default": "results"},
           "`hits` returns only numberMatched."),
]
ANSWERS = {"400": _ref("responses", "InvalidParameter"), "404": _ref("responses", "NotFound")}


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("schemas", "exception")}}}


def tags(records: Sequence[Record]) -> list[dict]:
    """One tag per vector layer: its id and description."""
    return [{"name": record.id, "description": _description(record)}
            for record in records if record.is_vector]


def paths(records: Sequence[Record], layers: Mapping[str, LayerDescription],
          limits: Mapping[str, int] | None = None) -> dict[str, dict]:
    """The path items of every vector layer with a layer description in `layers`."""
    limits = limits or {}
    found: dict[str, dict] = {}
    for record in records:
        layer = layers.get(record.id)
        if record.is_vector and layer is not None:
            found.update(_collection_paths(record, layer, limits))
    return found


def add_to(document: dict, records: Sequence[Record],
           layers: Mapping[str, LayerDescription], limits: Mapping[str, int] | None = None
           ) -> dict:
    """`document` with the Features paths and the vector layers' tags (in release order
    among the other collections' tags, after the server's)."""
    document.setdefault("paths", {}).update(paths(records, layers, limits))
    existing = {tag["name"]: tag for tag in document.get("tags", [])}
    ours = {tag["name"]: tag for tag in tags(records)}
    ordered = [existing.get(r.id) or ours.get(r.id) for r in records]
    collections = [tag for tag in ordered if tag is not None]
    names = {tag["name"] for tag in collections}
    rest = [tag for tag in document.get("tags", []) if tag["name"] not in names]
    document["tags"] = rest[:1] + collections + rest[1:]  # the server's tag stays first
    return document


def _description(record: Record) -> str:
    texts = record.manifest.description
    return texts.get(DEFAULT_LANGUAGE) or next(iter(texts.values()))


def _collection_paths(record: Record, layer: LayerDescription,
                      limits: Mapping[str, int]) -> dict[str, dict]:
    key, title = record.id, collection_title(record, DEFAULT_LANGUAGE)
    name = key.capitalize()
    about = {"description": _description(record), "tags": [key]}
    url = f"/collections/{key}"
    properties = _query("properties", {"type": "array",
                                       "items": {"type": "string", "enum": list(layer.fields)}},
                        "The properties that should be included. The parameter value is a "
                        "comma-separated list of property names.")
    default, largest = limits.get("default_items", 10), limits.get("max_items", 10)
    limit = {"name": "limit", "in": "query",
             "description": "The optional limit parameter limits the number of items that are "
                            f"presented in the response document (maximum={largest}, "
                            f"default={default}).",
             "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": largest, "default": default},
             "style": "form", "explode": False}
    items_parameters = [
        copy.deepcopy(FORMAT), _ref("parameters", "lang"), _ref("parameters", "bbox"), limit,
        _ref("parameters", "crs"), _ref("parameters", "bbox-crs"), properties,
        _ref("parameters", "skipGeometry"), _ref("parameters", "offset"),
    ]
    items_parameters += [_query(field, _field_schema(schema))
                         for field, schema in layer.fields.items()]
    named = {p.get("name") for p in items_parameters}
    items_parameters += [copy.deepcopy(p) for p in ITEMS_PARAMETERS if p["name"] not in named]
    descriptions = [_ref("parameters", "f"), _ref("parameters", "lang")]
    return {
        url: {"get": {"summary": f"Get {title} metadata", **about,
                      "operationId": f"describe{name}Collection",
                      "parameters": copy.deepcopy(descriptions),
                      "responses": {"200": _ref("responses", "Collection"), **ANSWERS}}},
        f"{url}/items": {
            "get": {"summary": f"Get {title} items", **about,
                    "operationId": f"get{name}Features", "parameters": items_parameters,
                    "responses": {"200": _ref("responses", "Features"), **ANSWERS}},
            "options": {"summary": f"Options for {title} items", **about,
                        "operationId": f"options{name}Features",
                        "responses": {"200": {"description": "options response"}}},
            "post": {"summary": f"Get {title} items with CQL2", **about,
                     "operationId": f"getCQL2{name}Features",
                     "requestBody": {
                         "description": "Get items with CQL2",
                         "content": {media: {"schema": _ref("schemas", "cql2Json")}
                                     for media in CQL2_JSON_MEDIA},
                         "required": True},
                     "responses": {
                         "200": _ref("responses", "Features"),
                         "400": _ref("responses", "InvalidParameter"),
                         "413": _error("the body is larger than 1 MiB"),
                         "415": _error("the body is not CQL2 JSON "
                                       f"({', '.join(CQL2_JSON_MEDIA)})")}},
        },
        f"{url}/schema": {"get": {"summary": f"Get {title} schema", **about,
                                  "operationId": f"get{name}Schema",
                                  "parameters": copy.deepcopy(descriptions),
                                  "responses": {"200": _ref("responses", "Queryables"),
                                                **ANSWERS}}},
        f"{url}/queryables": {"get": {"summary": f"Get {title} queryables", **about,
                                      "operationId": f"get{name}Queryables",
                                      "parameters": [copy.deepcopy(properties),
                                                     _ref("parameters", "f"),
                                                     copy.deepcopy(PROFILE),
                                                     _ref("parameters", "lang")],
                                      "responses": {"200": _ref("responses", "Queryables"),
                                                    **ANSWERS}}},
        f"{url}/items/{{featureId}}": {
            "get": {"summary": f"Get {title} item by id", **about,
                    "operationId": f"get{name}Feature",
                    "parameters": [_ref("parameters", "featureId"), _ref("parameters", "crs"),
                                   _ref("parameters", "f"), _ref("parameters", "lang")],
                    "responses": {"200": _ref("responses", "Feature"), **ANSWERS}},
            "options": {"summary": f"Options for {title} item by id", **about,
                        "operationId": f"options{name}Feature",
                        "parameters": [_ref("parameters", "featureId")],
                        "responses": {"200": {"description": "options response"},
                                      "404": _ref("responses", "NotFound")}},
        },
    }


def _field_schema(schema: Mapping) -> dict:
    """A property's JSON Schema as a query parameter's schema (no empty format)."""
    found = dict(schema)
    if found.get("format") is None:
        found.pop("format", None)
    return found
