"""A CQL2 filter is parsed once per request by our code (issue 12).

The app runs in a child process through Flask's test client (pygeoapi keeps its config in
module globals, so it stays out of the test process), and Python's profiler hook records every
call of pygeofilter's CQL2 text and JSON parsers with the module that made it. Nothing is
replaced: the real parsers run. Before issue 12 the /ogc edge parsed a filter to check it, the
direct items writer parsed it again, and pygeoapi a third time when the writer handed over.

pygeoapi still parses its own copy when it answers (HTML pages, POST searches, refusals): that
last parse goes once /ogc items are served by our own routes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, home_environment

COUNTING_APP = r"""
import json, os, sys
from pygeofilter.parsers import cql2_json, cql2_text
from catalog.app import create_app

client = create_app(os.environ["TAZA_HOME"]).test_client()
parsers = {cql2_text.parse.__code__, cql2_json.parse.__code__}
callers = []

def profile(frame, event, arg):
    if event == "call" and frame.f_code in parsers:
        callers.append(frame.f_back.f_globals.get("__name__"))

answers = []
for method, url, body in json.loads(sys.argv[1]):
    callers.clear()
    sys.setprofile(profile)
    response = client.open(url, method=method, data=body and body.encode(),
                           headers={"Content-Type": "application/query-cql-json"} if body else {})
    sys.setprofile(None)
    answers.append([response.status_code, list(callers)])
print(json.dumps(answers))
"""

ITEMS = "/ogc/collections/settlements/items"
JSON_FILTER = '{"op": ">", "args": [{"property": "population"}, 20000]}'
OURS = "catalog.core.cql2"
# (method, url, body) -> (status, the modules that called a parser)
CASES = [
    (("GET", f"{ITEMS}?filter=population%20%3E%2020000&limit=3", None), (200, [OURS])),
    (("GET", f"{ITEMS}?filter-lang=cql2-json&filter={JSON_FILTER}", None), (200, [OURS])),
    (("GET", f"{ITEMS}?filter=nosuch%20%3D%201", None), (400, [OURS])),
    (("GET", f"{ITEMS}?filter=population%20%3E%2020000&f=html", None), (200, [OURS])),
    (("GET", f"{ITEMS}?filter=population%20%3E%2020000&f=csv", None), (200, [OURS])),
    (("POST", ITEMS, JSON_FILTER), (200, [OURS])),
    (("GET", "/stac/search?filter=id%20%3D%20%27settlements%27", None), (200, [OURS])),
    (("POST", "/stac/search", json.dumps({"filter": json.loads(JSON_FILTER)})), (200, [OURS])),
]


@pytest.fixture(scope="module")
def answers(published_home) -> list:
    result = subprocess.run(
        [sys.executable, "-c", COUNTING_APP, json.dumps([case for case, _ in CASES])],
        env=dict(os.environ, TAZA_HOME=str(published_home), **home_environment(published_home)),
        cwd=ROOT, capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0][1][:60] for c in CASES])
def test_a_filter_is_parsed_once_by_our_code(answers, index):
    request, (status, callers) = CASES[index]
    got_status, got_callers = answers[index]
    assert got_status == status, request
    assert got_callers == callers, request
