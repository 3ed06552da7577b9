"""OGC API - Records (Part 1) over the live records: the catalog as the record collection
`metadata`, searched in SQLite with the same CQL2 translator and geometry functions as feature
layers.

    search(rows, query) -> (number matched, the page's rows)
    record_document(row, urls, assets, language) -> a record (GeoJSON)

A row is one dataset's searchable values (`RecordRow.of(record)`); a search builds a small
in-memory table of the release's rows (one per dataset), so filters, sorting and paging are
SQL with bound values, never Python string matching that could drift from the SQL rules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from shapely.geometry import box

from catalog.core.assets import AssetLocator
from catalog.core.cql2 import Cql2Error, column_time_span_sql, span_bounds_sql, to_sql, unaccent
from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES
from catalog.core.parse import BBox, TimeSpan
from catalog.core.record import Record
from catalog.gpkg import TableSchema, encode, register_functions, spatial_sql
from catalog.manifest import licence_url
from catalog.metadata.links import RECORDS_COLLECTION, CatalogUrls

RECORD_CORE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"
THEMES_SCHEME = "https://tazakoom.example/themes"  # the catalog's own themes (config/themes.yaml)
# Queryable and sortable properties of a record, with their JSON Schema kinds.
QUERYABLES = {
    "id": "string", "type": "string", "title": "string", "description": "string",
    "theme": "string", "license": "string", "nature": "string", "kind": "string",
    "updated": "date-time", "start": "date", "end": "date",
}
SORTABLES = ("id", "title", "theme", "updated", "start", "end")
TABLE = "records"
SCHEMA = TableSchema(table=TABLE, pk="rowid", geom="geometry", rtree=None, kinds=QUERYABLES)
KEYWORD_SEPARATOR = "\x1f"


def folded(text: str) -> str:
    """Text as searched: case folded, accents stripped (all languages alike)."""
    return unaccent(text).casefold()


@dataclass(frozen=True)
class RecordsQuery:
    """A records search, already validated."""

    limit: int
    offset: int = 0
    q: tuple[str, ...] = ()  # terms, OR-ed; a term matches as a substring of the texts
    bbox: BBox | None = None
    datetime: TimeSpan | None = None
    themes: tuple[str, ...] = ()  # the catalog's theme ids, OR-ed
    keywords: tuple[str, ...] = ()  # whole keywords in any language, OR-ed
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    filter: object = None  # a pygeofilter tree
    sortby: tuple[tuple[str, bool], ...] = ()  # (property, descending)


@dataclass(frozen=True)
class RecordRow:
    """One dataset's searchable values."""

    record: Record
    text: str = field(init=False)

    def __post_init__(self):
        manifest = self.record.manifest
        texts = [*manifest.title.values(), *manifest.description.values(),
                 *(word for words in manifest.keywords.values() for word in words)]
        object.__setattr__(self, "text", folded("\n".join(texts)))

    def values(self) -> dict:
        record, manifest = self.record, self.record.manifest
        extent = manifest.temporal_extent
        keywords = {folded(word) for words in manifest.keywords.values() for word in words}
        return {
            "id": record.id, "type": "dataset", "title": manifest.title[FALLBACK_LANGUAGE],
            "description": manifest.description[FALLBACK_LANGUAGE],
            "theme": manifest.theme, "license": manifest.licence, "nature": manifest.nature,
            "kind": record.kind, "updated": record.published,
            "start": extent.start.isoformat(),
            "end": extent.end.isoformat() if extent.end else None,
            "text": self.text,
            "keywords": KEYWORD_SEPARATOR + KEYWORD_SEPARATOR.join(sorted(keywords))
            + KEYWORD_SEPARATOR,
            "geometry": encode(box(*record.bbox), 4326),
        }


def search(rows: Sequence[RecordRow], query: RecordsQuery) -> tuple[int, list[RecordRow]]:
    """(number matched, the rows of the page asked), in the order asked (else by id)."""
    conn = _table(rows)
    try:
        where, params = _conditions(query)
        matched = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}",  # noqa: S608 - fixed fragments, values bound
                               params).fetchone()[0]
        order = ", ".join(f'"{name}" {"DESC" if descending else "ASC"}'
                          for name, descending in query.sortby)
        order = f"{order}, id" if order else "id"
        found = conn.execute(
            f"SELECT id FROM {TABLE} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608 - sort names from SORTABLES
            [*params, query.limit, query.offset]).fetchall()
    finally:
        conn.close()
    by_id = {row.record.id: row for row in rows}
    return matched, [by_id[found_id] for (found_id,) in found]


def _table(rows: Sequence[RecordRow]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    register_functions(conn)
    columns = [*QUERYABLES, "text", "keywords", "geometry"]
    conn.execute(f"CREATE TABLE {TABLE} ({', '.join(f'{c!r}' for c in columns)})")
    conn.executemany(
        f"INSERT INTO {TABLE} VALUES ({', '.join('?' for _ in columns)})",  # noqa: S608 - fixed columns
        [[row.values()[c] for c in columns] for row in rows])
    return conn


def _conditions(query: RecordsQuery) -> tuple[str, list]:
    terms: list[str] = ["1"]
    params: list = []

    def any_of(template: str, values: Sequence) -> None:
        terms.append("(" + " OR ".join(template for _ in values) + ")")
        params.extend(values)

    if query.q:
        any_of("instr(text, ?) > 0", [folded(term) for term in query.q])
    if query.keywords:
        any_of("instr(keywords, ?) > 0",
               [f"{KEYWORD_SEPARATOR}{folded(k)}{KEYWORD_SEPARATOR}" for k in query.keywords])
    for column, values in (("theme", query.themes), ("id", query.ids), ("type", query.types)):
        if values:
            any_of(f"{column} = ?", list(values))
    if query.bbox is not None:
        b = query.bbox
        sql, values = spatial_sql(SCHEMA, "intersects", box(b.minx, b.miny, b.maxx, b.maxy))
        terms.append(sql)
        params.extend(values)
    if query.datetime is not None and not query.datetime.unbounded:
        _datetime_terms(query.datetime, terms, params)
    if query.filter is not None:
        sql, values = to_sql(query.filter, SCHEMA)
        terms.append(f"({sql})")
        params.extend(values)
    return " AND ".join(terms), params


def _datetime_terms(span: TimeSpan, terms: list[str], params: list) -> None:
    """The record's temporal extent (start day to end day, open when ongoing) meets the span."""
    start_sql, _ = column_time_span_sql('"start"', "date")
    _, end_sql = column_time_span_sql('"end"', "date")
    low, high = span_bounds_sql(span)
    if high is not None:
        terms.append(f"{start_sql} <= julianday(?)")
        params.append(high)
    if low is not None:
        terms.append(f'("end" IS NULL OR {end_sql} >= julianday(?))')
        params.append(low)


def check_sortby(value: str) -> tuple[tuple[str, bool], ...]:
    keys = []
    for part in value.split(","):
        part = part.strip()
        descending = part.startswith("-")
        name = part.lstrip("+-")
        if name not in SORTABLES:
            raise Cql2Error(f"sortby: {name!r} is not sortable; sortables: "
                            f"{', '.join(SORTABLES)}", "sortby")
        keys.append((name, descending))
    return tuple(keys)


# -- the record document ------------------------------------------------------------------


def record_document(record: Record, urls: CatalogUrls, assets: AssetLocator,
                    language: str, themes: dict) -> dict:
    """One record (OGC API Records, GeoJSON), its texts in `language`."""
    manifest = record.manifest
    west, south, east, north = record.bbox
    extent = manifest.temporal_extent

    def local(texts: dict):
        return texts.get(language, texts[FALLBACK_LANGUAGE])

    theme = themes.get(manifest.theme, {})
    return {
        "type": "Feature", "id": record.id, "conformsTo": [RECORD_CORE],
        "geometry": {"type": "Polygon", "coordinates": [[
            [west, south], [east, south], [east, north], [west, north], [west, south]]]},
        "time": {"interval": [extent.start.isoformat(),
                              extent.end.isoformat() if extent.end else ".."]},
        "properties": {
            "type": "dataset",
            "title": local(manifest.title),
            "description": local(manifest.description).strip(),
            "keywords": list(local(manifest.keywords)),
            "themes": [{"concepts": [{"id": manifest.theme,
                                      "title": local(theme.get("title", {})) if theme
                                      else manifest.theme}],
                        "scheme": THEMES_SCHEME}],
            "language": {"code": language},
            "languages": [{"code": code} for code in LANGUAGES],
            "license": manifest.licence,
            "rights": manifest.attribution,
            "updated": record.published,
            "version": str(record.version),
            "contacts": [{"name": manifest.steward.name,
                          "organization": manifest.steward.organisation,
                          "emails": [{"value": manifest.steward.email}],
                          "roles": ["pointOfContact"]}],
            "formats": sorted({asset.media_type for asset in record.assets}),
            "taza:nature": manifest.nature,
            "taza:provenance": manifest.provenance.method.strip(),
        },
        "links": [link for _, link in record_links(record, urls, assets)],
    }


def record_links(record: Record, urls: CatalogUrls,
                 assets: AssetLocator) -> list[tuple[str, dict]]:
    """The record's links, each with its role (what the HTML page calls it in the reader's
    language: catalog/ogc/templates/records/item.html)."""
    def link(role: str, rel: str, href: str, media_type: str, title: str,
             **extra) -> tuple[str, dict]:
        return role, {"rel": rel, "href": href, "type": media_type, "title": title, **extra}

    links = [
        link("self", "self", urls.record(record.id), "application/geo+json", "This record"),
        link("html", "alternate", f"{urls.record(record.id)}?f=html", "text/html",
             "This record as HTML"),
        link("collection", "collection", urls.records, "application/json",
             "The catalog's records"),
        link("portal", "alternate", urls.dataset_page(record.id), "text/html",
             "The dataset's page in the portal"),
        link("ogc", "related", urls.ogc_collection(record.id), "application/json",
             "OGC API collection (features or coverage)"),
        link("stac", "related", urls.stac_collection(record.id), "application/json",
             "STAC collection"),
        link("dcat", "describedby", urls.dataset_dcat(record.id), "text/turtle",
             "DCAT-AP 3 (Turtle; RDF/XML and JSON-LD with f=rdf, f=jsonld)"),
        link("iso", "describedby", urls.dataset_iso(record.id),
             "application/vnd.iso.19139+xml", "ISO 19139"),
        link("license", "license", licence_url(record.manifest.licence), "text/html",
             f"Licence: {record.manifest.licence}"),
    ]
    links += [link("download", "enclosure", assets.url(record, asset, urls.base),
                   asset.media_type, asset.title, length=asset.size)
              for asset in record.assets]
    return links


def collection_document(urls: CatalogUrls, title: str, description: str,
                        rows: Sequence[RecordRow]) -> dict:
    """The record collection's description."""
    boxes = [row.record.bbox for row in rows]
    spatial = [min(b[0] for b in boxes), min(b[1] for b in boxes),
               max(b[2] for b in boxes), max(b[3] for b in boxes)] if boxes else None
    base = urls.records
    return {
        "id": RECORDS_COLLECTION, "itemType": "record", "type": "Collection",
        "title": title, "description": description,
        "extent": {"spatial": {"bbox": [spatial] if spatial else []}},
        "links": [
            {"rel": "self", "href": base, "type": "application/json", "title": "This document"},
            {"rel": "items", "href": f"{base}/items", "type": "application/geo+json",
             "title": "The records"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "href": f"{base}/queryables", "type": "application/schema+json",
             "title": "Queryable properties"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/sortables",
             "href": f"{base}/sortables", "type": "application/schema+json",
             "title": "Sortable properties"},
        ],
    }


def properties_schema(names: Sequence[str], url: str, title: str,
                      geometry: bool = False) -> dict:
    """Queryables (with the geometry) or sortables, as a JSON Schema."""
    def schema(kind: str) -> dict:
        return {"type": "string", "format": kind} if kind in ("date", "date-time") \
            else {"type": kind}

    properties = {name: schema(QUERYABLES[name]) for name in names}
    if geometry:
        properties["geometry"] = {"format": "geometry-polygon"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url,
            "type": "object", "title": title, "properties": properties,
            "additionalProperties": False}
