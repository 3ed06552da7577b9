"""ISO 19139 at /datasets/<id>/metadata.xml, from the real server: valid against the ISO 19139
XSDs offline, with the manifest's texts (Russian and Kyrgyz as PT_FreeText), extent and
downloads."""

from __future__ import annotations

import pytest
import yaml
from lxml import etree

from catalog.core.languages import LANGUAGES
from tests.conftest import DATASETS, SAMPLE_IDS, SERIES_IDS
from tests.metadata_validation import iso19139_schema

NS = {"gmd": "http://www.isotc211.org/2005/gmd", "gco": "http://www.isotc211.org/2005/gco"}
ISO_639_2 = {"eng": "en", "rus": "ru", "kir": "ky"}
IDENTIFICATION = "gmd:identificationInfo/gmd:MD_DataIdentification"


def iso_document(server, dataset_id: str) -> etree._Element:
    answer = server.get(f"/datasets/{dataset_id}/metadata.xml")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/vnd.iso.19139+xml")
    return etree.fromstring(answer.content, etree.XMLParser(no_network=True,
                                                            resolve_entities=False))


@pytest.mark.parametrize("dataset_id", SAMPLE_IDS)
def test_valid_against_the_iso_19139_schemas(server, dataset_id):
    schema = iso19139_schema()
    document = iso_document(server, dataset_id)
    assert schema.validate(document), "\n".join(str(e) for e in schema.error_log)


@pytest.mark.parametrize("dataset_id", SAMPLE_IDS)
def test_texts_extent_and_downloads_from_the_manifest(server, dataset_id):
    manifest = yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text())
    document = iso_document(server, dataset_id)
    assert document.findtext("gmd:fileIdentifier/gco:CharacterString", namespaces=NS) == \
        dataset_id
    title = document.find(f"{IDENTIFICATION}/gmd:citation/gmd:CI_Citation/gmd:title", NS)
    locales = {locale.get("id"): locale.findtext(
        "gmd:languageCode/gmd:LanguageCode", namespaces=NS)
        for locale in document.iterfind("gmd:locale/gmd:PT_Locale", NS)}
    texts = {"en": title.findtext("gco:CharacterString", namespaces=NS)}
    for text in title.iterfind("gmd:PT_FreeText/gmd:textGroup/gmd:LocalisedCharacterString", NS):
        texts[ISO_639_2[locales[text.get("locale").removeprefix("#")]]] = text.text
    assert texts == {lang: manifest["title"][lang] for lang in LANGUAGES}
    keywords: dict[str, list[str]] = {}
    for block in document.iterfind(f"{IDENTIFICATION}/gmd:descriptiveKeywords/"
                                   "gmd:MD_Keywords", NS):
        for keyword in block.iterfind("gmd:keyword", NS):
            english = keyword.findtext("gco:CharacterString", namespaces=NS)
            if english is not None:
                keywords.setdefault("en", []).append(english)
            for text in keyword.iterfind("gmd:PT_FreeText/gmd:textGroup/"
                                         "gmd:LocalisedCharacterString", NS):
                language = ISO_639_2[locales[text.get("locale").removeprefix("#")]]
                keywords.setdefault(language, []).append(text.text)
    assert keywords == {lang: manifest["keywords"][lang] for lang in LANGUAGES}
    box = document.find(f"{IDENTIFICATION}/gmd:extent/gmd:EX_Extent/gmd:geographicElement/"
                        "gmd:EX_GeographicBoundingBox", NS)
    collection = server.get(f"/stac/collections/{dataset_id}").json()
    west, south, east, north = collection["extent"]["spatial"]["bbox"][0]
    assert float(box.findtext("gmd:westBoundLongitude/gco:Decimal", namespaces=NS)) == \
        pytest.approx(west)
    assert float(box.findtext("gmd:northBoundLatitude/gco:Decimal", namespaces=NS)) == \
        pytest.approx(north)
    downloads = [resource.findtext("gmd:linkage/gmd:URL", namespaces=NS)
                 for resource in document.iterfind(".//gmd:CI_OnlineResource", NS)
                 if resource.findtext("gmd:protocol/gco:CharacterString", namespaces=NS)
                 == "WWW:DOWNLOAD-1.0-http--download"]
    assert downloads
    for url in downloads:
        assert server.get(url.removeprefix(server.url), stream=True).status_code == 200


@pytest.mark.parametrize("dataset_id", SERIES_IDS)
def test_a_time_series_lists_every_month_and_its_layer_as_downloads(server, dataset_id):
    """Was: one download for the twelve monthly files (they share the asset key 'data', each
    link overwrote the one before) beside the stacked layer."""
    document = iso_document(server, dataset_id)
    options = document.findall("gmd:distributionInfo/gmd:MD_Distribution/gmd:transferOptions/"
                               "gmd:MD_DigitalTransferOptions/gmd:onLine/gmd:CI_OnlineResource",
                               NS)
    downloads = {resource.findtext("gmd:linkage/gmd:URL", namespaces=NS).rsplit("/", 1)[1]:
                 resource.findtext("gmd:name/gco:CharacterString", namespaces=NS)
                 for resource in options
                 if resource.findtext("gmd:protocol/gco:CharacterString", namespaces=NS)
                 == "WWW:DOWNLOAD-1.0-http--download"}
    months = {f"{dataset_id}-{month:02d}.tif" for month in range(1, 13)}
    assert set(downloads) == months | {f"{dataset_id}-layer.tif"}
    assert len(set(downloads.values())) == 13  # each named apart


def test_unknown_dataset_and_parameters_are_refused(server):
    missing = server.get("/datasets/no-such-dataset/metadata.xml")
    assert missing.status_code == 404 and "no-such-dataset" in missing.json()["description"]
    extra = server.get("/datasets/settlements/metadata.xml", params={"f": "json"})
    assert extra.status_code == 400 and "f" in extra.json()["description"]
