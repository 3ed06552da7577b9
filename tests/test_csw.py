"""CSW at /csw (pycsw 2.6.2 in .venv-csw, started by `taza serve`), through OWSLib's CSW client
sending the GetRecords QGIS MetaSearch sends: free text as csw:AnyText, the map extent as a
BBOX, full records; over the same records as /dcat and the OGC API Records."""

from __future__ import annotations

import pytest
from owslib.csw import CatalogueServiceWeb
from owslib.fes import BBox, PropertyIsLike

from tests.conftest import SAMPLE_IDS


@pytest.fixture(scope="module")
def catalogue(server) -> CatalogueServiceWeb:
    return CatalogueServiceWeb(f"{server.url}/csw", timeout=60)


def metasearch(catalogue: CatalogueServiceWeb, text: str | None = None,
               bbox: list[float] | None = None, **kwargs) -> list[str]:
    """What QGIS MetaSearch sends (its search_backend: CSW 2.0.2 getrecords2, esn full)."""
    constraints = []
    if text:
        constraints.append(PropertyIsLike("csw:AnyText", f"%{text}%"))
    if bbox:
        constraints.append(BBox(bbox))
    if len(constraints) > 1:
        constraints = [constraints]  # OWSLib: a list inside the list is an AND
    catalogue.getrecords2(constraints=constraints, maxrecords=50, esn="full", **kwargs)
    return sorted(catalogue.records)


def test_capabilities(catalogue):
    assert catalogue.identification.type == "CSW"
    assert "GetRecords" in [operation.name for operation in catalogue.operations]


def test_every_dataset_is_a_record(catalogue):
    assert metasearch(catalogue) == sorted(SAMPLE_IDS)


def test_text_search(catalogue):
    assert metasearch(catalogue, "airport") == ["airports"]
    assert metasearch(catalogue, "no such word anywhere") == []


def test_bbox_and_text(catalogue):
    # MetaSearch sends the map extent as urn:ogc:def:crs:EPSG::4326, latitude first
    # (miny, minx, maxy, maxx), OWSLib's BBox default CRS.
    assert metasearch(catalogue, bbox=[10.0, 10.0, 11.0, 11.0]) == []
    assert metasearch(catalogue, bbox=[39.0, 69.0, 44.0, 80.0]) == sorted(SAMPLE_IDS)
    assert metasearch(catalogue, "airport", bbox=[39.0, 69.0, 44.0, 80.0]) == ["airports"]
    assert metasearch(catalogue, "airport", bbox=[-44.0, -80.0, -39.0, -69.0]) == []


def test_full_record_links_the_downloads(catalogue, server):
    catalogue.getrecordbyid(id=["settlements"], esn="full")
    record = catalogue.records["settlements"]
    assert record.title == "Settlements of Kyrgyzstan"
    urls = [ref["url"] for ref in record.references]
    assert any("/assets/settlements/" in url for url in urls)
    # Each reference names its protocol (a comma in a resource's name used to shift it).
    assert {ref["scheme"] for ref in record.references} == {
        "WWW:DOWNLOAD-1.0-http--download", "OGC:API", "STAC:Collection", "WWW:LINK"}
    assert all(url.startswith(server.url) for url in urls)


def test_kyrgyz_and_russian_keywords_are_searched(catalogue):
    """The ISO documents carry the ky and ru keywords (PT_FreeText), and csw:AnyText finds
    them: 'gazetteer' is a keyword of the settlements only, in each language."""
    assert metasearch(catalogue, "газеттир") == ["settlements"]
    assert metasearch(catalogue, "газеттир") == metasearch(catalogue, "gazetteer")


def test_iso_output_schema(catalogue):
    catalogue.getrecordbyid(id=["elevation"],
                            outputschema="http://www.isotc211.org/2005/gmd")
    [identification] = catalogue.records["elevation"].identification
    assert identification.title.startswith("Elevation")


def test_the_config_parameter_is_never_forwarded(server):
    answer = server.get("/csw", params={"service": "CSW", "request": "GetCapabilities",
                                        "config": "/etc/passwd"})
    assert answer.status_code == 400 and "config" in answer.json()["description"]
