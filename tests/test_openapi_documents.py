"""The OpenAPI documents of /ogc, /stac and /api (issue 11, item 10): valid OpenAPI 3.0,
self-contained (no $ref outside the document: offline clients and the fuzz tests resolve
nothing), and the /api one describes every route of the stewards' blueprint and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pygeoapi
import pytest
import requests
from flask import Flask

from catalog.discovery.routes import ITEMS_PARAMETERS
from catalog.http_policy import MAX_REQUEST_LINE, METHODS
from catalog.jobs import open_jobs
from catalog.stewards.api import create_blueprint
from catalog.store import CatalogStore
from tests.conftest import NUMERIC_RASTER_IDS, RASTER_IDS, SAMPLE_IDS

DOCUMENTS = {"ogc": "/ogc/openapi?f=json", "stac": "/stac/api", "api": "/api/openapi.json"}
# The OpenAPI 3.0 meta-schema, shipped inside the pygeoapi package (no download).
OPENAPI_SCHEMA = Path(pygeoapi.__file__).parent / "resources/schemas/openapi/openapi-3.0.x.json"
FLASK_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@pytest.fixture(scope="module")
def documents(server) -> dict[str, dict]:
    return {name: requests.get(server.url + path, timeout=60).json()
            for name, path in DOCUMENTS.items()}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_are_valid_openapi_3(documents, name):
    schema = json.loads(OPENAPI_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(documents[name], schema)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_are_self_contained(documents, name):
    """pygeoapi's references to schemas.opengis.net and GitHub are replaced by local ones."""
    external = sorted(set(_external_references(documents[name])))
    assert external == [], external
    assert "x-unresolved" not in documents[name].get("info", {})
    local = {r for r in _references(documents[name]) if r.startswith("#/")}
    for reference in local:  # every local reference resolves
        target = documents[name]
        for part in reference[2:].split("/"):
            target = target[part]


def test_ogc_document_describes_what_the_server_refuses(documents):
    paths = documents["ogc"]["paths"]
    assert "get" not in paths.get("/jobs", {})  # the job list is refused (404)
    items = paths["/collections/settlements/items"]
    parameters = {p.get("name") or p.get("$ref") for p in items["get"]["parameters"]}
    assert "#/components/parameters/vendorSpecificParameters" not in parameters  # 400 here
    assert {"filter", "filter-lang", "sortby", "name", "population"} <= parameters
    assert {"413", "415", "400"} <= set(items["post"]["responses"])
    coverage = paths["/collections/elevation/coverage"]["get"]["responses"]
    assert coverage["200"] == {"$ref": "#/components/responses/Coverage"}  # not "Features"
    assert "413" in coverage
    assert not any("500" in operation.get("responses", {})
                   for operations in paths.values() for operation in operations.values()
                   if isinstance(operation, dict))


def test_ogc_execute_bodies_are_each_process_inputs(server, documents):
    """Each process's execute body lists its own inputs (from the process description), so
    clients and the fuzz tests send real inputs, not an opaque object."""
    for process_id in ("zonal-statistics", "coverage-statistics", "site-screening"):
        described = server.get(f"/ogc/processes/{process_id}").json()["inputs"]
        body = documents["ogc"]["paths"][f"/processes/{process_id}/execution"]["post"]
        schema = body["requestBody"]["content"]["application/json"]["schema"]
        inputs = schema["properties"]["inputs"]
        assert set(inputs["properties"]) == set(described)
        assert inputs["additionalProperties"] is False
        assert set(inputs.get("required", [])) == {name for name, spec in described.items()
                                                   if spec.get("minOccurs", 1) >= 1}
    zonal = documents["ogc"]["paths"]["/processes/zonal-statistics/execution"]["post"]
    raster = zonal["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "inputs"]["properties"]["raster"]
    assert raster == {"type": "string", "enum": list(NUMERIC_RASTER_IDS)}


def test_api_document_is_linked_and_describes_every_route(server, documents, tmp_path):
    index = server.get("/api").json()
    link = next(link for link in index["links"] if link["rel"] == "service-desc")
    assert link["href"] == "/api/openapi.json" and index["openapi"] == link["href"]
    served = server.get("/api/openapi.json")
    assert served.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    documented = {(method.upper(), path) for path, operations in
                  documents["api"]["paths"].items() for method in operations}
    assert documented == set(_api_routes(tmp_path))


def test_api_document_lists_the_status_codes_of_its_errors(documents):
    """Every operation documents 400 (unknown parameters) and 401 (a wrong token); those that
    read a body document 413 and 415, and those that change something 503 (refused rather than
    made without its audit entry); private ones need a token or a session."""
    for path, operations in documents["api"]["paths"].items():
        for method, operation in operations.items():
            responses = set(operation["responses"])
            assert {"400", "401"} <= responses, (method, path)
            if "requestBody" in operation:
                assert {"413", "415"} <= responses, (method, path)
            if method != "get":
                assert "503" in responses, (method, path)
    me = documents["api"]["paths"]["/me"]["get"]
    assert me["security"] == [{"bearer": []}, {"session": []}]
    datasets = documents["api"]["paths"]["/datasets"]["get"]
    assert {} in datasets["security"]  # public: a token is optional


def _api_routes(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(method, OpenAPI path under /api) of every route of the stewards' blueprint."""
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(CatalogStore(tmp_path), open_jobs(tmp_path)))
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("stewards_api.") and rule.rule != "/api/":
            path = FLASK_PARAMETER.sub(r"{\1}", rule.rule).removeprefix("/api") or "/"
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                yield method, path


def _references(node) -> Iterator[str]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if isinstance(current.get("$ref"), str):
                yield current["$ref"]
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _external_references(node) -> Iterator[str]:
    return (r for r in _references(node) if not r.startswith("#"))


def test_ogc_document_describes_the_records_routes(server, documents):
    """OGC API - Records (issue 15): its five paths are in /ogc/openapi, the items operation
    lists exactly the parameters the route takes, and a request built from the document's
    own values is answered."""
    paths = documents["ogc"]["paths"]
    base = "/collections/metadata"
    for path in (base, f"{base}/items", f"{base}/items/{{recordId}}", f"{base}/queryables",
                 f"{base}/sortables"):
        assert {"200", "400", "404"} <= set(paths[path]["get"]["responses"]), path
    parameters = paths[f"{base}/items"]["get"]["parameters"]
    names = {p.get("name") or p["$ref"].rsplit("/", 1)[-1] for p in parameters}
    assert names == set(ITEMS_PARAMETERS)
    by_name = {p["name"]: p["schema"] for p in parameters if "name" in p}
    answer = requests.get(f"{server.url}/ogc{base}/items", timeout=60, params={
        "sortby": by_name["sortby"]["items"]["enum"][-1], "type": "dataset",
        "filter-lang": by_name["filter-lang"]["enum"][-1],
        "filter": '{"op": "=", "args": [{"property": "kind"}, "raster"]}',
        "limit": by_name["limit"]["maximum"]})
    assert answer.status_code == 200, answer.text
    rasters = answer.json()
    assert rasters["numberMatched"] == len(RASTER_IDS) < len(SAMPLE_IDS)  # the filter applied
    assert sorted(record["id"] for record in rasters["features"]) == sorted(RASTER_IDS)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_operation_lists_the_414_of_a_request_line_too_long(server, documents, name):
    """The HTTP server answers 414 to any operation's request line above MAX_REQUEST_LINE:
    each document says so (schemathesis' conformance check found it undocumented)."""
    operations = [(path, method, operation) for path, item in documents[name]["paths"].items()
                  for method, operation in item.items() if method in METHODS]
    assert operations
    assert [f"{method} {path}" for path, method, operation in operations
            if "414" not in operation["responses"]] == []
    base, _ = DOCUMENTS[name].split("?")[0].rsplit("/", 1)
    too_long = requests.get(f"{server.url}{base}/", timeout=60,
                            params={"q": "x" * (MAX_REQUEST_LINE + 1)})
    assert too_long.status_code == 414
