"""What the portal's map shows, built from the live release's records (plain data for the page)."""

from __future__ import annotations

from functools import cache

from catalog import settings
from catalog.core.record import Record
from catalog.features import MVT_MAX_ZOOM
from catalog.portal import tiles
from catalog.portal.i18n import LANGUAGES

PALETTE = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")
RAMPS = {"terrain": tiles.TERRAIN_STOPS, "slope": tiles.SLOPE_STOPS}


@cache
def portal_config() -> dict:
    return settings.portal_config()


def raster_stops(record: Record) -> list:
    """Colour stops for a raster dataset: its configured ramp, else one over its value range."""
    named = portal_config().get("rasters", {}).get(record.id, {}).get("ramp")
    if named in RAMPS:
        return RAMPS[named]
    # Over every band: the steps of a time series share one ramp, so colours compare.
    bands = [band.statistics for band in record.coverage.bands if band.statistics]
    return tiles.stretched_stops(min(b.minimum for b in bands), max(b.maximum for b in bands))


def time_steps(record: Record) -> list[dict]:
    """The steps of a time series (items with their own interval) in band order of its layer:
    [{id, band, start, end}]; [] for a single raster or a mosaic."""
    if record.layer is None or record.raster.start is None:
        return []
    return [{"id": facts.item_id, "band": band, "start": facts.start.isoformat(),
             "end": facts.end.isoformat()}
            for band, facts in enumerate(record.rasters, start=1)]


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def map_layers(records: list[Record]) -> list[dict]:
    """One entry per live dataset, in theme order, with tiles, legend and metadata for the map."""
    theme_order = list(settings.themes())
    ordered = sorted(records, key=lambda r: (_theme_rank(r, theme_order), r.id))
    return [_layer(record, index) for index, record in enumerate(ordered)]


def _theme_rank(record: Record, order: list[str]) -> int:
    theme = record.manifest.theme
    return order.index(theme) if theme in order else len(order)


def _layer(record: Record, index: int) -> dict:
    manifest = record.manifest
    base = {
        "id": record.id,
        "kind": record.kind,
        "theme": manifest.theme,
        "title": manifest.title,
        "nature": manifest.nature,
        "version": record.version,
        "licence": manifest.licence,
        "attribution": manifest.attribution,
        "role": manifest.role,
    }
    if record.kind == "raster":
        return base | _raster_layer(record)
    return base | _vector_layer(record, index)


def raster_classes(record: Record) -> list[dict]:
    """The class table of a categorical raster (manifest `raster.classes`), or []."""
    return list(record.manifest.raster.get("classes") or [])


def class_colours(record: Record) -> dict[int, tuple[int, int, int]]:
    """Pixel value -> RGB of each class, for the map tiles."""
    return {c["value"]: tuple(int(c["colour"][i:i + 2], 16) for i in (1, 3, 5))
            for c in raster_classes(record)}


def _raster_layer(record: Record) -> dict:
    raster = record.coverage
    band = raster.bands[0]
    layer = {
        "bbox": list(raster.bbox),
        "tiles": f"/tiles/{record.id}/{record.version}/values/{{z}}/{{x}}/{{y}}.png",
    }
    if steps := time_steps(record):  # the map picks a step: style values-<band>
        layer["steps"] = steps
    if raster_classes(record):
        return layer | {"legend": _class_legend(record)}
    stops = raster_stops(record)
    return layer | {
        "legend": {"type": "ramp", "unit": band.unit or "",
                   "stops": [[value, hex_colour(colour)] for value, colour in stops],
                   "minimum": min(b.statistics.minimum for b in raster.bands),
                   "maximum": max(b.statistics.maximum for b in raster.bands)},
    }


def _class_legend(record: Record) -> dict:
    """Every class of the table, with its colour and ky/ru/en title."""
    return {"type": "classes",
            "classes": [{"value": c["value"], "colour": c["colour"], "title": c["title"]}
                        for c in raster_classes(record)]}


def _vector_layer(record: Record, index: int) -> dict:
    facts = record.vector
    style = portal_config().get("vectors", {}).get(record.id, {})
    legend: dict = {"type": "colour", "colour": style.get("colour", PALETTE[index % len(PALETTE)])}
    if style.get("category") in facts.fields:
        legend = {"type": "category", "property": style["category"],
                  "colours": style.get("colours", {}), "other": "#888888"}
    return {
        "bbox": list(facts.bbox),
        "geometry": facts.geometry_type,
        "feature_count": facts.feature_count,
        "fields": list(facts.fields),
        "id_field": record.manifest.id_field,
        "source_layer": record.id,
        "tiles": f"/tiles/{record.id}/{record.version}/{{z}}/{{x}}/{{y}}.mvt",
        "maxzoom": MVT_MAX_ZOOM,
        "legend": legend,
    }


def _basemap_vector(record: Record | None) -> dict | None:
    """Vector tiles of a basemap part, when that dataset is published as a vector."""
    if record is None or record.kind != "vector":
        return None
    return {"tiles": f"/tiles/{record.id}/{record.version}/{{z}}/{{x}}/{{y}}.mvt",
            "source_layer": record.id}


def basemap(records: list[Record]) -> dict:
    """The basemap's parts that are published: relief tiles, outline layer, place labels."""
    settings_ = portal_config().get("basemap", {})
    by_id = {r.id: r for r in records}
    relief = by_id.get(settings_.get("relief"))
    outline = by_id.get(settings_.get("boundary"))
    places = by_id.get(settings_.get("places"))
    water, rivers = by_id.get(settings_.get("water")), by_id.get(settings_.get("rivers"))
    return {
        "water": _basemap_vector(water),
        "rivers": _basemap_vector(rivers),
        "relief": None if relief is None or relief.kind != "raster" else
        f"/tiles/{relief.id}/{relief.version}/relief/{{z}}/{{x}}/{{y}}.png",
        "outline": None if outline is None or outline.kind != "vector" else
        {"tiles": f"/tiles/{outline.id}/{outline.version}/{{z}}/{{x}}/{{y}}.mvt",
         "source_layer": outline.id},
        "places": None if places is None or places.kind != "vector" else
        {"url": f"/ogc/collections/{places.id}/items?f=json&limit=1000"
                f"&properties={_place_fields(settings_, places)}",
         "name": settings_.get("place_name", "name"),
         "rank": settings_.get("place_rank", "population")},
    }


def _place_fields(settings_: dict, places: Record) -> str:
    """The label and rank fields, and the label's ky/ru/en forms where the layer has them
    (name_ky, name_ru, name_en): labels follow the page's language."""
    name = settings_.get("place_name", "name")
    fields = [name, settings_.get("place_rank", "population")]
    fields += [f"{name}_{lang}" for lang in LANGUAGES if f"{name}_{lang}" in places.vector.fields]
    return ",".join(fields)
