"""The JSON documents of OGC API - Tiles under /ogc: the tile matrix sets, each collection's
tileset lists and tileset metadata (TMS 2.0), TileJSON 3.0 and a MapLibre style per layer.

Plain functions of a live record and the service's URL. Tile URLs here follow the live
version (`/ogc/collections/<id>/...`), so a saved client connection survives a republish.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.core.record import Record
from catalog.features import MVT_MAX_ZOOM
from catalog.features.documents import OGC_REL, collection_title
from catalog.features.store import CRS84
from catalog.ogc_tiles import matrix_sets
from catalog.portal import layers

TILES_CONF = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
# What the routes pass (tests/test_ogc_tiles.py): no dataset tilesets, no selection of
# collections, no OpenAPI description of the tile paths.
COMMON_CLASSES = [f"{TILES_CONF}/{name}" for name in (
    "core", "tileset", "tilesets-list", "geodata-tilesets")]
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
PNG_MEDIA_TYPE = "image/png"
JSON_MEDIA_TYPE = "application/json"
TILEJSON_MEDIA_TYPE = "application/vnd.mapbox.tile+json"
STYLE_MEDIA_TYPE = "application/vnd.mapbox.style+json"
DEFAULT_STYLE = "default"
TEMPLATE = "{tileMatrix}/{tileRow}/{tileCol}"


def conformance(records: Sequence[Record]) -> list[str]:
    classes = list(COMMON_CLASSES) if records else []
    if any(r.is_vector for r in records):
        classes.append(f"{TILES_CONF}/mvt")
    if any(not r.is_vector for r in records):
        classes.append(f"{TILES_CONF}/png")
    return classes


def landing_links(base_url: str) -> list[dict]:
    return [{"rel": f"{OGC_REL}/tiling-schemes", "type": JSON_MEDIA_TYPE,
             "title": "Tile matrix sets", "href": f"{base_url}/tileMatrixSets"}]


def tiles_path(record: Record) -> str:
    """Where a collection's tilesets are: vector tiles, or map tiles of a raster."""
    return "tiles" if record.is_vector else "map/tiles"


def offered_sets(record: Record) -> tuple[str, ...]:
    return matrix_sets.VECTOR_SETS if record.is_vector else matrix_sets.MAP_SETS


def max_zoom(record: Record, matrix_set_id: str) -> int:
    return MVT_MAX_ZOOM if record.is_vector else matrix_sets.MAX_ZOOM[matrix_set_id]


def collection_links(record: Record, collection_url: str) -> list[dict]:
    kind = "vector" if record.is_vector else "map"
    return [
        {"rel": f"{OGC_REL}/tilesets-{kind}", "type": JSON_MEDIA_TYPE,
         "title": f"The {kind} tilesets of this collection",
         "href": f"{collection_url}/{tiles_path(record)}"},
        {"rel": f"{OGC_REL}/styles", "type": JSON_MEDIA_TYPE,
         "title": "The styles of this collection", "href": f"{collection_url}/styles"},
    ]


def matrix_set_list(base_url: str) -> dict:
    entries = []
    for matrix_set_id in matrix_sets.MAX_ZOOM:
        tms = matrix_sets.matrix_set(matrix_set_id)
        entries.append({
            "id": matrix_set_id, "title": tms.title, "uri": str(tms.uri),
            "crs": tms.crs.srs,
            "links": [{"rel": "self", "type": JSON_MEDIA_TYPE,
                       "title": f"The {matrix_set_id} tile matrix set",
                       "href": f"{base_url}/tileMatrixSets/{matrix_set_id}"}],
        })
    return {"tileMatrixSets": entries,
            "links": [{"rel": "self", "type": JSON_MEDIA_TYPE, "title": "This document",
                       "href": f"{base_url}/tileMatrixSets"}]}


def tileset_list(record: Record, base_url: str) -> dict:
    url = f"{base_url}/collections/{record.id}/{tiles_path(record)}"
    return {
        "tilesets": [_tileset_summary(record, base_url, url, m) for m in offered_sets(record)],
        "links": [{"rel": "self", "type": JSON_MEDIA_TYPE, "title": "This document",
                   "href": url}],
    }


def _tileset_summary(record: Record, base_url: str, url: str, matrix_set_id: str) -> dict:
    tms = matrix_sets.matrix_set(matrix_set_id)
    return {
        "title": f"{collection_title(record, 'en')} ({matrix_set_id})",
        "dataType": "vector" if record.is_vector else "map",
        "crs": tms.crs.srs,
        "tileMatrixSetURI": str(tms.uri),
        "links": [
            {"rel": "self", "type": JSON_MEDIA_TYPE, "title": "The tileset",
             "href": f"{url}/{matrix_set_id}"},
            {"rel": f"{OGC_REL}/tiling-scheme", "type": JSON_MEDIA_TYPE,
             "title": f"The {matrix_set_id} tile matrix set",
             "href": f"{base_url}/tileMatrixSets/{matrix_set_id}"},
        ],
    }


def tileset(record: Record, base_url: str, matrix_set_id: str) -> dict:
    """The tileset metadata (TMS 2.0 TileSetMetadata): limits, tile template, layer."""
    collection_url = f"{base_url}/collections/{record.id}"
    url = f"{collection_url}/{tiles_path(record)}/{matrix_set_id}"
    zoom = max_zoom(record, matrix_set_id)
    document = _tileset_summary(record, base_url, url.rsplit("/", 1)[0], matrix_set_id)
    west, south, east, north = record.bbox
    document.update({
        "description": f"Tiles of the live version of {record.id}; the tile URLs follow "
                       "new versions.",
        "tileMatrixSetLimits": [limit.as_json() for limit in
                                matrix_sets.limits(matrix_set_id, tuple(record.bbox), zoom)],
        "boundingBox": {"lowerLeft": [west, south], "upperRight": [east, north],
                        "crs": CRS84},
    })
    media = MVT_MEDIA_TYPE if record.is_vector else PNG_MEDIA_TYPE
    document["links"] += [
        {"rel": "item", "type": media, "title": "A tile of this tileset", "templated": True,
         "href": f"{url}/{TEMPLATE}"},
        {"rel": f"{OGC_REL}/geodata", "type": JSON_MEDIA_TYPE, "title": "The collection",
         "href": collection_url},
        {"rel": "alternate", "type": TILEJSON_MEDIA_TYPE, "title": "This tileset as TileJSON",
         "href": f"{url}?f=tilejson"},
        {"rel": "describedby", "type": STYLE_MEDIA_TYPE, "title": "A MapLibre style",
         "href": f"{collection_url}/styles/{DEFAULT_STYLE}"},
    ]
    if record.is_vector:
        document["layers"] = [{
            "id": record.id, "dataType": "vector",
            "geometryDimension": _dimension(record.vector.geometry_type),
            "minTileMatrix": "0", "maxTileMatrix": str(zoom),
            "propertiesSchema": {"type": "object", "properties": {
                name: {"type": _json_type(kind)} for name, kind in record.vector.fields.items()
            }},
        }]
    return document


def tilejson(record: Record, base_url: str, matrix_set_id: str) -> dict:
    """TileJSON 3.0.0 of the tileset ({z}/{y}/{x} in the OGC path order)."""
    url = f"{base_url}/collections/{record.id}/{tiles_path(record)}/{matrix_set_id}"
    west, south, east, north = record.bbox
    zoom = max_zoom(record, matrix_set_id)
    document = {
        "tilejson": "3.0.0",
        "name": collection_title(record, "en"),
        "attribution": record.manifest.attribution or "",
        "scheme": "xyz",
        "tiles": [f"{url}/{{z}}/{{y}}/{{x}}"],
        "minzoom": 0, "maxzoom": zoom,
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2, min(6, zoom)],
    }
    if record.is_vector:
        document["vector_layers"] = [{"id": record.id, "minzoom": 0, "maxzoom": zoom,
                                      "fields": dict(record.vector.fields)}]
    return document


def style(record: Record, records: Sequence[Record], base_url: str) -> dict:
    """A MapLibre style (version 8) drawing the layer as the portal's map does, from the
    WebMercatorQuad TileJSON (the portal's colours, catalog/portal/layers.py)."""
    entry = next(e for e in layers.map_layers(list(records)) if e["id"] == record.id)
    tiles_url = (f"{base_url}/collections/{record.id}/{tiles_path(record)}/"
                 f"{matrix_sets.WEB_MERCATOR}?f=tilejson")
    source = {"type": "vector" if record.is_vector else "raster", "url": tiles_url}
    if not record.is_vector:
        source["tileSize"] = 256
    return {"version": 8, "name": collection_title(record, "en"),
            "sources": {record.id: source}, "layers": _style_layers(record, entry)}


def style_list(record: Record, base_url: str) -> dict:
    url = f"{base_url}/collections/{record.id}/styles"
    return {"styles": [{"id": DEFAULT_STYLE, "title": "As on the portal's map", "links": [
        {"rel": "stylesheet", "type": STYLE_MEDIA_TYPE, "title": "MapLibre style",
         "href": f"{url}/{DEFAULT_STYLE}"}]}],
        "links": [{"rel": "self", "type": JSON_MEDIA_TYPE, "title": "This document",
                   "href": url}]}


def _style_layers(record: Record, entry: dict) -> list[dict]:
    if not record.is_vector:
        return [{"id": record.id, "type": "raster", "source": record.id}]
    colour = _colour(entry["legend"])
    common = {"source": record.id, "source-layer": record.id}
    dimension = _dimension(record.vector.geometry_type)
    if dimension == 0:
        return [{"id": record.id, "type": "circle", **common,
                 "paint": {"circle-radius": 4, "circle-color": colour,
                           "circle-stroke-color": "#ffffff", "circle-stroke-width": 1}}]
    if dimension == 1:
        return [{"id": record.id, "type": "line", **common,
                 "paint": {"line-color": colour, "line-width": 1.5}}]
    return [{"id": f"{record.id}-fill", "type": "fill", **common,
             "paint": {"fill-color": colour, "fill-opacity": 0.35}},
            {"id": f"{record.id}-outline", "type": "line", **common,
             "paint": {"line-color": colour, "line-width": 1}}]


def _colour(legend: dict) -> str | list:
    """The legend's colour, or a `match` expression over its category property."""
    if legend["type"] != "category":
        return legend["colour"]
    pairs = [value for category, colour in legend["colours"].items()
             for value in (category, colour)]
    if not pairs:
        return legend["other"]
    return ["match", ["to-string", ["get", legend["property"]]], *pairs, legend["other"]]


def _dimension(geometry_type: str) -> int:
    name = geometry_type.removeprefix("Multi").removeprefix("3D ").removeprefix("Multi")
    return {"Point": 0, "LineString": 1}.get(name, 2)


def _json_type(fiona_type: str) -> str:
    kind = fiona_type.split(":", 1)[0]
    return {"int": "integer", "int32": "integer", "int64": "integer", "float": "number",
            "bool": "boolean"}.get(kind, "string")
