"""The OpenAPI 3.0 description of the STAC API (linked from the landing page as service-desc)."""

from __future__ import annotations

from catalog import __version__
from catalog.core.languages import listed
from catalog.http_policy import with_transport_refusals

ERROR = {"description": "a parameter or the body is unknown or malformed; the JSON message "
                        "names it",
         "content": {"application/json": {"schema": {
             "type": "object", "required": ["code", "description"],
             "properties": {"code": {"type": "string"}, "description": {"type": "string"},
                            "status": {"type": "integer"}}}}}}


def _param(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def document(root: str, max_limit: int) -> dict:
    """A compact OpenAPI document: every path, every query parameter and its limits."""
    search_params = [
        _param("bbox", "west,south,east,north in WGS84 (antimeridian boxes are refused)"),
        _param("intersects", "a GeoJSON geometry (JSON text)"),
        _param("datetime", "RFC 3339 instant, or interval start/end with '..' open ends"),
        _param("ids", "comma-separated item ids"),
        _param("collections", "comma-separated collection ids"),
        _param("limit", f"items per page, 1 to {max_limit} (larger values are lowered to it)",
               {"type": "integer", "minimum": 1, "maximum": max_limit, "default": 10}),
        _param("filter", "CQL2 filter (text or JSON, see filter-lang)"),
        _param("filter-lang", "cql2-text (GET default) or cql2-json",
               {"type": "string", "enum": ["cql2-text", "cql2-json"]}),
        _param("filter-crs", "only http://www.opengis.net/def/crs/OGC/1.3/CRS84"),
        _param("sortby", "comma-separated fields, '-' for descending: -properties.datetime"),
        _param("fields", "comma-separated fields to include, '-' prefix to exclude"),
        _param("q", f"free text over titles, descriptions and keywords ({listed()}); "
                    "comma-separated terms are OR-ed"),
        _param("token", "page token from a next link"),
    ]
    items_params = [p for p in search_params
                    if p["name"] not in ("collections", "ids", "intersects")]
    collection_params = [p for p in search_params if p["name"] in ("bbox", "datetime", "q",
                                                                   "limit", "token")]
    collection_params.append(_param("theme", "comma-separated themes: land, infrastructure, "
                                             "coverage"))
    collection_id = {"name": "collectionId", "in": "path", "required": True,
                     "schema": {"type": "string"}}
    item_id = {"name": "itemId", "in": "path", "required": True, "schema": {"type": "string"}}
    geojson = {"200": {"description": "GeoJSON",
                       "content": {"application/geo+json": {"schema": {"type": "object"}}}},
               "400": ERROR}
    plain = {"200": {"description": "JSON",
                     "content": {"application/json": {"schema": {"type": "object"}}}},
             "400": ERROR}
    schema = {"200": {"description": "JSON Schema of the queryable properties",
                      "content": {"application/schema+json": {"schema": {"type": "object"}}}},
              "400": ERROR}
    in_collection = {"404": {**ERROR, "description": "no such collection (or item)"}}
    post = {**geojson, "413": {**ERROR, "description": "the body is larger than 1 MiB"}}
    return with_transport_refusals({
        "openapi": "3.0.3",
        "info": {"title": "Taza Koom STAC API", "version": __version__},
        "servers": [{"url": root}],
        "paths": {
            "/": {"get": {"summary": "Landing page", "responses": plain}},
            "/conformance": {"get": {"summary": "Conformance classes", "responses": plain}},
            "/queryables": {"get": {"summary": "Queryables", "responses": schema}},
            "/collections": {"get": {"summary": "Collections (collection search)",
                                     "parameters": collection_params, "responses": plain}},
            "/collections/{collectionId}": {"get": {
                "summary": "A collection", "parameters": [collection_id],
                "responses": {**plain, **in_collection}}},
            "/collections/{collectionId}/queryables": {"get": {
                "summary": "Queryables of a collection", "parameters": [collection_id],
                "responses": {**schema, **in_collection}}},
            "/collections/{collectionId}/items": {"get": {
                "summary": "Items of a collection", "parameters": [collection_id, *items_params],
                "responses": {**geojson, **in_collection}}},
            "/collections/{collectionId}/items/{itemId}": {"get": {
                "summary": "An item", "parameters": [collection_id, item_id],
                "responses": {**geojson, **in_collection}}},
            "/search": {
                "get": {"summary": "Item search", "parameters": search_params,
                        "responses": geojson},
                "post": {"summary": "Item search (JSON body with the same fields)",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"type": "object"}}}},
                         "responses": post},
            },
        },
    })
