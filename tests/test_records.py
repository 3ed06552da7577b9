"""OGC API - Records at /ogc/collections/metadata, through OWSLib's Records client against the
real server: text, bbox, theme, keywords, datetime, sortby, CQL2 filters and paging; each
record links its OGC API collection, STAC collection, downloads, DCAT and ISO forms."""

from __future__ import annotations

import pytest
import yaml
from owslib.ogcapi.records import Records

from tests.conftest import DATASETS, RASTER_IDS, SAMPLE_IDS

COLLECTION = "metadata"
RECORDS_CONF = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf"


@pytest.fixture(scope="module")
def client(server) -> Records:
    return Records(f"{server.url}/ogc")


def found(client: Records, **query) -> list[str]:
    query.setdefault("limit", 100)  # every sample on one page
    return [record["id"] for record in client.collection_items(COLLECTION, **query)["features"]]


def manifest(dataset_id: str) -> dict:
    return yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text())


def samples(themes: tuple[str, ...], raster: bool | None = None) -> list[str]:
    """The sample datasets of these themes (and of this kind), from their manifests."""
    return sorted(d for d in SAMPLE_IDS if manifest(d)["theme"] in themes
                  and (raster is None or (d in RASTER_IDS) == raster))


def natured(nature: str) -> list[str]:
    """The sample datasets whose manifests say this `nature` (observed or modelled)."""
    return sorted(d for d in SAMPLE_IDS if manifest(d)["nature"] == nature)


def test_the_catalog_is_a_record_collection(client):
    assert client.records() == [COLLECTION]
    collection = client.collection(COLLECTION)
    assert collection["itemType"] == "record"
    conformance = client.conformance()["conformsTo"]
    assert f"{RECORDS_CONF}/sorting" in conformance and f"{RECORDS_CONF}/json" in conformance
    assert f"{RECORDS_CONF}/html" in conformance  # pages: tests/test_ogc_pages.py


def test_every_dataset_is_a_record(client):
    page = client.collection_items(COLLECTION, limit=100)
    assert sorted(found(client, limit=100)) == sorted(SAMPLE_IDS)
    assert page["numberMatched"] == len(SAMPLE_IDS)


def mentioning(*terms: str) -> list[str]:
    """The sample datasets whose manifest texts contain one of the terms (case folded)."""
    hits = []
    for dataset_id in SAMPLE_IDS:
        manifest = yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text())
        texts = [*manifest["title"].values(), *manifest["description"].values(),
                 *(word for words in manifest["keywords"].values() for word in words)]
        if any(term.casefold() in text.casefold() for term in terms for text in texts):
            hits.append(dataset_id)
    return hits


@pytest.mark.parametrize("q, expected", [
    ("airport", ["airports"]),
    ("аэропорт", ["airports"]),  # Russian
    ("аэропорттор", ["airports"]),  # Kyrgyz
    ("GEBCO,airport", mentioning("GEBCO", "airport")),  # terms OR-ed
    ("no such word anywhere", []),
])
def test_text_search_in_every_language(client, q, expected):
    assert sorted(found(client, q=q)) == expected
    assert expected == mentioning(*q.split(","))


def test_bbox(client):
    assert sorted(found(client, bbox=[74.0, 42.0, 75.0, 43.0])) == sorted(SAMPLE_IDS)
    assert found(client, bbox=[10.0, 10.0, 11.0, 11.0]) == []


def test_theme_and_keywords(client):
    assert sorted(found(client, theme="land")) == samples(("land",))
    assert sorted(found(client, theme="coverage,infrastructure")) == samples(
        ("coverage", "infrastructure"))
    assert "settlements" in samples(("infrastructure",))
    assert found(client, keywords="газеттир") == ["settlements"]


def test_datetime_against_the_temporal_extent(client):
    ongoing = found(client, datetime_="2100-01-01T00:00:00Z/..")
    assert ongoing and set(ongoing) < set(SAMPLE_IDS)  # extents without an end only
    assert found(client, datetime_="1900-01-01/1900-12-31") == []


def test_sortby(client):
    ascending = found(client, sortby=("title", "asc"))
    descending = found(client, sortby=("title", "desc"))
    assert descending == list(reversed(ascending)) and len(ascending) == len(SAMPLE_IDS)


@pytest.mark.parametrize("cql, expected", [
    ("kind = 'raster'", sorted(RASTER_IDS)),
    ("theme IN ('land') AND kind <> 'raster'", samples(("land",), raster=False)),
    ("CASEI(title) LIKE '%airport%'", ["airports"]),
    ("S_INTERSECTS(geometry, POLYGON((10 10, 11 10, 11 11, 10 11, 10 10)))", []),
    ("nature = 'modelled'", natured("modelled")),
    ("nature = 'observed'", natured("observed")),
])
def test_cql2_filter(client, cql, expected):
    assert sorted(found(client, filter=cql)) == expected


def test_the_filter_expectations_are_not_vacuous():
    """Both natures and both kinds occur among the samples, so the filters above split them."""
    assert "mobile-coverage" in natured("modelled") and "elevation" in natured("observed")
    assert sorted(natured("modelled") + natured("observed")) == sorted(SAMPLE_IDS)
    assert {"elevation", "slope"} < set(RASTER_IDS) < set(SAMPLE_IDS)


def test_paging_links(client):
    first = client.collection_items(COLLECTION, limit=4)
    assert first["numberReturned"] == 4 and first["numberMatched"] == len(SAMPLE_IDS)
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert "offset=4" in following
    second = client.collection_items(COLLECTION, limit=100, offset=4)
    assert second["numberReturned"] == len(SAMPLE_IDS) - 4
    seen = [r["id"] for r in first["features"] + second["features"]]
    assert sorted(seen) == sorted(SAMPLE_IDS)


def test_a_record_links_its_collections_downloads_and_metadata(server, client):
    record = client.collection_item(COLLECTION, "settlements")
    assert record["properties"]["type"] == "dataset"
    targets = {(link["rel"], link["type"]): link["href"] for link in record["links"]}
    assert targets[("related", "application/json")]  # OGC API and STAC collections
    related = [link["href"] for link in record["links"] if link["rel"] == "related"]
    assert any(href.endswith("/ogc/collections/settlements") for href in related)
    assert any(href.endswith("/stac/collections/settlements") for href in related)
    enclosures = [link for link in record["links"] if link["rel"] == "enclosure"]
    assert enclosures
    followed = [*enclosures, *(other for other in record["links"]
                               if other["rel"] in ("related", "describedby"))]
    for link in followed:
        answer = server.get(link["href"].removeprefix(server.url), stream=True)
        assert answer.status_code == 200, link


def test_texts_in_the_language_asked(server):
    ky = server.get(f"/ogc/collections/{COLLECTION}/items/settlements", params={"lang": "ky"})
    assert ky.json()["properties"]["title"] == "Кыргызстандын калктуу конуштары"
    assert ky.headers["Content-Language"] == "ky-KG"


@pytest.mark.parametrize("params, named", [
    ({"bbox": "1,2"}, "bbox"), ({"sortby": "colour"}, "sortby"),
    ({"filter": "colour = 'red'"}, "filter"), ({"limit": "0"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"datetime": "yesterday"}, "datetime"),
    ({"colour": "red"}, "colour"), ({"f": "xml"}, "f"),
    ({"filter-lang": "cql2-json"}, "filter-lang"), ({"q": " , "}, "q"),
    # Past 4,300 digits Python's int() raises instead of answering: it was a 500.
    ({"limit": "9" * 5000}, "limit"), ({"offset": "1" * 4400}, "offset"),
    ({"limit": "²"}, "limit"),
])
def test_bad_parameters_answer_400_naming_them(server, params, named):
    answer = server.get(f"/ogc/collections/{COLLECTION}/items", params=params)
    assert answer.status_code == 400
    assert named in answer.json()["description"]


def test_unknown_record_is_404(server):
    answer = server.get(f"/ogc/collections/{COLLECTION}/items/no-such-dataset")
    assert answer.status_code == 404


@pytest.mark.parametrize("path", ["", "/items", "/items/settlements"])
def test_browsers_get_html_and_clients_json(server, path):
    """A browser's Accept (or f=html) gets the page; no Accept, JSON's or f=json gets JSON."""
    url = f"/ogc/collections/{COLLECTION}{path}"
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = server.get(url, headers={"Accept": browser_accept})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Accept" in page.headers["Vary"]
    for headers, params in (({}, {}), ({"Accept": "application/json"}, {}),
                            ({"Accept": browser_accept}, {"f": "json"})):
        answer = server.get(url, headers=headers, params=params)
        assert answer.status_code == 200 and "json" in answer.headers["Content-Type"]
        assert answer.json()



def test_json_only_documents_answer_browsers_with_json(server):
    """Queryables and sortables have no page: a browser's Accept gets their JSON (the record
    collection's page links them), and only an explicit f=html is refused."""
    for name in ("queryables", "sortables"):
        url = f"/ogc/collections/{COLLECTION}/{name}"
        answer = server.get(url, headers={"Accept": "text/html,*/*;q=0.8"})
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("application/schema+json")
        assert server.get(url, params={"f": "html"}).status_code == 400
