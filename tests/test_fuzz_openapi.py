"""Schemathesis over the server's own OpenAPI documents (/ogc, /stac, /api): generated valid
and invalid requests must never get a server error, and every answer's status must be one the
document lists for that operation.

Schemathesis runs as its own command line (`schemathesis run`, a real HTTP client; its pytest
plugin does not work with pytest 9) against one real server (gunicorn) on a copy of the
session's published samples (no second `publish --all`) with the test accounts. The /api
runs send real tokens (from `taza users add`: a steward, then an admin) so they reach past
401; the admin's runs last because it may change what is published. Path parameters mix
generated values with real ids (collections, items, features, a job, datasets:
tests/fuzz_hooks.py). Phases: examples, coverage (boundary
and malformed values, wrong methods and media types) and fuzzing. Bounded: MAX_EXAMPLES per
operation and phase, a fixed seed, no example database, two client workers (the server has
two); about 90 s in all here. TAZA_FUZZ_EXAMPLES and TAZA_FUZZ_SEED run it longer or with
other cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import (
    ROOT,
    SAMPLE_IDS,
    VECTOR_IDS,
    Server,
    copy_home,
    start_server,
    stop_server,
)
from tests.stewards_support import Api, add_accounts, make_manifest

# Per operation and phase. /ogc is the slow one: whole-grid CoverageJSON answers take seconds.
MAX_EXAMPLES = {"ogc": 10, "stac": 100, "api": 100}
SEED = os.environ.get("TAZA_FUZZ_SEED", "11")
CHECKS = "not_a_server_error,status_code_conformance"
# name: (document, base URL of its paths)
DOCUMENTS = {"ogc": ("/ogc/openapi?f=json", "/ogc"), "stac": ("/stac/api", "/stac"),
             "api": ("/api/openapi.json", "/api")}
DRAFTED = "fuzz-drafted"  # a dataset with an open draft, for the draft endpoints
RUN_TIMEOUT_S = 600  # a hung run fails the test rather than the CI job


@pytest.fixture(scope="module")
def fuzz_server(published_catalog: Path, tmp_path_factory
                ) -> Iterator[tuple[Server, dict[str, str]]]:
    # A copy of the session's published samples: the admin's run may withdraw them.
    home = copy_home(published_catalog, tmp_path_factory.mktemp("fuzz") / "home")
    tokens = add_accounts(home)
    server = start_server(home, log_name="fuzz-server.log")
    yield server, tokens
    stop_server(server)


@pytest.fixture(scope="module")
def known_ids(fuzz_server) -> dict[str, list[str]]:
    """Real ids for path parameters (tests/fuzz_hooks.py mixes them into generated ones)."""
    server = fuzz_server[0]
    collections = [c["id"] for c in server.get("/stac/collections?limit=100").json()
                   ["collections"]]
    items = [i["id"] for i in server.get("/stac/search?limit=20").json()["features"]]
    features = []
    for collection in VECTOR_IDS:
        page = server.get(f"/ogc/collections/{collection}/items?limit=2&f=json").json()
        features += [str(f["id"]) for f in page["features"]]
    job = requests.post(f"{server.url}/ogc/processes/coverage-statistics/execution",
                        json={"inputs": {"region": "KG-C"}}, timeout=60,
                        headers={"Prefer": "respond-async"})
    assert job.status_code == 201, job.text
    return {"collectionId": collections, "itemId": items, "featureId": features,
            "jobId": [job.headers["Location"].rsplit("/", 1)[1]],
            "dataset_id": [*SAMPLE_IDS, DRAFTED], "version": ["1"],
            "filename": ["manifest.yaml", "settlements.gpkg", "elevation.tif"]}


def schemathesis_run(server: Server, name: str, ids: dict[str, list[str]], *extra: str) -> str:
    """Run schemathesis over one document; return its report (assert on a clean exit)."""
    document, base = DOCUMENTS[name]
    examples = os.environ.get("TAZA_FUZZ_EXAMPLES", MAX_EXAMPLES[name])
    command = [str(Path(sys.executable).with_name("schemathesis")), "run",
               server.url + document, "--url", server.url + base, "--checks", CHECKS,
               "--phases", "examples,coverage,fuzzing", "--max-examples", str(examples),
               "--seed", SEED, "--generation-database", "none", "--workers", "2",
               "--request-timeout", "120", "--no-color", *extra]
    log = server.home / "fuzz-server.log"
    start = log.stat().st_size  # this run's part of the server log
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.fuzz_hooks", PYTHONPATH=str(ROOT),
               TAZA_FUZZ_IDS=json.dumps(ids))
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                            cwd=server.home, env=env)  # its cache stays out of the tree
    report = result.stdout + result.stderr
    with log.open("rb") as handle:
        handle.seek(start)
        errors = _server_errors(handle.read().decode(errors="replace"))
    assert result.returncode == 0, f"{_failures(report)}\n--- server errors ---\n{errors}"
    assert not errors, errors
    return report


def _server_errors(log: str) -> str:
    """Our error handler's lines (each a 500) and the traceback after them; pygeoapi also
    logs tracebacks, of the 4xx it answers, which are not server errors."""
    found = [log[i:i + 3000] for i in range(len(log))
             if log.startswith("unhandled error on", i)]
    return "\n".join(found[:5])


def _failures(report: str) -> str:
    start = report.find("FAILURES")
    return report[start:][:20000] if start >= 0 else report[-20000:]


def test_fuzz_ogc(fuzz_server, known_ids):
    schemathesis_run(fuzz_server[0], "ogc", known_ids)


def test_fuzz_stac(fuzz_server, known_ids):
    schemathesis_run(fuzz_server[0], "stac", known_ids)


@pytest.fixture(scope="module")
def drafted(fuzz_server) -> str:
    """A dataset of ministry-a with an open draft (a manifest), for the draft endpoints."""
    api = Api(*fuzz_server)
    api.create(DRAFTED, "alice")
    assert api.put_manifest(DRAFTED, make_manifest(DRAFTED)).status_code in (200, 422)
    return DRAFTED


# A steward of ministry-a (403s for other organisations), then an admin, who reaches every
# operation and may withdraw what the /ogc and /stac runs read: last.
@pytest.mark.parametrize("account", ["alice", "root"])
def test_fuzz_stewards_api(fuzz_server, known_ids, drafted, account):
    server, tokens = fuzz_server
    schemathesis_run(server, "api", known_ids,
                     "--header", f"Authorization: Bearer {tokens[account]}")
