"""The investor portal: the map page at /, dataset pages, map tiles, and the stewards' pages.

Thin adapters: pages are rendered from the live release's records (catalog.portal.layers and
catalog.portal.dataset_page), raster tiles by catalog.portal.tiles, vector tiles by the
layer's FeatureStore (catalog.features).
"""

from __future__ import annotations

import re
from http import HTTPStatus

import rasterio
from flask import Blueprint, Response, abort, jsonify, render_template, request

from catalog import __version__, settings
from catalog.core.languages import FALLBACK_LANGUAGE
from catalog.core.record import Record
from catalog.features import MVT_MAX_ZOOM, LiveFeatures
from catalog.manifest import form_schema
from catalog.portal import clip, dataset_page, i18n, layers, tiles
from catalog.portal.tile_service import RASTER_STYLES, TileService
from catalog.sources.findings import finding_texts
from catalog.store import CatalogStore

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


def create_blueprint(store: CatalogStore, public_url: str,
                     features: LiveFeatures | None = None,
                     tile_service: TileService | None = None) -> Blueprint:
    portal = Blueprint("portal", __name__)
    tile_service = tile_service or TileService(store, features or LiveFeatures(store))

    @portal.context_processor
    def languages() -> dict:
        """Every page's language switch (templates/portal/base.html)."""
        return {"languages": i18n.LANGUAGES}

    @portal.get("/")
    def index():
        language = _page_language()
        records = store.current_records()
        data = {
            "language": language,
            "languages": i18n.LANGUAGES,
            "strings": i18n.strings(),
            "themes": settings.themes(),
            "layers": layers.map_layers(records),
            "basemap": layers.basemap(records),
            "publicUrl": public_url,
            "clipRegions": dataset_page.clip_regions(store, language),
        }
        return render_template("portal/index.html", data=data, language=language,
                               t=i18n.translator(language), version=__version__)

    @portal.get("/datasets/<dataset_id>")
    def dataset(dataset_id: str):
        language = _page_language()
        page = dataset_page.build(store, dataset_id, language, public_url)
        if page is None:
            abort(404, description=f"no published dataset {dataset_id!r}")
        # the strings the page's script needs: month names and the date pattern (dates.js)
        data = {"language": language, "strings": {
            key: texts for key, texts in i18n.strings().items()
            if key.startswith(("month.", "date.", "clip.", "problem.clip_"))}}
        return render_template("portal/dataset.html", page=page, language=language, data=data,
                               t=i18n.translator(language), version=__version__)

    @portal.get("/stewards")
    def stewards():
        return _stewards_page("st")

    @portal.get("/review")
    def review():
        return _stewards_page("rv")

    def _stewards_page(page_key: str):
        language = _page_language()
        # The form is built from the checker's own constants (catalog.manifest.form_schema).
        data = {"language": language, "strings": i18n.strings(),
                "manifestSchema": form_schema(), "themes": settings.themes(),
                "basemap": layers.basemap(store.current_records()),  # under map previews
                "findingTexts": finding_texts()}
        return render_template("portal/stewards.html", page_key=page_key, data=data,
                               language=language, t=i18n.translator(language),
                               version=__version__)

    @portal.get("/tiles/<dataset_id>/<int:version>/<style>/<int:z>/<int:x>/<int:y>.png")
    def raster_tile(dataset_id: str, version: int, style: str, z: int, x: int, y: int):
        record = _released(store, dataset_id, version, "raster")
        return _raster_tile(record, style, z, x, y, settings.VERSION_CACHE_CONTROL)

    @portal.get("/tiles/<dataset_id>/latest/<style>/<int:z>/<int:x>/<int:y>.png")
    def latest_raster_tile(dataset_id: str, style: str, z: int, x: int, y: int):
        record = _released(store, dataset_id, _live(store, dataset_id), "raster")
        return _raster_tile(record, style, z, x, y, settings.LATEST_CACHE_CONTROL)

    def _raster_tile(record: Record, style: str, z: int, x: int, y: int, caching: str):
        _no_parameters()
        band = _style_band(record, style)
        answer = tile_service.raster(record, style, _tile(z, x, y, tiles.MAX_ZOOM), band)
        return tile_response(answer, tiles.empty_png(), "image/png", caching)

    @portal.get("/tiles/<dataset_id>/<int:version>/<int:z>/<int:x>/<int:y>.mvt")
    def vector_tile(dataset_id: str, version: int, z: int, x: int, y: int):
        record = _released(store, dataset_id, version, "vector")
        return _vector_tile(record, z, x, y, settings.VERSION_CACHE_CONTROL)

    @portal.get("/tiles/<dataset_id>/latest/<int:z>/<int:x>/<int:y>.mvt")
    def latest_vector_tile(dataset_id: str, z: int, x: int, y: int):
        record = _released(store, dataset_id, _live(store, dataset_id), "vector")
        return _vector_tile(record, z, x, y, settings.LATEST_CACHE_CONTROL)

    def _vector_tile(record: Record, z: int, x: int, y: int, caching: str):
        _no_parameters()
        answer = tile_service.vector(record, _tile(z, x, y, MVT_MAX_ZOOM))
        return tile_response(answer, b"", MVT_MEDIA_TYPE, caching)

    @portal.get("/portal/value/<dataset_id>")
    def raster_value(dataset_id: str):
        """The value of a raster dataset at one point (for the map's popups)."""
        _only_parameters("lon", "lat")
        release = store.current()
        if release is None or dataset_id not in release.datasets:
            abort(404, description=f"no published dataset {dataset_id!r}")
        record = _released(store, dataset_id, release.datasets[dataset_id], "raster")
        lon, lat = _coordinate("lon", -180, 180), _coordinate("lat", -90, 90)
        path = store.assets.gdal_path(record, record.coverage.asset)
        value = _sample(path, lon, lat)
        answer = {"dataset": dataset_id, "version": record.version, "lon": lon, "lat": lat,
                  "value": value, "unit": record.coverage.bands[0].unit}
        if classes := layers.raster_classes(record):
            answer["class"] = _class_of(classes, value)
        if len(steps := layers.time_steps(record)) > 1:  # every step's value, in time order
            answer["steps"] = [{"id": step["id"], "value": _sample(path, lon, lat, step["band"])}
                               for step in steps]
        return jsonify(answer)

    @portal.get("/portal/clip/<dataset_id>/estimate")
    def raster_clip_estimate(dataset_id: str):
        """How large a clip would be (an estimate), before downloading it."""
        _, _, clip_plan, file_name = _clip_request(dataset_id)
        return jsonify({"dataset": dataset_id, "file": file_name, **clip_plan.estimate()})

    @portal.get("/portal/clip/<dataset_id>")
    def raster_clip(dataset_id: str):
        """One band of a live raster cut to a region (outside its polygon: nodata) or a box,
        as a COG named after what it holds."""
        record, area, clip_plan, file_name = _clip_request(dataset_id)
        path = store.assets.gdal_path(record, record.coverage.asset)
        data = clip.clip_cog(path, area, clip.checked(clip_plan),
                             bool(layers.raster_classes(record)))
        return Response(data, mimetype="image/tiff; application=geotiff; "
                                       "profile=cloud-optimized",
                        headers={"Content-Disposition": f'attachment; filename="{file_name}"'})

    @portal.errorhandler(clip.ClipError)
    def clip_refused(err: clip.ClipError):
        """The refusal as every other (code, description, status), with its message code and
        params when it has one: the portal says it in the page's language."""
        body = {"code": HTTPStatus(err.status).phrase, "description": str(err),
                "status": err.status}
        if err.message_code:
            body.update(messageCode=err.message_code, params=err.params)
        response = jsonify(body)
        response.status_code = err.status
        return response

    def _clip_request(dataset_id: str) -> tuple[Record, clip.Area, clip.Plan, str]:
        _only_parameters("region", "bbox", "step")
        record = _released(store, dataset_id, _live(store, dataset_id), "raster")
        band, step_name = _clip_step(record)
        area = _clip_area()
        clip_plan = clip.plan(store.assets.gdal_path(record, record.coverage.asset), area, band)
        name = "-".join(filter(None, [record.id, f"v{record.version}", area.name, step_name]))
        return record, area, clip_plan, re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".tif"

    def _clip_area() -> clip.Area:
        region, box = request.args.get("region"), request.args.get("bbox")
        if (region is None) == (box is None):
            raise clip.ClipError("give either region (an ISO 3166-2 code, e.g. KG-C) or bbox "
                                 "(west,south,east,north in WGS 84 degrees), not both")
        if box is not None:
            bbox = clip.parse_bbox(box)
            return clip.Area("bbox_" + "_".join(f"{v:g}" for v in bbox), bbox)
        regions_path = dataset_page.regions_path(store)
        if regions_path is None:
            raise clip.ClipError("region: no regions layer is published", 404)
        return clip.region_area(regions_path, region)

    return portal


def _clip_step(record: Record) -> tuple[int, str | None]:
    """The band of the chosen step of a time series (parameter step: an item id); a raster
    that is not a time series takes no step."""
    steps = layers.time_steps(record)
    chosen = request.args.get("step")
    if not steps:
        if chosen is not None:
            abort(400, description=f"step: {record.id} is not a time series")
        return 1, None
    by_id = {step["id"]: step["band"] for step in steps}
    if chosen not in by_id:
        abort(400, description=f"step: expected one of {sorted(by_id)}, got {chosen!r}")
    return by_id[chosen], chosen


def _page_language() -> str:
    _only_parameters("lang")
    requested = request.args.get("lang")
    if requested is not None and requested not in i18n.LANGUAGES:
        abort(400, description=f"lang: expected one of {list(i18n.LANGUAGES)}, got {requested!r}")
    return requested or request.accept_languages.best_match(i18n.LANGUAGES,
                                                            default=FALLBACK_LANGUAGE)


def _only_parameters(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        abort(400, description=f"unknown query parameter(s) {unknown}; allowed: {list(allowed)}")


def _no_parameters() -> None:
    _only_parameters()


def _released(store: CatalogStore, dataset_id: str, version: int, kind: str) -> Record:
    """The record of the live version: tiles of a version taken down are 404."""
    live = store.live_version(dataset_id)
    if live is None:
        abort(404, description=f"no published dataset {dataset_id!r}")
    if version != live:
        abort(404, description=f"{dataset_id} version {version} is not public; the live "
                               f"version is {live}")
    record = store.record(dataset_id, version)
    if record.kind != kind:
        abort(404, description=f"{dataset_id} is a {record.kind} dataset, not {kind}")
    return record


def _tile(z: int, x: int, y: int, max_zoom: int) -> tiles.TileBounds:
    try:
        return tiles.TileBounds.checked(z, x, y, max_zoom)
    except tiles.TileOutOfRange as err:
        abort(404, description=str(err))


def _live(store: CatalogStore, dataset_id: str) -> int:
    live = store.live_version(dataset_id)
    if live is None:
        abort(404, description=f"no published dataset {dataset_id!r}")
    return live


def tile_response(answer: tiles.Answer, empty: bytes, media_type: str,
                  caching: str) -> Response:
    """A tile with its caching (versioned URLs: VERSION_CACHE_CONTROL; URLs that follow the
    live version: LATEST_CACHE_CONTROL), an ETag and how it was answered."""
    response = Response(answer.data if answer.data is not None else empty, mimetype=media_type)
    response.headers["Cache-Control"] = caching
    response.headers["Server-Timing"] = f'tile;desc="{tiles.ANSWERS[answer.how]}"'
    response.add_etag()
    return response.make_conditional(request)


def _coordinate(name: str, low: float, high: float) -> float:
    raw = request.args.get(name)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        abort(400, description=f"{name}: expected a number, got {raw!r}")
    if not low <= value <= high:
        abort(400, description=f"{name}: {value} is outside {low}..{high}")
    return value


def _class_of(classes: list[dict], value: float | None) -> dict | None:
    """The class (name, colour, ky/ru/en title) a pixel value stands for; None for no data."""
    return next(({"name": c["name"], "colour": c["colour"], "title": c["title"]}
                 for c in classes if value is not None and c["value"] == value), None)


def _style_band(record: Record, style: str) -> int:
    """The band a raster tile style draws: 'values' and 'relief' band 1, 'values-N' the N-th
    step of a time series (one band per step)."""
    if style in RASTER_STYLES:
        return 1
    steps = len(layers.time_steps(record))
    match = re.fullmatch(r"values-([1-9][0-9]{0,3})", style)
    if match and int(match.group(1)) <= steps:
        return int(match.group(1))
    styles = [*RASTER_STYLES] + ([f"values-1..values-{steps}"] if steps > 1 else [])
    abort(404, description=f"no tile style {style!r}; styles are {styles}")


def _sample(path: str, lon: float, lat: float, band: int = 1) -> float | None:
    with rasterio.open(path) as dataset:
        row, col = dataset.index(lon, lat)
        if not (0 <= row < dataset.height and 0 <= col < dataset.width):
            return None
        value = float(next(dataset.sample([(lon, lat)], indexes=band))[0])
        return None if dataset.nodata is not None and value == dataset.nodata else value
