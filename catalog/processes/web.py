"""The edge of /ogc/processes and /ogc/jobs: what pygeoapi would ignore or misread, answered
400 before it runs, and what it reads differently from the standard, put in the form it reads
(catalog/ogc/adapters.py calls these; docs/upstream.md)."""

from __future__ import annotations

import re

from flask import request
from werkzeug.datastructures import MultiDict

from catalog.safe_parse import UnsafeInput, parse_json

PROCESSES_PATH = re.compile(r"^/ogc/processes/?$")
PROCESS_PATH = re.compile(r"^/ogc/processes/[^/]+/?$")
EXECUTION_PATH = re.compile(r"^/ogc/processes/[^/]+/execution/?$")
JOBS_PATH = re.compile(r"^/ogc/jobs/?$")
JOB_PATH = re.compile(r"^/ogc/jobs/[^/]+/?$")
RESULTS_PATH = re.compile(r"^/ogc/jobs/[^/]+/results/?$")
EXECUTE_MEMBERS = {"inputs", "outputs", "response", "subscriber"}


def job_list_refused() -> str | None:
    """Jobs carry what people asked about (their drawn areas) and anyone may dismiss a job they
    can name, so a job's URL is its key: the server never lists jobs (the optional job-list
    class of OGC API - Processes is not declared) and job ids are random (jobs.py)."""
    if request.method == "GET" and JOBS_PATH.match(request.path):
        return ("this server does not list jobs: keep the job URL returned when you "
                "submitted it (the Location header, or jobID in the status document)")
    return None


def allowed_parameters(path: str) -> set[str] | None:
    """Query parameters pygeoapi applies on a processes or jobs path (None: not such a path)."""
    if PROCESSES_PATH.match(path):
        return {"f", "lang", "limit"}
    if EXECUTION_PATH.match(path):
        return {"f"}
    if PROCESS_PATH.match(path) or JOB_PATH.match(path) or RESULTS_PATH.match(path):
        return {"f", "lang"}
    if JOBS_PATH.match(path):
        return {"f", "lang", "limit", "offset"}
    return None


def pygeoapi_form(args: MultiDict, headers: dict[str, str]) -> bool:
    """Put a processes or jobs request in the form pygeoapi reads: `args` (a copy of the query)
    and `headers` (WSGI environ keys) are changed in place; True when anything changed."""
    changed = False
    if RESULTS_PATH.match(request.path) and _results_as_json_by_default(args):
        changed = True
    if request.method == "POST" and EXECUTION_PATH.match(request.path):
        prefer = _prefer_as_pygeoapi_reads()
        if prefer is not None:
            headers["HTTP_PREFER"] = prefer
            changed = True
    return changed


def request_problem() -> str | None:
    """What is wrong with an execute request's body, if anything (OGC API - Processes)."""
    if request.method != "POST" or not EXECUTION_PATH.match(request.path):
        return None
    try:
        document = parse_json(request.get_data(cache=True) or b"null", "request body")
    except UnsafeInput as err:
        return str(err)
    if not isinstance(document, dict):
        return 'request body: must be a JSON object such as {"inputs": {...}}'
    unknown = sorted(set(document) - EXECUTE_MEMBERS)
    if unknown:
        return (f"request body: unknown member {unknown[0]!r}; an execute request has "
                f"{', '.join(sorted(EXECUTE_MEMBERS))}")
    if "subscriber" in document:
        return ("subscriber: callbacks are not supported; run the job with "
                "'Prefer: respond-async' and poll /ogc/jobs/{jobId}")
    if document.get("response", "raw") not in ("raw", "document"):
        return f"response: {document['response']!r} must be 'raw' or 'document'"
    for member in ("inputs", "outputs"):
        if document.get(member) is not None and not isinstance(document[member], dict):
            return f"{member}: must be a JSON object keyed by {member[:-1]} id"
    return None


def _results_as_json_by_default(args: MultiDict) -> bool:
    """pygeoapi renders job results as HTML unless the format is JSON: answer JSON unless the
    client asks for HTML (a browser) or names a format."""
    if "f" in args:
        return False
    accept = request.accept_mimetypes
    if accept.quality("text/html") <= accept.quality("application/json"):
        args["f"] = "json"
        return True
    return False


def _prefer_as_pygeoapi_reads() -> str | None:
    """pygeoapi honours `Prefer` only when it is exactly 'respond-async'; RFC 7240 allows a
    list ('respond-async, wait=10'). The value to give it instead, or None."""
    prefer = request.headers.get("Prefer", "")
    tokens = {part.split("=")[0].strip().lower() for part in prefer.split(",")}
    if "respond-async" in tokens and prefer != "respond-async":
        return "respond-async"
    return None
