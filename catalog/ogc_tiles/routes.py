"""OGC API - Tiles under /ogc: thin routes over catalog.ogc_tiles.documents and the tile service
the portal uses (catalog.portal.tile_service), for the live version of each collection.

    /ogc/tileMatrixSets[/<id>]
    /ogc/collections/<id>/tiles[/<set>[/<z>/<row>/<col>]]        vector layers, MVT
    /ogc/collections/<id>/map/tiles[/<set>[/<z>/<row>/<col>]]    rasters, PNG in the legend
    /ogc/collections/<id>/styles[/default]                       MapLibre style JSON

Tiles follow the live version and are cached briefly (settings.LATEST_CACHE_CONTROL); the
versioned XYZ URLs under /tiles stay beside them. Errors answer JSON (the app's handler):
404 for what does not exist (collection, set, a tile outside the set, the zooms served or the
tileset's tileMatrixSetLimits), 400 for parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import Blueprint, Response, abort, jsonify, request

from catalog import settings
from catalog.core.record import Record
from catalog.core.webmercator import TileOutOfRange
from catalog.features.negotiate import Negotiated
from catalog.features.release import LiveRelease
from catalog.ogc_tiles import documents, matrix_sets
from catalog.portal import tiles
from catalog.portal.routes import tile_response
from catalog.portal.tile_service import TileService

BLUEPRINT = "ogc_tiles"


class TilesExtension:
    """What the /ogc documents of catalog.features list for these routes."""

    blueprint = BLUEPRINT

    def conformance(self, records: Sequence[Record]) -> list[str]:
        return documents.conformance(records)

    def landing_links(self, base_url: str) -> list[dict]:
        return documents.landing_links(base_url)

    def collection_links(self, record: Record, collection_url: str) -> list[dict]:
        return documents.collection_links(record, collection_url)

    def other_collections(self, asked: Negotiated) -> list[dict]:
        return []  # tilesets belong to the collections listed already


def create_blueprint(live: Callable[[], LiveRelease], base_url: str,
                     tile_service: TileService) -> Blueprint:
    blueprint = Blueprint(BLUEPRINT, __name__, url_prefix="/ogc")

    @blueprint.get("/tileMatrixSets")
    def matrix_set_list():
        _json_only()
        return _json(documents.matrix_set_list(base_url))

    @blueprint.get("/tileMatrixSets/<matrix_set_id>")
    def matrix_set(matrix_set_id: str):
        _json_only()
        return _json(_definition(matrix_set_id))

    @blueprint.get("/collections/<collection_id>/tiles")
    @blueprint.get("/collections/<collection_id>/map/tiles")
    def tileset_list(collection_id: str):
        _json_only()
        return _json(documents.tileset_list(_tiled(live(), collection_id), base_url))

    @blueprint.get("/collections/<collection_id>/tiles/<matrix_set_id>")
    @blueprint.get("/collections/<collection_id>/map/tiles/<matrix_set_id>")
    def tileset(collection_id: str, matrix_set_id: str):
        record = _tiled(live(), collection_id)
        _offered(record, matrix_set_id)
        if _format(("json", "tilejson")) == "tilejson":
            return _json(documents.tilejson(record, base_url, matrix_set_id),
                         documents.TILEJSON_MEDIA_TYPE)
        return _json(documents.tileset(record, base_url, matrix_set_id))

    @blueprint.get("/collections/<collection_id>/tiles/<matrix_set_id>/<int:z>/<int:row>/"
                   "<int:col>")
    @blueprint.get("/collections/<collection_id>/map/tiles/<matrix_set_id>/<int:z>/<int:row>/"
                   "<int:col>")
    def tile(collection_id: str, matrix_set_id: str, z: int, row: int, col: int):
        record = _tiled(live(), collection_id)
        _offered(record, matrix_set_id)
        _format(("mvt",) if record.is_vector else ("png",))
        try:
            placed = matrix_sets.place(matrix_set_id, z, row, col,
                                       documents.max_zoom(record, matrix_set_id))
        except TileOutOfRange as err:
            abort(404, description=str(err))
        # OGC API - Tiles answers 404 beyond the tileset's tileMatrixSetLimits.
        if not matrix_sets.level_limits(matrix_set_id, tuple(record.bbox), z).contain(row, col):
            abort(404, description=f"tile {z}/{row}/{col} is outside the tileMatrixSetLimits "
                                   f"of {record.id} in {matrix_set_id} (see its tileset)")
        if record.is_vector:
            answer = tile_service.vector(record, placed)
            return tile_response(answer, b"", documents.MVT_MEDIA_TYPE,
                                 settings.LATEST_CACHE_CONTROL)
        if matrix_set_id == matrix_sets.WEB_MERCATOR:
            answer = tile_service.raster(record, "values", placed)
        else:
            answer = tile_service.raster_on_grid(record, matrix_set_id, placed)
        return tile_response(answer, tiles.empty_png(), documents.PNG_MEDIA_TYPE,
                             settings.LATEST_CACHE_CONTROL)

    @blueprint.get("/collections/<collection_id>/styles")
    def style_list(collection_id: str):
        _json_only()
        return _json(documents.style_list(_record(live(), collection_id), base_url))

    @blueprint.get("/collections/<collection_id>/styles/<style_id>")
    def style(collection_id: str, style_id: str):
        release = live()
        record = _record(release, collection_id)
        _format(("mapbox", "json"))
        if style_id != documents.DEFAULT_STYLE:
            abort(404, description=f"{collection_id} has no style {style_id!r}; its styles are "
                                   f"[{documents.DEFAULT_STYLE!r}]")
        return _json(documents.style(record, release.records, base_url),
                     documents.STYLE_MEDIA_TYPE)

    return blueprint


def _definition(matrix_set_id: str) -> dict:
    try:
        return matrix_sets.definition(matrix_set_id)
    except matrix_sets.UnknownMatrixSet as err:
        abort(404, description=str(err))


def _record(release: LiveRelease, collection_id: str) -> Record:
    record = release.record(collection_id)
    if record is None:
        abort(404, description=f"no collection {collection_id!r}")
    return record


def _tiled(release: LiveRelease, collection_id: str) -> Record:
    """The record, asked for under its own kind of tiles: vector (tiles) or map (map/tiles)."""
    record = _record(release, collection_id)
    asked_map = request.path.startswith(f"/ogc/collections/{collection_id}/map/")
    if asked_map == record.is_vector:
        path = documents.tiles_path(record)
        abort(404, description=f"{collection_id} is a {record.kind} collection: its tilesets "
                               f"are at /ogc/collections/{collection_id}/{path}")
    return record


def _offered(record: Record, matrix_set_id: str) -> None:
    offered = documents.offered_sets(record)
    if matrix_set_id not in offered:
        abort(404, description=f"{record.id} has no tileset in tile matrix set "
                               f"{matrix_set_id!r}; it has {list(offered)}")


def _format(allowed: tuple[str, ...]) -> str:
    """The `f` asked for (the first allowed by default); any other parameter is 400."""
    unknown = sorted(set(request.args) - {"f"})
    if unknown:
        abort(400, description=f"unknown query parameter(s) {unknown}; allowed: ['f']")
    asked = request.args.get("f", allowed[0])
    if asked not in allowed:
        abort(400, description=f"f: expected one of {list(allowed)}, got {asked!r}")
    return asked


def _json_only() -> None:
    _format(("json",))


def _json(document: dict, media_type: str = documents.JSON_MEDIA_TYPE) -> Response:
    response = jsonify(document)
    response.mimetype = media_type
    response.headers["Cache-Control"] = settings.LATEST_CACHE_CONTROL
    return response
