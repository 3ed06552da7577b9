"""DCAT-AP 3 at /dcat and /datasets/<id>/dcat, from the real server: zero violations of the
DCAT-AP 3.0.1 SHACL shapes (offline, pyshacl), each serialisation the same graph, texts in
ky/ru/en, a distribution per published file whose size and SHA-256 are the file's, and the
services that serve the datasets."""

from __future__ import annotations

import hashlib

import pytest
import requests
import yaml
from rasterio.io import MemoryFile
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, RDF, SH

from catalog.core.languages import LANGUAGES
from tests.conftest import DATASETS, ROOT, SAMPLE_IDS, SERIES_IDS
from tests.metadata_validation import DCAT_AP_SHAPES, VOCABULARY_SHAPES, shacl_violations

DCAT = Namespace("http://www.w3.org/ns/dcat#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
FORMS = {"ttl": ("text/turtle", "turtle"), "rdf": ("application/rdf+xml", "xml"),
         "jsonld": ("application/ld+json", "json-ld")}


def fetch_graph(server, path: str, **kwargs) -> tuple[requests.Response, Graph]:
    answer = server.get(path, **kwargs)
    assert answer.status_code == 200, answer.text
    media_type = answer.headers["Content-Type"].split(";")[0]
    rdflib_format = {media: fmt for media, fmt in FORMS.values()}[media_type]
    return answer, Graph().parse(data=answer.content, format=rdflib_format)


@pytest.fixture(scope="module")
def catalog(server) -> Graph:
    return fetch_graph(server, "/dcat")[1]


def dataset_node(graph: Graph, dataset_id: str) -> URIRef:
    [node] = graph.subjects(DCTERMS.identifier, Literal(dataset_id))
    return node


def test_catalog_has_zero_dcat_ap_3_violations(catalog):
    conforms, _, text = shacl_violations(catalog, *DCAT_AP_SHAPES)
    assert conforms, text


def test_one_dataset_per_live_dataset(catalog):
    [catalog_node] = catalog.subjects(RDF.type, DCAT.Catalog)
    listed = set(catalog.objects(catalog_node, DCAT.dataset))
    assert {dataset_node(catalog, i) for i in SAMPLE_IDS} == listed
    assert set(catalog.subjects(RDF.type, DCAT.Dataset)) == listed


@pytest.mark.parametrize("dataset_id", SAMPLE_IDS)
def test_each_dataset_document_has_zero_violations(server, catalog, dataset_id):
    _, graph = fetch_graph(server, f"/datasets/{dataset_id}/dcat")
    conforms, _, text = shacl_violations(graph, *DCAT_AP_SHAPES)
    assert conforms, text
    assert list(graph.subjects(RDF.type, DCAT.Dataset)) == [dataset_node(catalog, dataset_id)]


@pytest.mark.parametrize("form", FORMS)
def test_each_form_by_parameter_and_by_accept_is_the_same_graph(server, catalog, form):
    media_type, _ = FORMS[form]
    by_parameter, graph = fetch_graph(server, "/dcat", params={"f": form})
    by_accept, accepted = fetch_graph(server, "/dcat", headers={"Accept": media_type})
    for answer in (by_parameter, by_accept):
        assert answer.headers["Content-Type"].split(";")[0] == media_type
    assert isomorphic(graph, catalog)
    assert isomorphic(accepted, catalog)


def test_texts_in_each_language_as_tagged_literals(catalog):
    for dataset_id in SAMPLE_IDS:
        manifest = yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text())
        node = dataset_node(catalog, dataset_id)
        titles = {t.language: str(t) for t in catalog.objects(node, DCTERMS.title)}
        assert titles == {lang: manifest["title"][lang].strip() for lang in LANGUAGES}
        keywords = {(k.language, str(k)) for k in catalog.objects(node, DCAT.keyword)}
        assert keywords == {(lang, word) for lang in LANGUAGES
                            for word in manifest["keywords"][lang]}


def test_licence_extents_and_provenance(catalog):
    for dataset_id in SAMPLE_IDS:
        manifest = yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text())
        node = dataset_node(catalog, dataset_id)
        licences = {catalog.value(d, DCTERMS.license)
                    for d in catalog.objects(node, DCAT.distribution)}
        assert len(licences) == 1 and manifest["licence"] in str(licences.pop())
        boxes = [catalog.value(place, DCAT.bbox) for place in catalog.objects(node, DCTERMS.spatial)
                 if catalog.value(place, DCAT.bbox) is not None]
        assert len(boxes) == 1 and "POLYGON((" in str(boxes[0])
        period = catalog.value(node, DCTERMS.temporal)
        assert str(catalog.value(period, DCAT.startDate)) == str(
            manifest["temporal_extent"]["start"])
        statement = catalog.value(node, DCTERMS.provenance)
        text = str(catalog.value(statement, URIRef("http://www.w3.org/2000/01/rdf-schema#label")))
        assert manifest["provenance"]["method"].strip() in text
        assert f"Nature of the data: {manifest['nature']}." in text


def test_a_distribution_per_file_with_its_size_and_checksum(server, catalog):
    for dataset_id in SAMPLE_IDS:
        node = dataset_node(catalog, dataset_id)
        downloads = 0
        for distribution in catalog.objects(node, DCAT.distribution):
            url = catalog.value(distribution, DCAT.downloadURL)
            if url is None:  # the OGC API distribution
                assert catalog.value(distribution, DCAT.accessService) is not None
                assert server.get(str(catalog.value(distribution, DCAT.accessURL))
                                  .removeprefix(server.url)).status_code == 200
                continue
            downloads += 1
            body = requests.get(str(url), timeout=60).content
            checksum = catalog.value(distribution, SPDX.checksum)
            assert str(catalog.value(checksum, SPDX.checksumValue)) == \
                hashlib.sha256(body).hexdigest()
            assert int(catalog.value(distribution, DCAT.byteSize)) == len(body)
        assets, page = set(), f"/stac/collections/{dataset_id}/items"
        while page:  # every page: a time series has more items than one page holds
            stac = server.get(page).json()
            assets |= {a["href"] for item in stac["features"] for a in item["assets"].values()}
            page = next((link["href"].removeprefix(server.url) for link in stac["links"]
                         if link["rel"] == "next"), None)
        # A time series also has its stacked layer, a file no STAC item lists.
        assert downloads == len(assets) + (dataset_id in SERIES_IDS)


@pytest.mark.parametrize("dataset_id", SERIES_IDS)
def test_a_time_series_stacked_layer_is_a_distribution_of_its_own(catalog, dataset_id):
    """Was: the twelve monthly files only; the layer the OGC API serves (the months stacked as
    bands) could be downloaded but no distribution named it."""
    node = dataset_node(catalog, dataset_id)
    distributions = list(catalog.objects(node, DCAT.distribution))
    [layer] = [d for d in distributions if str(d).endswith("#distribution-layer")]
    url = str(catalog.value(layer, DCAT.downloadURL))
    assert url.endswith(f"/{dataset_id}-layer.tif")
    assert str(catalog.value(layer, DCAT.accessURL)) == url
    assert str(catalog.value(layer, DCAT.mediaType)) == \
        "https://www.iana.org/assignments/media-types/image/tiff"
    assert catalog.value(layer, DCTERMS["format"]) is not None
    month = next(d for d in distributions if str(d).endswith("-01-data"))
    assert catalog.value(layer, DCTERMS.license) == catalog.value(month, DCTERMS.license)
    body = requests.get(url, timeout=60).content
    assert int(catalog.value(layer, DCAT.byteSize)) == len(body)
    with MemoryFile(body) as memory, memory.open() as stacked:
        assert stacked.count == 12  # one band per month


def test_services_answer_and_serve_every_dataset(server, catalog):
    services = set(catalog.subjects(RDF.type, DCAT.DataService))
    assert len(services) == 2
    for service in services:
        assert server.get(str(catalog.value(service, DCAT.endpointURL))
                          .removeprefix(server.url)).status_code == 200
        served = set(catalog.objects(service, DCAT.servesDataset))
        assert served == {dataset_node(catalog, i) for i in SAMPLE_IDS}


def test_eu_vocabularies_are_used_where_the_catalog_has_a_value(catalog):
    """The EU portal's vocabulary shapes also want an EU corporate body as publisher, a named
    place instead of a bounding box, and an https SPDX IRI: none of which a Kyrgyz catalog with
    GeoDCAT-AP extents can give. Every other property they check passes."""
    _, report, _ = shacl_violations(catalog, *DCAT_AP_SHAPES, VOCABULARY_SHAPES)
    [report_node] = report.subjects(RDF.type, SH.ValidationReport)
    paths = {report.value(result, SH.resultPath)
             for result in report.objects(report_node, SH.result)}  # not their details
    assert paths <= {DCTERMS.publisher, DCTERMS.spatial, SPDX.algorithm}, paths


@pytest.mark.parametrize("path, params, status, named", [
    ("/dcat", {"f": "xml"}, 400, "f"),
    ("/dcat", {"format": "ttl"}, 400, "format"),
    ("/dcat", [("f", "ttl"), ("f", "rdf")], 400, "f"),
    ("/datasets/settlements/dcat", {"f": "json"}, 400, "f"),
    ("/datasets/no-such-dataset/dcat", {}, 404, "no-such-dataset"),
])
def test_bad_requests_answer_json_naming_the_problem(server, path, params, status, named):
    answer = server.get(path, params=params)
    assert answer.status_code == status
    assert named in answer.json()["description"]


def test_accept_without_an_rdf_type_gets_turtle(server):
    answer = server.get("/dcat", headers={"Accept": "text/html"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/turtle")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_dataset_pages_link_the_dcat_iso_and_records_forms(server, lang):
    from lxml import html

    page = server.get("/datasets/settlements", params={"lang": lang})
    assert page.status_code == 200
    section = html.fromstring(page.content).get_element_by_id("metadata")
    links = {a.get("type"): a.get("href") for a in section.iter("a")}
    assert set(links) == {"text/turtle", "application/rdf+xml", "application/ld+json",
                          "application/vnd.iso.19139+xml", "application/geo+json",
                          "text/html"}  # the record's page (issue 15, Records HTML)
    for media_type, href in links.items():
        answer = server.get(href.removeprefix(server.url))
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].split(";")[0] == media_type
    assert f'<html lang="{lang}">' in server.get(links["text/html"].removeprefix(
        server.url)).text  # the record's page in the language of the dataset page
    strings = yaml.safe_load((ROOT / "catalog/portal/strings.yml").read_text())
    assert strings["ds.metadata"][lang] in section.text_content()


@pytest.mark.parametrize("path", ["/dcat", "/datasets/settlements/dcat",
                                  "/datasets/settlements/metadata.xml"])
def test_harvesters_in_browsers_may_read_the_metadata(server, path):
    answer = server.get(path, headers={"Origin": "https://portal.example"})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_the_dataset_page_itself_gets_no_cors_header(server):
    answer = server.get("/datasets/settlements", headers={"Origin": "https://portal.example"})
    assert "Access-Control-Allow-Origin" not in answer.headers
