"""Complete pygeoapi's OpenAPI document with what the server really accepts.

Clients read the OpenAPI document to learn what they can ask for. GDAL's OAPIF driver
(3.6) sends `-where` to the server as CQL only when the items operation lists a `filter-lang`
parameter offering `cql-text`; otherwise it downloads the whole layer and filters locally.
pygeoapi lists neither `filter` nor `filter-lang`, and its `sortby` parameter is a reference to
a document on GitHub that offline clients cannot resolve.
"""

from __future__ import annotations

import copy

CQL2_JSON_MEDIA = ("application/json", "application/query-cql-json", "application/cql2+json")
FILTER_LANGUAGES = ["cql2-text", "cql2-json", "cql-text"]  # cql-text: the pre-1.0 name GDAL uses

ITEMS_PARAMETERS = [
    {"name": "filter", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "CQL2 filter expression (OGC API - Features - Part 3). Text by default.",
     "schema": {"type": "string"}},
    {"name": "filter-lang", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Language of `filter`: cql2-text (default), cql2-json, or cql-text "
                    "(accepted as cql2-text).",
     "schema": {"type": "string", "enum": FILTER_LANGUAGES, "default": "cql2-text"}},
    {"name": "filter-crs", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "CRS of geometries in `filter` (default CRS84).",
     "schema": {"type": "string", "format": "uri"}},
    {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "RFC 3339 instant or interval (start/end, `..` for open), tested against "
                    "the dataset's temporal extent.",
     "schema": {"type": "string"}},
    {"name": "q", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Free text: comma-separated terms, any of which matches a text property "
                    "(case-insensitive substring).",
     "schema": {"type": "string"}},
    {"name": "sortby", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Comma-separated properties, each optionally prefixed with + (ascending) "
                    "or - (descending).",
     "schema": {"type": "array", "items": {"type": "string", "pattern": r"^[+-]?[\w.:-]+$"}}},
    {"name": "resulttype", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "`hits` returns only numberMatched.",
     "schema": {"type": "string", "enum": ["results", "hits"], "default": "results"}},
]


def complete_openapi(document: dict, feature_collections: list[str],
                     process_inputs: dict[str, dict] | None = None) -> dict:
    """pygeoapi's document made true to this server and self-contained: the items parameters
    pygeoapi leaves out, without the ones we refuse, each process's own execute body
    (`process_inputs`: process id -> its metadata's inputs), and no reference outside it."""
    paths = document.get("paths", {})
    for process_id, inputs in (process_inputs or {}).items():
        execution = paths.get(f"/processes/{process_id}/execution", {}).get("post")
        if execution is not None:
            content = execution.get("requestBody", {}).get("content", {})
            for media in content.values():
                media["schema"] = execute_schema(inputs)
    for collection_id in feature_collections:
        operation = paths.get(f"/collections/{collection_id}/items", {})
        get = operation.get("get")
        if get is None:
            continue
        parameters = [p for p in get.get("parameters", [])
                      if not _is_external_sortby(p) and p.get("$ref") != VENDOR_PARAMETERS]
        present = {p.get("name") for p in parameters}
        parameters += [p for p in ITEMS_PARAMETERS if p["name"] not in present]
        get["parameters"] = parameters
        _describe_cql2_post(operation.get("post"))
    for path, operations in paths.items():
        if path.endswith("/coverage") and "get" in operations:
            operations["get"].setdefault("responses", {}).update({
                "200": {"$ref": "#/components/responses/Coverage"},
                "413": _error("the subset holds more than 40 million values: ask for less"),
            })
    _not_found_where_ids_are_named(paths)
    # The catalog has no one licence (each dataset names its own): a licence without a URL.
    licence = document.get("info", {}).get("license")
    if licence is not None and licence.get("url") is None:
        licence.pop("url", None)
    # The job list is refused (job URLs are capabilities: catalog/processes/web.py).
    paths.get("/jobs", {}).pop("get", None)
    if "/jobs" in paths and not paths["/jobs"]:
        del paths["/jobs"]
    return self_contained(document)


# JSON Schema keywords an OpenAPI 3.0 schema object takes (process inputs are written in
# JSON Schema 2019-09: contentMediaType and the like are dropped from the copy).
OPENAPI_SCHEMA_KEYWORDS = {
    "type", "enum", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "items",
    "properties", "required", "additionalProperties", "oneOf", "anyOf", "allOf", "not",
    "default", "description", "title", "nullable", "multipleOf", "minProperties",
    "maxProperties",
}


def execute_schema(inputs: dict) -> dict:
    """The execute request of one process: its inputs by id with their schemas, required when
    minOccurs >= 1 (catalog/processes/web.py refuses other members; unknown inputs are 400)."""
    properties = {name: _openapi_schema(spec.get("schema", {})) for name, spec in inputs.items()}
    required = [name for name, spec in inputs.items() if spec.get("minOccurs", 1) >= 1]
    execute_inputs = {"type": "object", "properties": properties,
                      "additionalProperties": False}
    if required:
        execute_inputs["required"] = required
    schema = copy.deepcopy(LOCAL_COMPONENTS["schemas"]["execute"])
    schema["properties"]["inputs"] = execute_inputs
    if required:
        schema["required"] = ["inputs"]
    return schema


def _openapi_schema(schema):
    if isinstance(schema, list):
        return [_openapi_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: (value if key in ("enum", "default", "required") else _openapi_schema(value))
            if key != "properties" else {name: _openapi_schema(v) for name, v in value.items()}
            for key, value in schema.items() if key in OPENAPI_SCHEMA_KEYWORDS}


def _not_found_where_ids_are_named(paths: dict) -> None:
    """A feature or job id that does not exist is 404, whatever the method (OPTIONS too)."""
    for path, operations in paths.items():
        if "{" not in path:
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault(
                    "404", {"$ref": "#/components/responses/NotFound"})


def _describe_cql2_post(post: dict | None) -> None:
    """POST .../items: a CQL2 JSON search (adapters._items_post_problem); creating items is
    refused with 405 before it (no transactions)."""
    if post is None:
        return
    body = post.setdefault("requestBody", {"required": True, "content": {}})
    schema = {"$ref": "#/components/schemas/cql2Json"}
    body["content"] = {media: {"schema": schema} for media in CQL2_JSON_MEDIA}
    post.setdefault("responses", {}).update({
        "413": _error("the body is larger than 1 MiB"),
        "415": _error(f"the body is not CQL2 JSON ({', '.join(CQL2_JSON_MEDIA)})"),
    })


# Free-form query parameters: answered 400 here (adapters.invalid_parameter_error).
VENDOR_PARAMETERS = "#/components/parameters/vendorSpecificParameters"


def _is_external_sortby(parameter: dict) -> bool:
    reference = parameter.get("$ref", "")
    return reference.startswith("http") and reference.endswith("sortby.yaml")


# -- a self-contained document ---------------------------------------------------------------
# pygeoapi's document points into the OGC's schema repositories (schemas.opengis.net, GitHub)
# for common parameters, responses and schemas. Offline clients (and this server's own fuzz
# tests) cannot resolve them, and they describe OGC's generic API, not ours. Each is replaced
# by a local component written here for what this server answers.

_OGC = "https://schemas.opengis.net/ogcapi/"
_FEATURES = f"{_OGC}features/part1/1.0/openapi/ogcapi-features-1.yaml#/components/"
_PROCESSES = f"{_OGC}processes/part1/1.0/openapi/"
_COVERAGES = ("https://raw.githubusercontent.com/opengeospatial/ogcapi-coverages/refs/heads/"
              "master/standard/openapi/ogcapi-coverages-1.yaml#/components/")

EXCEPTION_SCHEMA = {
    "type": "object", "required": ["code", "description"],
    "description": "An error: `code` names its kind, `description` says what to change.",
    "properties": {"code": {"type": "string"}, "type": {"type": "string"},
                   "description": {"type": "string"}, "status": {"type": "integer"}},
}


def _json_response(description: str, media: str = "application/json",
                   schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {media: {"schema": schema or {"type": "object"}}}}


def _error(description: str) -> dict:
    return _json_response(description, schema={"$ref": "#/components/schemas/exception"})


LOCAL_COMPONENTS: dict[str, dict] = {
    "schemas": {
        "exception": EXCEPTION_SCHEMA,
        "link": {"type": "object", "required": ["href"],
                 "properties": {"href": {"type": "string"}, "rel": {"type": "string"},
                                "type": {"type": "string"}, "title": {"type": "string"}}},
        "cql2Json": {"type": "object", "required": ["op", "args"],
                     "description": "A CQL2 JSON expression (OGC 21-065), such as "
                                    '{"op": "=", "args": [{"property": "name"}, "Osh"]}',
                     "properties": {"op": {"type": "string"}, "args": {"type": "array"}}},
        "execute": {"type": "object", "additionalProperties": False,
                    "description": "An execute request (OGC API - Processes 1.0): the inputs "
                                   "keyed by input id; callbacks (subscriber) are refused.",
                    "properties": {"inputs": {"type": "object"},
                                   "outputs": {"type": "object"},
                                   "response": {"type": "string",
                                                "enum": ["raw", "document"]}}},
    },
    "parameters": {
        "featureId": {"name": "featureId", "in": "path", "required": True,
                      "description": "identifier of a feature", "schema": {"type": "string"}},
        "subset": {"name": "subset", "in": "query", "required": False, "style": "form",
                   "explode": False, "schema": {"type": "string"},
                   "description": "Axis intervals in the coverage's CRS, such as "
                                  "`x(74:75),y(42:43)` (OGC API - Coverages)."},
    },
    "responses": {
        "LandingPage": _json_response("the landing page"),
        "Collection": _json_response("a collection's description"),
        "Features": _json_response("a page of features", "application/geo+json"),
        "Feature": _json_response("a feature", "application/geo+json"),
        "Coverage": {"description": "the coverage or its subset: CoverageJSON, GeoTIFF "
                                    "(f=GTiff or Accept: image/tiff) or HTML",
                     "content": {"application/prs.coverage+json": {"schema": {"type": "object"}},
                                 "image/tiff; application=geotiff": {
                                     "schema": {"type": "string", "format": "binary"}},
                                 "text/html": {"schema": {"type": "string"}}}},
        "ProcessList": _json_response("the processes this server runs"),
        "ExecuteAsync": _json_response("the job was accepted; its status URL is in the "
                                       "Location header"),
        "InvalidParameter": _error("a parameter or the body is unknown or malformed; the "
                                   "message names it"),
        "NotFound": _error("no such collection, feature, process or job"),
    },
}

# External reference -> local reference. ServerError responses are dropped: the server does
# not answer 500 on purpose, and a documented 500 would hide one from a conformance check.
EXTERNAL_REFERENCES = {
    f"{_FEATURES}parameters/featureId": "#/components/parameters/featureId",
    f"{_COVERAGES}parameters/subset": "#/components/parameters/subset",
    **{f"{_FEATURES}responses/{name}": f"#/components/responses/{name}"
       for name in ("LandingPage", "Collection", "Features", "Feature", "InvalidParameter",
                    "NotFound")},
    f"{_PROCESSES}responses/ProcessList.yaml": "#/components/responses/ProcessList",
    f"{_PROCESSES}responses/ExecuteAsync.yaml": "#/components/responses/ExecuteAsync",
    f"{_PROCESSES}responses/NotFound.yaml": "#/components/responses/NotFound",
    f"{_PROCESSES}schemas/exception.yaml": "#/components/schemas/exception",
    f"{_PROCESSES}schemas/execute.yaml": "#/components/schemas/execute",
    "https://schemas.opengis.net/cql2/1.0/cql2.json": "#/components/schemas/cql2Json",
    f"{_OGC}tiles/part1/1.0/openapi/ogcapi-tiles-1.yaml#/components/schemas/link":
        "#/components/schemas/link",
}
DROPPED_REFERENCES = (f"{_FEATURES}responses/ServerError",
                      f"{_PROCESSES}responses/ServerError.yaml")


def self_contained(document: dict) -> dict:
    """The document with every external $ref replaced by a local component (unknown ones by
    a described placeholder, listed in info.x-unresolved so a test can catch them)."""
    components = document.setdefault("components", {})
    for kind, entries in LOCAL_COMPONENTS.items():
        components.setdefault(kind, {}).update(entries)
    unresolved: list[str] = []
    _localise(document, unresolved)
    if unresolved:
        document.setdefault("info", {})["x-unresolved"] = sorted(set(unresolved))
    return document


def _localise(node, unresolved: list[str]) -> None:
    """Rewrite $refs in place, iteratively (documents are deep but not recursive)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
            continue
        if not isinstance(current, dict):
            continue
        for key in [k for k, v in current.items()
                    if isinstance(v, dict) and v.get("$ref") in DROPPED_REFERENCES]:
            del current[key]  # e.g. responses: {"500": {"$ref": ".../ServerError"}}
        reference = current.get("$ref")
        if isinstance(reference, str) and not reference.startswith("#"):
            local = EXTERNAL_REFERENCES.get(reference)
            if local is None:
                unresolved.append(reference)
                current.clear()
                current["description"] = f"not described here ({reference})"
            else:
                current["$ref"] = local
        stack.extend(current.values())
