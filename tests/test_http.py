"""HTTP behaviour of the running server: health, landing page, assets, errors, limits."""

from __future__ import annotations

import re

import pytest

from tests.conftest import SAMPLE_IDS


def test_healthz(server):
    body = server.get("/healthz").json()
    assert body["status"] == "ok" and body["datasets"] == len(SAMPLE_IDS)


def test_landing_page_links_everything_and_loads_nothing_external(server):
    page = server.get("/")
    assert page.status_code == 200
    for dataset_id in SAMPLE_IDS:
        assert f'id="dataset-{dataset_id}"' in page.text
    for target in ("/ogc", "/stac/catalog.json", "/ogc/openapi"):
        assert f'href="{target}' in page.text
    # Scripts, styles and images come from this server only.
    for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if url.startswith(("http://", "https://", "//")):
            assert not re.search(r'<(script|link|img)[^>]+' + re.escape(url), page.text), url


def test_cog_assets_answer_range_requests(server):
    response = server.get("/assets/elevation/latest/elevation.tif", allow_redirects=True,
                          headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert len(response.content) == 100 and response.content[:2] in (b"II", b"MM")
    assert response.headers["Content-Range"].startswith("bytes 0-99/")


# Asset paths that must answer 404: files a record does not list, traversal, unknown versions
# (tests/test_object_store.py asks the same of files in a bucket).
REFUSED_ASSET_PATHS = [
    "/assets/elevation/1/record.json",
    "/assets/elevation/1/..%2F..%2F..%2Fcurrent.json",
    "/assets/../current.json",
    "/assets/Elevation/1/elevation.tif",
    "/assets/elevation/99/elevation.tif",
    "/assets/nope/1/nope.tif",
]


@pytest.mark.parametrize("path", [
    *REFUSED_ASSET_PATHS,
    "/stac/../current.json",
    "/stac/..%2F..%2Fcurrent.json",
    "/stac/nothing.json",
])
def test_no_path_traversal_or_unpublished_files(server, path):
    response = server.get(path, allow_redirects=False)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("query,word", [
    ("colour=red", "colour"),
    ("limit=0", "limit"),
    ("limit=100000", "limit"),
    ("limit=abc", "limit"),
    ("offset=-1", "offset"),
    ("bbox=1,2,3", "bbox"),
    ("bbox=80,45,70,40", "bbox"),
    ("sortby=nonexistent", "sortby"),
    ("properties=nonexistent", "properties"),
    ("filter=population%20%3E", "CQL"),
    ("filter=nonexistent%20%3D%201", "nonexistent"),
    ("crs=EPSG:9999", "crs"),
    ("datetime=notadate", "datetime"),
])
def test_bad_item_queries_answer_400_naming_the_problem(server, query, word):
    response = server.get(f"/ogc/collections/settlements/items?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert word.lower() in body["description"].lower()


def test_unknown_parameters_on_other_endpoints_answer_400(server):
    for path in ("/ogc/collections?foo=1", "/ogc/conformance?foo=1",
                 "/ogc/collections/elevation/coverage?scale-factor=2",
                 "/ogc/collections/settlements/items/1528249?foo=1"):
        response = server.get(path)
        assert response.status_code == 400, path
        assert "unknown query parameter" in response.json()["description"]


def test_conformance_declares_no_transactions(server):
    classes = server.get("/ogc/conformance").json()["conformsTo"]
    assert not [c for c in classes if "ogcapi-features-4" in c]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes


def test_coverage_collections_are_marked_for_gdal(server):
    collections = server.get("/ogc/collections").json()["collections"]
    kinds = {c["id"]: c.get("layerDataType") for c in collections}
    assert kinds["elevation"] == kinds["slope"] == "Coverage"
    assert kinds["settlements"] is None


def test_multilingual_titles(server):
    russian = server.get("/ogc/collections/settlements?lang=ru").json()["title"]
    kyrgyz = server.get("/ogc/collections/settlements?lang=ky").json()["title"]
    english = server.get("/ogc/collections/settlements?lang=en").json()["title"]
    assert len({russian, kyrgyz, english}) == 3
    assert re.search("[А-Яа-я]", russian) and re.search("[А-Яа-яңөү]", kyrgyz)


@pytest.mark.parametrize("path", [
    "/ogc?f=html", "/ogc/collections?f=html", "/ogc/collections/settlements/items?f=html",
    "/ogc/collections/settlements/items/1528249?f=html", "/ogc/collections/elevation?f=html",
    "/ogc/collections/elevation/coverage?f=html", "/ogc/openapi?f=html",
])
def test_ogc_html_pages_load_everything_from_this_server(server, path):
    page = server.get(path)
    assert page.status_code == 200
    loaded = re.findall(r"<(?:script|link|img)\b[^>]*(?:src|href)=\"([^\"]+)\"", page.text)
    assert loaded, "the page should load its scripts and styles"
    for url in loaded:
        assert not url.startswith(("//", "https://")), url
        if url.startswith("http://"):
            assert url.startswith(server.url), url
        if "/vendor/" in url:
            assert server.get(url[url.index("/vendor/"):]).status_code == 200, url
