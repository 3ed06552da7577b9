"""The fixed set of requests whose answers are kept as golden files.

Every public surface of the server over the sample catalog (`taza publish --all`): /ogc
(Features, Coverages, Processes, their HTML, JSON-LD and CSV forms, errors), /stac (API and
static tree), /api public reads, the portal's pages, tiles, /assets, /healthz and the OpenAPI
documents. Requests are plain data: the same list is recorded (`python -m tests.golden
record`) and compared (tests/test_golden.py). Each request is sent alone and reads only, so
their order does not matter.

Adding a request: add it here, record (`python -m tests.golden record`), review the new
entries in the golden file, commit both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
VECTOR_IDS = ("airports", "kyrgyzstan-boundary", "mobile-coverage", "settlements")
RASTER_IDS = ("elevation", "slope")
DATASET_IDS = tuple(sorted(VECTOR_IDS + RASTER_IDS))
PROCESS_IDS = ("coverage-statistics", "site-screening", "zonal-statistics")
# One property of each vector layer, for `properties`, `sortby` and equality filters, and one
# feature id of each (the first in id order).
FIRST_PROPERTY = {"airports": "name", "kyrgyzstan-boundary": "name_en",
                  "mobile-coverage": "coverage_class", "settlements": "name"}
FEATURE_ID = {"airports": "UAFA", "kyrgyzstan-boundary": "KGZ", "mobile-coverage": "3G",
              "settlements": "1528249"}
# A small area in the Chuy valley around Bishkek, and the same area as a GeoJSON polygon.
BBOX = "74,42,75,43"
POLYGON = {"type": "Polygon", "coordinates": [[[74.0, 42.0], [74.3, 42.0], [74.3, 42.25],
                                               [74.0, 42.25], [74.0, 42.0]]]}
CQL2_JSON = "application/query-cql-json"


@dataclass(frozen=True)
class Case:
    """One request. `key` names it in the golden file and in every failure message."""

    group: str
    method: str
    path: str  # with its query string, percent-encoded as sent
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    note: str = ""  # says what a body holds (the key shows the note, not the body)

    @property
    def key(self) -> str:
        key = f"{self.method} {self.path}"
        for name, value in sorted(self.headers.items()):
            if name != "Content-Type" or self.body is None:
                key += f" [{name}: {value}]"
        return key + (f" ({self.note})" if self.note else "")

    @property
    def body_text(self) -> str | None:
        return None if self.body is None else self.body.decode("utf-8")


# Parameter names with a dash, written with an underscore in keyword arguments.
DASHED = {"bbox_crs": "bbox-crs", "filter_crs": "filter-crs", "filter_lang": "filter-lang",
          "scale_factor": "scale-factor"}


def url(path: str, **params: object) -> str:
    """`path` with its query string, in the order given."""
    if not params:
        return path
    query = urlencode({DASHED.get(name, name): value for name, value in params.items()},
                      quote_via=quote, safe=",:/()'")
    return f"{path}?{query}"


def get(group: str, path: str, headers: dict[str, str] | None = None, **params: object) -> Case:
    return Case(group, "GET", url(path, **params), headers or {})


def post_json(group: str, path: str, document: object, note: str,
              content_type: str = "application/json") -> Case:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Case(group, "POST", path, {"Content-Type": content_type}, body, note)


# -- /ogc: landing, conformance, collections, OpenAPI -----------------------------------------

def ogc_landing() -> list[Case]:
    g = "ogc-landing"
    cases = [get(g, "/ogc"), get(g, "/ogc/"), get(g, "/ogc/", f="json"),
             get(g, "/ogc/", f="html"), get(g, "/ogc/", f="jsonld"),
             get(g, "/ogc/", lang="ru"), get(g, "/ogc/", lang="ky"),
             get(g, "/ogc/", f="html", lang="ru"),
             get(g, "/ogc/", {"Accept": "text/html"}), get(g, "/ogc/", {"Accept-Language": "ru"}),
             get(g, "/ogc/conformance"), get(g, "/ogc/conformance", f="html"),
             get(g, "/ogc/collections"), get(g, "/ogc/collections", f="html"),
             get(g, "/ogc/collections", f="jsonld"), get(g, "/ogc/collections", lang="ru"),
             get(g, "/ogc/collections", lang="ky"), get(g, "/ogc/collections", f="html", lang="ky"),
             get(g, "/ogc/collections", {"Accept": "text/html"}),
             get(g, "/ogc/collections", {"Accept": "application/ld+json"}),
             Case(g, "HEAD", "/ogc/collections"),
             Case(g, "OPTIONS", "/ogc/collections",
                  {"Origin": "https://maps.example", "Access-Control-Request-Method": "GET"})]
    return cases


def ogc_collections() -> list[Case]:
    g = "ogc-collections"
    cases = []
    for dataset_id in DATASET_IDS:
        path = f"/ogc/collections/{dataset_id}"
        cases += [get(g, path), get(g, path, f="html"), get(g, path, f="jsonld"),
                  get(g, path, lang="ru"), get(g, path, lang="ky"),
                  get(g, f"{path}/queryables"), get(g, f"{path}/queryables", f="html"),
                  get(g, f"{path}/schema"), get(g, f"{path}/schema", f="html")]
    cases += [get(g, "/ogc/collections/settlements", f="html", lang="ru"),
              get(g, "/ogc/collections/settlements", {"Accept": "text/html"}),
              get(g, "/ogc/collections/elevation", f="html", lang="ky")]
    return cases


def ogc_openapi() -> list[Case]:
    g = "openapi"
    return [get(g, "/ogc/openapi"), get(g, "/ogc/openapi", f="json"),
            get(g, "/ogc/openapi", f="html"), get(g, "/ogc/openapi", f="html", ui="redoc"),
            get(g, "/stac/api"), get(g, "/api/openapi.json")]


# -- /ogc: items of each vector layer -----------------------------------------------------------

def items_common(dataset_id: str) -> list[Case]:
    """The same requests over every vector layer."""
    g = f"ogc-items-{dataset_id}"
    path = f"/ogc/collections/{dataset_id}/items"
    prop = FIRST_PROPERTY[dataset_id]
    return [
        get(g, path), get(g, path, f="json"), get(g, path, f="html"), get(g, path, f="csv"),
        get(g, path, f="jsonld"), get(g, path, lang="ru"), get(g, path, f="html", lang="ky"),
        get(g, path, {"Accept": "application/geo+json"}), get(g, path, {"Accept": "text/html"}),
        get(g, path, {"Accept": "application/ld+json"}), get(g, path, {"Accept": "text/csv"}),
        get(g, path, {"Accept-Language": "ru"}),
        get(g, path, limit=1), get(g, path, limit=1, offset=1), get(g, path, limit=2, offset=1000),
        get(g, path, resulttype="hits"), get(g, path, skipGeometry="true", limit=3),
        get(g, path, properties=prop, limit=3), get(g, path, properties=prop, skipGeometry="true"),
        get(g, path, bbox=BBOX), get(g, path, bbox="0,0,1,1"),
        get(g, path, bbox="42,74,43,75", bbox_crs=f"{EPSG}4326"),
        get(g, path, limit=2, crs=f"{EPSG}3857"), get(g, path, limit=2, crs=f"{EPSG}4326"),
        get(g, path, limit=2, crs=CRS84),
        get(g, path, sortby=f"-{prop}", limit=5), get(g, path, sortby=prop, limit=5),
        get(g, path, filter=f"{prop} IS NOT NULL", limit=3),
        get(g, path, filter="S_INTERSECTS(geometry, POLYGON((74 42, 75 42, 75 43, 74 43, "
                            "74 42)))"),
        get(g, path, filter=json.dumps({"op": "isNull", "args": [{"property": prop}]}),
            filter_lang="cql2-json"),
        get(g, path, datetime="2020-01-01T00:00:00Z/.."),
        get(g, path, f="csv", skipGeometry="true"),
        get(g, path, f="html", limit=1),
        post_json(g, path, {"op": "s_intersects", "args": [{"property": "geometry"}, POLYGON]},
                  "CQL2 JSON s_intersects small polygon", CQL2_JSON),
        get(g, f"{path}/{FEATURE_ID[dataset_id]}"),
        get(g, f"{path}/{FEATURE_ID[dataset_id]}", f="html"),
        get(g, f"{path}/{FEATURE_ID[dataset_id]}", f="jsonld"),
        get(g, f"{path}/{FEATURE_ID[dataset_id]}", crs=f"{EPSG}4326"),
        get(g, f"{path}/{FEATURE_ID[dataset_id]}", crs=f"{EPSG}3857"),
        get(g, f"{path}/{FEATURE_ID[dataset_id]}", lang="ru"),
        get(g, f"{path}/{FEATURE_ID[dataset_id]}", {"Accept": "text/html"}),
        get(g, f"{path}/no-such-feature"),
        get(g, f"{path}/no-such-feature", f="html"),
    ]


SETTLEMENT_FILTERS = (
    "population > 100000",
    "population >= 20000 AND population < 100000",
    "population BETWEEN 10000 AND 50000",
    "NOT (population > 1000)",
    "region_en = 'Chuy Region'",
    "region_en <> 'Chuy Region' AND population > 50000",
    "region_en IN ('Naryn Region', 'Talas Region')",
    "name LIKE 'Kara%'",
    "name NOT LIKE '%a%'",
    "CASEI(region_en) = CASEI('OSH REGION')",
    "S_WITHIN(geometry, POLYGON((72 40, 74 40, 74 41.5, 72 41.5, 72 40)))",
    "S_DISJOINT(geometry, POLYGON((69 39, 76 39, 76 43.5, 69 43.5, 69 39)))",
    "S_INTERSECTS(geometry, POINT(74.59 42.87))",
    "(population > 30000 OR elevation_gebco_m > 2500) AND region_iso <> 'KG-GB'",
    "elevation_gebco_m IS NULL",
)


def items_settlements() -> list[Case]:
    g = "ogc-items-settlements"
    path = "/ogc/collections/settlements/items"
    cases = [get(g, path, limit=25, offset=offset) for offset in (0, 25, 50, 75, 100)]
    cases += [get(g, path, limit=10, offset=20), get(g, path, limit=1000),
              get(g, path, limit=10000), get(g, path, limit=10, offset=110),
              get(g, path, region_en="Naryn Region"),
              get(g, path, properties="name,population", skipGeometry="true",
                  region_en="Naryn Region", limit=200),
              get(g, path, q="osh"), get(g, path, q="bishkek", resulttype="hits"),
              get(g, path, sortby="-population", limit=10),
              get(g, path, sortby="region_en,-population", limit=10),
              get(g, path, sortby="+elevation_gebco_m,name", limit=10),
              get(g, path, sortby=" name", limit=3),
              get(g, path, bbox="72,40,74,41.5", limit=100),
              get(g, path, bbox="8237642,5160979,8348961,5311971", bbox_crs=f"{EPSG}3857"),
              get(g, path, bbox=BBOX, crs=f"{EPSG}3857", limit=3),
              get(g, path, filter="S_INTERSECTS(geometry, POLYGON((42 74, 42 75, 43 75, 43 74, "
                                  "42 74)))", filter_crs=f"{EPSG}4326"),
              get(g, path, f="csv", limit=200), get(g, path, f="html", limit=1000),
              get(g, path, f="html", skipGeometry="true"),
              get(g, path, f="jsonld", limit=3)]
    cases += [get(g, path, filter=text, limit=200) for text in SETTLEMENT_FILTERS]
    cases += [get(g, path, filter=text, resulttype="hits") for text in SETTLEMENT_FILTERS[:4]]
    cases += [
        get(g, path, filter=json.dumps({"op": "between", "args": [
            {"property": "population"}, 10000, 50000]}), filter_lang="cql2-json", limit=100),
        get(g, path, filter=json.dumps({"op": "and", "args": [
            {"op": ">", "args": [{"property": "population"}, 20000]},
            {"op": "like", "args": [{"property": "name"}, "K%"]}]}), filter_lang="cql2-json"),
        get(g, path, filter=json.dumps({"op": "in", "args": [
            {"property": "region_iso"}, ["KG-T", "KG-N"]]}), filter_lang="cql2-json", limit=50),
        get(g, path, filter="population > 100000", filter_lang="cql2-text"),
        post_json(g, path, {"op": ">", "args": [{"property": "population"}, 100000]},
                  "CQL2 JSON population > 100000", CQL2_JSON),
        post_json(g, path, {"op": "like", "args": [{"property": "name"}, "Kara%"]},
                  "CQL2 JSON name like Kara%", "application/json"),
    ]
    return cases


def items_airports() -> list[Case]:
    g = "ogc-items-airports"
    path = "/ogc/collections/airports/items"
    return [get(g, path, filter="iata IS NULL"), get(g, path, filter="iata IS NOT NULL"),
            get(g, path, sortby="-elevation_m"), get(g, path, sortby="city,icao"),
            get(g, path, filter="elevation_m > 1500 AND region = 'Issyk-Kul'"),
            get(g, path, q="osh"), get(g, path, region="Chuey"),
            get(g, path, f="csv", limit=100), get(g, path, limit=5, offset=15),
            get(g, "/ogc/collections/airports/items/UCFM"),
            get(g, "/ogc/collections/airports/items/UCFM", f="html", lang="ru")]


def items_polygons() -> list[Case]:
    cases = []
    for dataset_id in ("kyrgyzstan-boundary", "mobile-coverage"):
        g = f"ogc-items-{dataset_id}"
        path = f"/ogc/collections/{dataset_id}/items"
        cases += [get(g, path, f="csv", limit=5), get(g, path, bbox="79,42,80,43"),
                  get(g, path, filter="S_CONTAINS(geometry, POINT(74.59 42.87))")]
    g = "ogc-items-mobile-coverage"
    path = "/ogc/collections/mobile-coverage/items"
    cases += [get(g, path, sortby="-area_km2"), get(g, path, filter="population_covered > 1000000"),
              get(g, f"{path}/4G", skipGeometry="true")]
    return cases


# -- /ogc: coverages ----------------------------------------------------------------------------

def coverages() -> list[Case]:
    g = "ogc-coverages"
    cases = []
    for dataset_id in RASTER_IDS:
        path = f"/ogc/collections/{dataset_id}/coverage"
        cases += [
            get(g, path, f="json", bbox="74,42,74.1,42.1"),
            get(g, path, f="json", subset="Lat(42:42.05),Long(74:74.05)"),
            get(g, path, f="json", subset="Long(74:74.02)", bbox="74,42,75,42.02"),
            get(g, path, f="json", subset="Lat(42:42.01)"),
            get(g, path, f="json", subset="x(74:74.05),y(42:42.05)"),
            get(g, path, f="json", subset="lat(42:42.05),lon(74:74.05)"),
            get(g, path, f="json", bbox="74,42,74.05,42.05", properties="1"),
            get(g, path, f="json", bbox="74,42,74.05,42.05", properties=dataset_id),
            get(g, path, f="GTiff", bbox="74,42,74.5,42.5"),
            get(g, path, {"Accept": "image/tiff"}, bbox="74,42,74.2,42.2"),
            get(g, path, {"Accept": "image/tiff; application=geotiff"},
                subset="Lat(42:42.1),Long(74:74.1)"),
            get(g, path, f="json", bbox="8237642,5160979,8243208,5168500",
                bbox_crs=f"{EPSG}3857"),
            get(g, path, f="json", bbox="42,74,42.05,74.05", bbox_crs=f"{EPSG}4326"),
            get(g, path, f="json", bbox="74,42,74.05,42.05", bbox_crs=f"{EPSG}4326"),
            get(g, path, f="json", bbox="74,42,74.05,42.05", bbox_crs=CRS84),
            get(g, path, f="html", bbox="74,42,74.1,42.1"),
            get(g, path, f="json", properties="nope"),
            get(g, path, f="json", bbox="74,42,74.1"),
            get(g, path, f="json", bbox="75,42,74,43"),
            get(g, path, f="json", bbox_crs=f"{EPSG}4326"),
            get(g, path, f="json", subset="height(0:1)"),
            get(g, path, scale_factor="2"),
            get(g, path, f="xml", bbox="74,42,74.1,42.1"),
            get(g, path, f="json", bbox="0,0,1,1"),
        ]
    path = "/ogc/collections/elevation/coverage"
    cases += [get(g, path, f="GTiff"), get(g, path, f="json", properties="1,1"),
              get(g, path, f="json", bbox="74,42,74.1,42.1", bbox_crs="EPSG:4326"),
              get(g, path, f="json", bbox="74,42,74.1,42.1", datetime="2023-06-01T00:00:00Z"),
              get(g, path, f="json", bbox="74,42,74.1,42.1", lang="ru"),
              get(g, "/ogc/collections/elevation/items"),
              get(g, "/ogc/collections/settlements/coverage")]
    return cases


# -- /ogc: processes ------------------------------------------------------------------------------

def processes() -> list[Case]:
    g = "ogc-processes"
    execution = "/ogc/processes/{}/execution"
    cases = [get(g, "/ogc/processes"), get(g, "/ogc/processes", f="html"),
             get(g, "/ogc/processes", lang="ru"), get(g, "/ogc/processes/no-such-process"),
             get(g, "/ogc/jobs"), get(g, "/ogc/jobs", f="html"), get(g, "/ogc/jobs/no-such-job"),
             get(g, "/ogc/jobs/no-such-job/results")]
    for process_id in PROCESS_IDS:
        cases += [get(g, f"/ogc/processes/{process_id}"),
                  get(g, f"/ogc/processes/{process_id}", f="html"),
                  get(g, f"/ogc/processes/{process_id}", lang="ky")]
    cases += [
        post_json(g, execution.format("zonal-statistics"),
                  {"inputs": {"raster": "slope", "area": POLYGON}}, "slope over a small polygon"),
        post_json(g, execution.format("zonal-statistics"),
                  {"inputs": {"raster": "elevation", "area": POLYGON, "bins": 5,
                              "histogram_min": 500, "histogram_max": 3000}},
                  "elevation with a fixed histogram"),
        post_json(g, execution.format("coverage-statistics"), {"inputs": {"area": POLYGON}},
                  "coverage over a small polygon"),
        post_json(g, execution.format("coverage-statistics"), {"inputs": {"region": "KG-T"}},
                  "coverage of Talas region"),
        post_json(g, execution.format("site-screening"),
                  {"inputs": {"area": [74.0, 42.0, 75.0, 43.0], "max_slope_deg": 10,
                              "coverage": "4G"}}, "sites near Bishkek"),
        post_json(g, execution.format("site-screening"), {"inputs": {"max_sloop": 5}},
                  "unknown input"),
        post_json(g, execution.format("site-screening"),
                  {"inputs": {"area": [75, 42, 74, 43]}}, "west beyond east"),
        post_json(g, execution.format("coverage-statistics"), {"inputs": {"region": "KG-X"}},
                  "unknown region"),
        post_json(g, execution.format("zonal-statistics"), {"inputs": {"raster": "nope"}},
                  "unknown raster"),
        post_json(g, execution.format("zonal-statistics"),
                  {"inputs": {"raster": "slope"}, "outputs": {"histogram": {}}}, "unknown output"),
        post_json(g, execution.format("site-screening"), [1, 2], "not an object"),
        post_json(g, execution.format("site-screening"),
                  {"inputs": {}, "subscriber": {"successUri": "http://127.0.0.1:9/"}},
                  "a subscriber"),
        post_json(g, execution.format("no-such-process"), {"inputs": {}}, "unknown process"),
    ]
    return cases


# -- /ogc: errors ---------------------------------------------------------------------------------

def ogc_errors() -> list[Case]:
    g = "ogc-errors"
    items = "/ogc/collections/settlements/items"
    bad_items = [
        {"limit": "abc"}, {"limit": "-1"}, {"limit": "0"}, {"limit": "10001"}, {"offset": "-1"},
        {"offset": "x"}, {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "75,42,74,43"},
        {"bbox": "74,42,75,43", "bbox_crs": "EPSG:4326"},
        {"bbox": "74,42,75,43", "bbox_crs": f"{EPSG}99999"}, {"bbox_crs": f"{EPSG}4326"},
        {"crs": f"{EPSG}99999"}, {"crs": "EPSG:3857"}, {"datetime": "yesterday"},
        {"datetime": "2024-13-45"}, {"f": "xml"}, {"foo": "1"}, {"resulttype": "bogus"},
        {"skipGeometry": "maybe"}, {"properties": "nope"}, {"sortby": "nope"},
        {"sortby": "-geometry"}, {"filter": "population >"}, {"filter": "nope = 1"},
        {"filter": "population = 'x' AND"},
        {"filter": "{\"op\": \"=\"}", "filter_lang": "cql2-json"},
        {"filter": "population > 1", "filter_lang": "bogus"},
        {"filter": "S_INTERSECTS(geometry, POINT(1))"},
        {"filter": "population > 1", "filter_crs": f"{EPSG}99999"}, {"lang": "de"},
        {"q": ""},
    ]
    cases = [get(g, items, **params) for params in bad_items]
    cases += [
        get(g, "/ogc/collections/nope"), get(g, "/ogc/collections/nope", f="html"),
        get(g, "/ogc/collections/nope/items"), get(g, "/ogc/collections/nope/queryables"),
        get(g, "/ogc/collections/nope/coverage"), get(g, "/ogc/nope"),
        get(g, "/ogc/collections", foo="1"), get(g, "/ogc/conformance", foo="1"),
        get(g, "/ogc/collections", f="xml"),
        get(g, f"{items}/1528249", foo="1"), get(g, f"{items}/1528249", crs="EPSG:3857"),
        get(g, "/ogc/TileMatrixSets"), get(g, "/ogc/TileMatrixSets", f="html"),
        get(g, "/ogc/collections/settlements/tiles"),
        get(g, "/ogc/collections/settlements/position", f="html"),
        get(g, "/ogc/stac"), get(g, "/ogc/asyncapi", f="html"),
        Case(g, "PUT", f"{items}/1528249", {"Content-Type": "application/geo+json"}, b"{}",
             "empty object"),
        Case(g, "DELETE", f"{items}/1528249"),
        Case(g, "POST", items, {"Content-Type": "application/geo+json"}, b"{}", "empty object"),
        Case(g, "POST", items, {"Content-Type": CQL2_JSON}, b"{\"op\":", "truncated JSON"),
        Case(g, "POST", items, {"Content-Type": CQL2_JSON}, b"[1,2]", "not a filter"),
        Case(g, "GET", items, {"Content-Type": "application/json"}, b"{}", "body on GET"),
    ]
    return cases


# -- /stac ----------------------------------------------------------------------------------

def stac_api() -> list[Case]:
    g = "stac-api"
    cases = [get(g, "/stac"), get(g, "/stac/"), get(g, "/stac/conformance"),
             get(g, "/stac/queryables"), get(g, "/stac/collections"),
             get(g, "/stac/collections", limit=2), get(g, "/stac/collections", limit=2, token=2),
             get(g, "/stac/collections", q="elevation"), get(g, "/stac/collections", q="высота"),
             get(g, "/stac/collections", theme="land"),
             get(g, "/stac/collections", theme="infrastructure,coverage"),
             get(g, "/stac/collections", bbox="79,42,80,43"),
             get(g, "/stac/collections", datetime="2023-01-01T00:00:00Z/2023-12-31T00:00:00Z"),
             get(g, "/stac/collections/nope"), get(g, "/stac/collections/nope/items"),
             get(g, "/stac", foo="1"), get(g, "/stac/collections", foo="1"),
             get(g, "/stac/collections", limit="0"), Case(g, "HEAD", "/stac/collections")]
    for dataset_id in DATASET_IDS:
        path = f"/stac/collections/{dataset_id}"
        cases += [get(g, path), get(g, f"{path}/queryables"), get(g, f"{path}/items"),
                  get(g, f"{path}/items/{dataset_id}"), get(g, f"{path}/items/nope")]
    cases += [get(g, "/stac/collections/settlements/items", fields="id,properties.title"),
              get(g, "/stac/collections/settlements/items", limit=1),
              get(g, "/stac/collections/settlements/items", ids="settlements")]
    return cases


# The token of the second page of two items, as this server's next links carry it.
PAGE_TWO = "WyJlM2IwYzQ0Mjk4ZmMiLFsyNDYxMzQ3LjUsMV1d"


def stac_search() -> list[Case]:
    g = "stac-search"
    search = "/stac/search"
    gets = [
        {}, {"limit": 2}, {"limit": 2, "token": PAGE_TWO}, {"limit": 100},
        {"collections": "elevation,slope"},
        {"ids": "airports,settlements"}, {"bbox": "79,42,80,43"}, {"bbox": "0,0,1,1"},
        {"intersects": json.dumps({"type": "Point", "coordinates": [74.59, 42.87]})},
        {"datetime": "2023-06-01T00:00:00Z"}, {"datetime": "../2024-01-01T00:00:00Z"},
        {"datetime": "2026-01-01T00:00:00Z/.."},
        {"sortby": "-id"}, {"sortby": "+datetime,id"}, {"fields": "id"},
        {"fields": "id,-links"}, {"fields": ""}, {"fields": "properties.title,-assets"},
        {"filter": "collection = 'settlements'"},
        {"filter": "table:row_count > 10"}, {"filter": "proj:epsg = 4326"},
        {"filter": json.dumps({"op": "=", "args": [{"property": "collection"}, "airports"]}),
         "filter_lang": "cql2-json"},
        {"filter": "S_INTERSECTS(geometry, POINT(74.59 42.87))"},
        {"q": "elevation"}, {"q": "аэропорт"}, {"q": "чек ара"}, {"q": "osh,bishkek"},
        # errors
        {"limit": "abc"}, {"limit": "0"}, {"bbox": "1,2,3"}, {"bbox": "80,42,79,43"},
        {"datetime": "yesterday"}, {"sortby": "nope"}, {"fields": "id", "foo": "1"},
        {"collections": "nope"}, {"filter": "nope >"},
        {"filter_lang": "bogus", "filter": "id = 'x'"},
        {"intersects": "{\"type\": \"Point\"}"}, {"token": "abc"}, {"limit": 2, "token": "2"},
    ]
    cases = [get(g, search, **params) for params in gets]
    cases += [Case(g, "GET", f"{search}?limit=1&limit=2")]
    bodies = [
        ({}, "empty"), ({"limit": 2}, "limit 2"),
        ({"collections": ["airports", "settlements"], "fields": {"include": ["id"]}},
         "collections and fields"),
        ({"bbox": [79, 42, 80, 43]}, "bbox"), ({"intersects": POLYGON}, "intersects"),
        ({"datetime": "2023-01-01T00:00:00Z/2023-12-31T23:59:59Z"}, "datetime interval"),
        ({"sortby": [{"field": "id", "direction": "desc"}]}, "sortby id desc"),
        ({"filter": {"op": "=", "args": [{"property": "collection"}, "elevation"]}},
         "CQL2 JSON filter"),
        ({"filter": "collection = 'slope'", "filter-lang": "cql2-text"}, "CQL2 text filter"),
        ({"q": ["coverage"]}, "free text"), ({"ids": ["elevation"]}, "ids"),
        ({"limit": 2, "token": PAGE_TWO}, "second page"),
        ({"limit": "two"}, "limit as text"), ({"bbox": [1, 2, 3]}, "three numbers"),
        ({"nope": 1}, "unknown member"), ([1, 2], "an array"),
    ]
    cases += [post_json(g, search, body, note) for body, note in bodies]
    cases += [Case(g, "POST", search, {"Content-Type": "text/plain"}, b"{}", "text/plain body"),
              Case(g, "POST", f"{search}?limit=1", {"Content-Type": "application/json"}, b"{}",
                   "with a query string")]
    return cases


def stac_static() -> list[Case]:
    g = "stac-static"
    cases = [get(g, "/stac/catalog.json"), get(g, "/stac/nothing.json"),
             get(g, "/stac/..%2F..%2Fcurrent.json"), get(g, "/stac/catalog.json", foo="1")]
    themes = {"airports": "infrastructure", "settlements": "infrastructure",
              "mobile-coverage": "coverage", "elevation": "land", "slope": "land",
              "kyrgyzstan-boundary": "land"}
    for theme in sorted(set(themes.values())):
        cases.append(get(g, f"/stac/{theme}/catalog.json"))
    for dataset_id, theme in sorted(themes.items()):
        cases += [get(g, f"/stac/{theme}/{dataset_id}/collection.json"),
                  get(g, f"/stac/{theme}/{dataset_id}/{dataset_id}/{dataset_id}.json")]
    return cases


# -- /api, the portal, tiles, assets, health ------------------------------------------------------

def api_reads() -> list[Case]:
    g = "api"
    cases = [get(g, "/api"), get(g, "/api/"), get(g, "/api/datasets"), get(g, "/api/session"),
             get(g, "/api/me"), get(g, "/api/tokens"), get(g, "/api/reviews"),
             get(g, "/api/audit"), get(g, "/api/datasets/nope"),
             get(g, "/api/datasets", foo="1"),
             get(g, "/api/me", {"Authorization": "Bearer not-a-token"}),
             get(g, "/api/me", {"Authorization": "Basic dXNlcjpwYXNz"}),
             post_json(g, "/api/session", {"name": "nobody", "password": "wrong password"},
                       "unknown account"),
             Case(g, "DELETE", "/api/session")]
    for dataset_id in DATASET_IDS:
        path = f"/api/datasets/{dataset_id}"
        cases += [get(g, path), get(g, f"{path}/versions"), get(g, f"{path}/draft"),
                  get(g, f"{path}/versions/1/files/manifest.yaml"),
                  get(g, f"{path}/versions/2/files/manifest.yaml")]
    cases += [get(g, "/api/datasets/airports/versions/1/files/airports.geojson"),
              get(g, "/api/datasets/airports/versions/1/files/record.json"),
              get(g, "/api/datasets/airports/versions/1/files/..%2Frecord.json")]
    return cases


def portal() -> list[Case]:
    g = "portal"
    cases = [get(g, "/"), get(g, "/", lang="ru"), get(g, "/", lang="ky"),
             get(g, "/", {"Accept-Language": "ru-RU,ru;q=0.9"}), get(g, "/", lang="de"),
             get(g, "/", foo="1"), get(g, "/stewards"), get(g, "/stewards", lang="ky"),
             get(g, "/review"), get(g, "/review", lang="ru"), get(g, "/datasets/nope"),
             get(g, "/portal/value/elevation", lon="74.59", lat="42.87"),
             get(g, "/portal/value/slope", lon="74.59", lat="42.87"),
             get(g, "/portal/value/elevation", lon="60", lat="42"),
             get(g, "/portal/value/elevation", lon="x", lat="42"),
             get(g, "/portal/value/elevation", lon="74"),
             get(g, "/portal/value/settlements", lon="74.59", lat="42.87"),
             get(g, "/portal/value/nope", lon="74.59", lat="42.87"),
             get(g, "/static/portal/portal.css"), get(g, "/static/portal/app.js"),
             get(g, "/ogc/static/maps.js"), get(g, "/nope")]
    for dataset_id in DATASET_IDS:
        cases += [get(g, f"/datasets/{dataset_id}"), get(g, f"/datasets/{dataset_id}", lang="ru"),
                  get(g, f"/datasets/{dataset_id}", lang="ky")]
    return cases


def tiles() -> list[Case]:
    g = "tiles"
    paths = [
        "/tiles/elevation/1/relief/6/45/23.png", "/tiles/elevation/1/relief/5/22/11.png",
        "/tiles/elevation/1/values/6/45/23.png", "/tiles/elevation/1/relief/6/10/10.png",
        "/tiles/slope/1/values/7/90/47.png", "/tiles/slope/1/relief/4/11/5.png",
        "/tiles/settlements/1/5/22/11.mvt", "/tiles/settlements/1/7/91/46.mvt",
        "/tiles/airports/1/5/22/11.mvt", "/tiles/kyrgyzstan-boundary/1/5/22/11.mvt",
        "/tiles/mobile-coverage/1/6/45/23.mvt", "/tiles/settlements/1/5/0/0.mvt",
        # errors
        "/tiles/settlements/1/5/22/11.mvt?x=1", "/tiles/settlements/1/15/0/0.mvt",
        "/tiles/settlements/1/5/99/11.mvt", "/tiles/settlements/9/5/22/11.mvt",
        "/tiles/settlements/1/values/5/22/11.png", "/tiles/elevation/1/5/22/11.mvt",
        "/tiles/elevation/1/sepia/5/22/11.png", "/tiles/nope/1/5/22/11.mvt",
        "/tiles/..%2Fcurrent.json/1/5/22/11.mvt",
    ]
    return [Case(g, "GET", path) for path in paths]


def assets() -> list[Case]:
    g = "assets"
    cases = [get(g, "/healthz"), get(g, "/healthz", {"Accept": "text/html"})]
    files = {"airports": ["airports.geojson", "airports.gpkg"],
             "kyrgyzstan-boundary": ["kyrgyzstan-boundary.geojson"],
             "settlements": ["settlements.geojson"], "elevation": ["elevation.tif"],
             "mobile-coverage": ["mobile-coverage.geojson"]}
    for dataset_id, names in sorted(files.items()):
        for name in names:
            cases.append(get(g, f"/assets/{dataset_id}/1/{name}"))
    for dataset_id in DATASET_IDS:
        cases.append(get(g, f"/assets/{dataset_id}/1/manifest.yaml"))
    tif = "/assets/elevation/1/elevation.tif"
    cases += [get(g, tif, {"Range": "bytes=0-99"}), get(g, tif, {"Range": "bytes=-100"}),
              get(g, tif, {"Range": "bytes=1000-1999,3000-3099"}),
              get(g, tif, {"Range": "bytes=999999999-"}),
              get(g, "/assets/slope/1/slope.tif", {"Range": "bytes=0-16383"}),
              Case(g, "HEAD", tif),
              get(g, "/assets/elevation/latest/elevation.tif"),
              get(g, "/assets/settlements/latest/settlements.geojson"),
              get(g, "/assets/elevation/1/record.json"),
              get(g, "/assets/elevation/1/..%2F..%2F..%2Fcurrent.json"),
              get(g, "/assets/Elevation/1/elevation.tif"),
              get(g, "/assets/elevation/99/elevation.tif"), get(g, "/assets/nope/1/nope.tif"),
              get(g, "/assets/settlements/1/settlements.features.sqlite"),
              get(g, "/vendor/maplibre-gl/dist/maplibre-gl.css"),
              get(g, "/vendor/nope/file.js")]
    return cases


def all_cases() -> list[Case]:
    cases = [*ogc_landing(), *ogc_collections(), *ogc_openapi()]
    for dataset_id in VECTOR_IDS:
        cases += items_common(dataset_id)
    cases += [*items_settlements(), *items_airports(), *items_polygons(), *coverages(),
              *processes(), *ogc_errors(), *stac_api(), *stac_search(), *stac_static(),
              *api_reads(), *portal(), *tiles(), *assets()]
    keys = [case.key for case in cases]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"requests listed twice: {duplicates}")
    return cases


CASES = all_cases()
GROUPS = sorted({case.group for case in CASES})
