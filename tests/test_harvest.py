"""Harvesting (catalog/harvest) through the real `taza harvest` command line, from:

- another instance of this catalog (the session's `server`): its STAC API and its OGC API -
  Features;
- a CKAN portal played by a local HTTP server answering hand-made package_search pages
  (tests/harvest_fixtures/ckan, README there), altered between runs.

Drafts are read back through the stewards' service; nothing may be submitted or published.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from catalog.harvest import registry
from catalog.harvest.run import harvester_account, run_source
from catalog.harvest.schedule import HARVEST_JOB, check_seconds, due_sources, every_seconds
from catalog.jobs import SUCCEEDED, Job, open_jobs
from catalog.settings import SettingError
from catalog.stewards import drafts
from catalog.store import CatalogStore
from tests.conftest import ROOT, SAMPLE_IDS, VECTOR_IDS, home_database, home_environment, taza

FIXTURES = Path(__file__).resolve().parent / "harvest_fixtures" / "ckan"
SEARCH = "/api/3/action/package_search"


class CkanPortal:
    """What the local CKAN answers: pages by `start`, or a hostile answer for every request."""

    def __init__(self) -> None:
        self.packages = [p for start in (0, 3) for p in json.loads(
            (FIXTURES / f"package_search-{start}.json").read_text())["result"]["results"]]
        self.page_size = 3
        self.hostile: tuple[int, dict, bytes] | None = None
        self.requests: list[str] = []

    def answer(self, path: str, query: dict) -> tuple[int, dict, bytes]:
        self.requests.append(path)
        if self.hostile is not None:
            return self.hostile
        if path != SEARCH:
            return 404, {}, b'{"success": false}'
        start = int(query.get("start", ["0"])[0])
        rows = min(int(query.get("rows", ["10"])[0]), self.page_size)  # CKAN caps rows too
        page = self.packages[start:start + rows]
        body = {"success": True, "result": {"count": len(self.packages), "results": page}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture(scope="module")
def ckan() -> Iterator[tuple[str, CkanPortal]]:
    portal = CkanPortal()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            status, headers, body = portal.answer(url.path, parse_qs(url.query))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", portal
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def portal(ckan) -> Iterator[tuple[str, CkanPortal]]:
    """The CKAN portal reset to the fixtures for each test."""
    url, served = ckan
    original = copy.deepcopy(served.packages)
    yield url, served
    served.packages, served.hostile = original, None


def run(home: Path, *names: str, status: int = 0) -> list[dict]:
    result = taza("harvest", "run", *names, home=home, check=False)
    assert result.returncode == status, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def add(home: Path, url: str, kind: str, name: str, *extra: str) -> None:
    taza("harvest", "add", url, "--type", kind, "--name", name, "--org", "peer-agency",
         "--email", "data@example.org", *extra, home=home)


def draft_manifest(home: Path, source: str, dataset_id: str) -> dict:
    user = harvester_account(home, registry.source(home, source))
    return yaml.safe_load(drafts.get_manifest(home, user, dataset_id))


def draft_state(home: Path, source: str, dataset_id: str) -> str:
    user = harvester_account(home, registry.source(home, source))
    return drafts.get_draft(home, user, dataset_id)["state"]


# --- another instance of this catalog -------------------------------------------------------

def test_another_catalogs_stac_and_features_become_drafts(server, scratch_home, monkeypatch):
    # Both sources harvest for one organisation, whose open-draft quota applies to them
    # (test_the_draft_quota_holds_back_the_rest_until_the_next_run): exactly enough here.
    monkeypatch.setenv("TAZA_QUOTA_OPEN_DRAFTS", str(len(SAMPLE_IDS) + len(VECTOR_IDS)))
    add(scratch_home, f"{server.url}/stac", "stac", "peer-stac")
    add(scratch_home, f"{server.url}/ogc", "ogcapi-features", "peer-ogc", "--theme", "land")
    first = {r["source"]: r for r in run(scratch_home)}
    assert sorted(first["peer-stac"]["new"]) == [f"peer-stac-{d}" for d in sorted(SAMPLE_IDS)]
    # Only the feature collections of the OGC API (not the coverages, not the records).
    assert sorted(first["peer-ogc"]["new"]) == [f"peer-ogc-{d}" for d in sorted(VECTOR_IDS)]
    peer = server.get("/stac/collections/settlements").json()
    manifest = draft_manifest(scratch_home, "peer-stac", "peer-stac-settlements")
    assert manifest["title"]["en"] == peer["title"]
    assert manifest["licence"] == peer["license"]
    assert manifest["provenance"]["derived_from"][0]["href"] == \
        f"{server.url}/stac/collections/settlements"
    assert f"{server.url}/stac" in manifest["provenance"]["method"]
    assert "nature" not in manifest and "theme" not in manifest  # not guessed
    assert draft_manifest(scratch_home, "peer-ogc", "peer-ogc-airports")["theme"] == "land"
    # Drafts only: in review's first state, nothing published.
    assert draft_state(scratch_home, "peer-stac", "peer-stac-settlements") == "draft"
    assert CatalogStore(scratch_home).current() is None
    second = {r["source"]: r for r in run(scratch_home)}
    assert second["peer-stac"]["new"] == second["peer-stac"]["changed"] == []
    assert second["peer-stac"]["unchanged"] == len(SAMPLE_IDS)
    assert second["peer-ogc"]["unchanged"] == len(VECTOR_IDS)
    listing = taza("harvest", "list", home=scratch_home).stdout
    assert "peer-ogc\togcapi-features" in listing and "0 new, 0 changed, 0 gone" in listing


def extent(manifest: dict) -> list[float]:
    """The extent the harvest wrote into the method (west, south, east, north)."""
    line = next(line for line in manifest["provenance"]["method"].splitlines()
                if line.startswith("Extent given by the source"))
    return [float(v) for v in line.split("): ")[1].rstrip(".").split(", ")]


def test_another_catalogs_records_and_csw_become_drafts(server, scratch_home, monkeypatch):
    """OGC API - Records and CSW (issue 15): this catalog's own /ogc records and its pycsw at
    /csw, harvested as drafts whose provenance points at the remote record, which answers."""
    monkeypatch.setenv("TAZA_QUOTA_OPEN_DRAFTS", str(2 * len(SAMPLE_IDS)))  # one organisation
    add(scratch_home, f"{server.url}/ogc", "ogcapi-records", "peer-rec", "--theme", "land")
    taza("harvest", "add", f"{server.url}/csw", "--type", "csw", "--name", "peer-csw",
         "--org", "csw-agency", "--email", "data@example.org", home=scratch_home)
    first = {r["source"]: r for r in run(scratch_home)}
    for source in ("peer-rec", "peer-csw"):
        assert sorted(first[source]["new"]) == [f"{source}-{d}" for d in sorted(SAMPLE_IDS)]
        assert first[source]["error"] is None and first[source]["failed"] == []
    peer = server.get("/ogc/collections/metadata/items/settlements").json()
    records = draft_manifest(scratch_home, "peer-rec", "peer-rec-settlements")
    assert records["title"]["en"] == peer["properties"]["title"]
    assert records["licence"] == peer["properties"]["license"]
    assert records["temporal_extent"]["start"] == peer["time"]["interval"][0]
    assert records["keywords"]["en"] == peer["properties"]["keywords"]
    assert records["theme"] == "land" and "nature" not in records
    csw = draft_manifest(scratch_home, "peer-csw", "peer-csw-settlements")
    assert csw["title"]["en"] == peer["properties"]["title"]
    assert "licence" not in csw and "temporal_extent" not in csw  # Dublin Core has neither
    for manifest, expected in ((records, "/ogc/collections/metadata/items/settlements?f=html"),
                               (csw, "/csw?service=CSW")):
        source = manifest["provenance"]["derived_from"][0]["href"]
        assert source.startswith(f"{server.url}{expected}"), source
        answer = server.get(source.removeprefix(server.url))
        assert answer.status_code == 200 and "settlements" in answer.text
    # The same extent through the record's footprint and CSW's latitude-first corners.
    bbox = CatalogStore(server.home, database_url=home_database(server.home)).record(
        "settlements", 1).bbox
    for manifest in (records, csw):
        assert extent(manifest) == pytest.approx(list(bbox), abs=0.01)
    assert draft_state(scratch_home, "peer-csw", "peer-csw-settlements") == "draft"
    assert CatalogStore(scratch_home).current() is None
    # What changed since the last run: a record forgotten, one changed, one that went away.
    state = registry.state(scratch_home, "peer-csw")
    del state["datasets"]["airports"]
    state["datasets"]["elevation"]["fingerprint"] = "an older one"
    state["datasets"]["withdrawn"] = {"dataset_id": "peer-csw-withdrawn", "fingerprint": "x",
                                      "landing_url": f"{server.url}/csw"}
    registry.save_state(scratch_home, "peer-csw", state)
    [second] = run(scratch_home, "peer-csw")
    assert (second["new"], second["changed"], second["gone"], second["unchanged"]) == (
        ["peer-csw-airports"], ["peer-csw-elevation"], ["peer-csw-withdrawn"],
        len(SAMPLE_IDS) - 2)


# --- CKAN: what changed since the last run ---------------------------------------------------

def test_ckan_packages_new_changed_and_gone(portal, scratch_home):
    url, served = portal
    add(scratch_home, url, "ckan", "hdx")
    (first,) = run(scratch_home, "hdx")
    assert sorted(first["new"]) == ["hdx-cod-ab-kgz", "hdx-hotosm-kgz-roads-chuy",
                                    "hdx-kgz-population-density", "hdx-kyrgyzstan-healthsites"]
    assert first["requests"] == 2  # two pages of three
    boundaries = draft_manifest(scratch_home, "hdx", "hdx-cod-ab-kgz")
    assert boundaries["licence"] == "CC-BY-3.0-IGO"
    assert boundaries["temporal_extent"] == {"start": "2022-03-01", "end": "2022-03-01"}
    assert boundaries["provenance"]["derived_from"][0]["href"] == f"{url}/dataset/cod-ab-kgz"
    assert "69.25, 39.17, 80.28, 43.27" in boundaries["provenance"]["method"]
    assert "Hand-made test fixture" in boundaries["description"]["en"]
    density = draft_manifest(scratch_home, "hdx", "hdx-kgz-population-density")
    assert density["licence"] == "https://example.org/licences/open-grid"

    served.packages[1]["title"] = "Kyrgyzstan Healthsites (updated)"
    gone = served.packages.pop(3)
    assert gone["name"] == "hotosm-kgz-roads-chuy"
    served.packages.append(dict(copy.deepcopy(served.packages[0]), name="cod-ps-kgz",
                                title="Kyrgyzstan - Subnational Population Statistics"))
    (second,) = run(scratch_home, "hdx")
    assert second["new"] == ["hdx-cod-ps-kgz"]
    assert second["changed"] == ["hdx-kyrgyzstan-healthsites"]
    assert second["gone"] == ["hdx-hotosm-kgz-roads-chuy"]
    assert second["unchanged"] == 2 and second["failed"] == []
    assert draft_manifest(scratch_home, "hdx", "hdx-kyrgyzstan-healthsites")["title"]["en"] == \
        "Kyrgyzstan Healthsites (updated)"
    # Gone is reported, not deleted: the draft stays for a steward to decide.
    assert draft_state(scratch_home, "hdx", "hdx-hotosm-kgz-roads-chuy") == "draft"


def test_the_draft_quota_holds_back_the_rest_until_the_next_run(portal, scratch_home,
                                                                monkeypatch):
    """The harvester is a steward of its organisation: past the open-draft quota, each dataset
    left is reported as failed with the quota's reason (exit 1), and the next run, once there
    is room, creates exactly those."""
    url, _ = portal
    add(scratch_home, url, "ckan", "hdx")
    monkeypatch.setenv("TAZA_QUOTA_OPEN_DRAFTS", "3")
    (first,) = run(scratch_home, "hdx", status=1)
    assert len(first["new"]) == 3 and first["error"] is None
    (held_back,) = first["failed"]
    assert "TAZA_QUOTA_OPEN_DRAFTS" in held_back["error"] and "peer-agency" in held_back["error"]
    assert held_back["dataset_id"] not in first["new"]
    monkeypatch.setenv("TAZA_QUOTA_OPEN_DRAFTS", "4")
    (second,) = run(scratch_home, "hdx")
    assert second["new"] == [held_back["dataset_id"]] and second["failed"] == []
    assert second["unchanged"] == 3
    assert draft_state(scratch_home, "hdx", held_back["dataset_id"]) == "draft"


NESTED = b"[" * 200 + b"]" * 200
HOSTILE = {
    "too large": (200, {"Content-Type": "application/json"},
                  b'{"success": true, "result": {"count": 1, "results": [], "pad": "'
                  + b"x" * (9 * 1024**2) + b'"}}'),
    "not JSON": (200, {"Content-Type": "application/json"}, b"<html>maintenance</html>"),
    "nested too deep": (200, {"Content-Type": "application/json"}, NESTED),
    "not CKAN": (200, {"Content-Type": "application/json"}, b'{"success": false}'),
    "server error": (500, {}, b"oops"),
    "redirect off http": (302, {"Location": "file:///etc/passwd"}, b""),
}


@pytest.fixture(scope="module")
def harvested(ckan, tmp_path_factory) -> Path:
    """A home that harvested the CKAN fixtures once (in process: the command line's exit
    codes are checked in test_an_unreadable_remote_exits_1)."""
    url, _ = ckan
    home = tmp_path_factory.mktemp("harvested")
    source = registry.add(home, url, "ckan", "hdx", "peer-agency", "data@example.org", None,
                          "2026-01-01T00:00:00+00:00")
    harvester_account(home, source)
    assert len(run_source(home, "hdx").new) == 4
    return home


@pytest.mark.parametrize("answer", list(HOSTILE))
def test_an_unreadable_remote_changes_nothing(portal, harvested, answer):
    url, served = portal
    served.hostile = HOSTILE[answer]
    failed = run_source(harvested, "hdx")
    assert failed.error and url in failed.error
    assert failed.new == failed.changed == failed.gone == []
    assert len(registry.state(harvested, "hdx")["datasets"]) == 4  # nothing marked gone
    served.hostile = None
    recovered = run_source(harvested, "hdx")
    assert recovered.unchanged == 4 and recovered.gone == [] and recovered.error is None


def test_an_unreadable_remote_exits_1(portal, scratch_home):
    url, served = portal
    add(scratch_home, url, "ckan", "hdx")
    served.hostile = HOSTILE["not JSON"]
    (failed,) = run(scratch_home, "hdx", status=1)
    assert "not valid JSON" in failed["error"]


CSW_ROOT = b'<csw:GetRecordsResponse xmlns:csw="http://www.opengis.net/cat/csw/2.0.2">'
HOSTILE_XML = {
    "entity expansion": b'<!DOCTYPE r [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                        + CSW_ROOT + b"&b;</csw:GetRecordsResponse>",
    "external entity": b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
                       + CSW_ROOT + b"&x;</csw:GetRecordsResponse>",
    "not XML": b"<html>maintenance",
    "not CSW": b"<ows:ExceptionReport xmlns:ows='http://www.opengis.net/ows'/>",
}


@pytest.mark.parametrize("answer", list(HOSTILE_XML))
def test_a_hostile_csw_answer_changes_nothing(portal, scratch_home, answer):
    """A CSW's XML is parsed without DTDs or entities; an answer that is not a GetRecords
    response is an error of the run, which changes nothing."""
    url, served = portal
    served.hostile = (200, {"Content-Type": "application/xml"}, HOSTILE_XML[answer])
    registry.add(scratch_home, url, "csw", "peer-csw", "peer-agency", "data@example.org", None,
                 "2026-01-01T00:00:00+00:00")
    failed = run_source(scratch_home, "peer-csw")
    assert failed.error and url in failed.error, failed.error
    assert failed.new == failed.changed == failed.gone == []
    assert registry.state(scratch_home, "peer-csw")["datasets"] == {}


# --- scheduled runs on the job queue ---------------------------------------------------------

@pytest.mark.parametrize("raw", ["soon", "0", "0.05", "-1", "86401", "nan", "inf"])
def test_a_bad_harvest_check_interval_is_refused_naming_the_setting_and_value(raw, monkeypatch):
    monkeypatch.setenv("TAZA_HARVEST_CHECK_SECONDS", raw)
    with pytest.raises(SettingError) as refused:
        check_seconds()
    assert str(refused.value) == \
        f"TAZA_HARVEST_CHECK_SECONDS: expected seconds from 0.1 to 86400, got {raw!r}"


@pytest.mark.parametrize(("raw", "seconds"), [("", 60.0), (" ", 60.0), ("0.1", 0.1),
                                              ("2.5", 2.5), ("86400", 86_400.0)])
def test_the_harvest_check_interval_takes_seconds_or_its_default(raw, seconds, monkeypatch):
    monkeypatch.setenv("TAZA_HARVEST_CHECK_SECONDS", raw)
    assert check_seconds() == seconds


@pytest.mark.embedded_only(
    "reads the SQLite job queue (jobs/queue.sqlite); on PostgreSQL (procrastinate): "
    "tests/test_harvest_postgresql.py::"
    "test_a_scheduled_source_runs_once_across_two_workers_of_their_own_homes")
def test_a_scheduled_source_is_harvested_by_taza_worker(portal, scratch_home):
    """`taza harvest add --every 1d`: `taza worker` (SQLite queue) queues one harvest job when
    the source is due and runs it; the job's result is the run's report; the next run is due
    a day after this one started."""
    url, _ = portal
    add(scratch_home, url, "ckan", "hdx", "--every", "1d")
    assert "\tevery 1d\tnever run" in taza("harvest", "list", home=scratch_home).stdout
    env = dict(os.environ, TAZA_HOME=str(scratch_home), TAZA_HARVEST_CHECK_SECONDS="0.2",
               **home_environment(scratch_home))
    with (scratch_home / "worker.log").open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "catalog.cli", "worker"], env=env,
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            finished = wait_for_harvest_job(scratch_home, worker)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=120)
    last = registry.state(scratch_home, "hdx")["last_run"]
    assert len(last["new"]) == 4 and last["error"] is None
    assert finished.state == SUCCEEDED and finished.result == last
    assert len(harvest_jobs(scratch_home)) == 1  # checked many times, queued once
    started = dt.datetime.fromisoformat(last["started"])
    assert due_sources(scratch_home, started + dt.timedelta(hours=23)) == []
    assert due_sources(scratch_home, started + dt.timedelta(days=1)) == ["hdx"]


def harvest_jobs(home: Path) -> list[str]:
    queue = home / "jobs" / "queue.sqlite"
    if not queue.exists():
        return []
    with sqlite3.connect(f"file:{queue}?mode=ro", uri=True) as connection:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone():
            return []  # the worker made the file and is making the table
        return [row[0] for row in connection.execute(
            "SELECT id FROM jobs WHERE kind = ? ORDER BY created", (HARVEST_JOB,))]


def wait_for_harvest_job(home: Path, worker: subprocess.Popen, limit_s: float = 180) -> Job:
    """The first harvest job once it is done (bounded: the worker must not have died)."""
    jobs = open_jobs(home)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and worker.poll() is None:
        found = [jobs.get(job_id) for job_id in harvest_jobs(home)]
        if found and found[0].done:
            return found[0]
        time.sleep(0.2)
    raise AssertionError((home / "worker.log").read_text())


def test_bad_schedules_are_refused(scratch_home):
    result = taza("harvest", "add", "http://127.0.0.1:9/", "--type", "ckan", "--name", "hdx",
                  "--org", "peer-agency", "--email", "a@example.org", "--every", "1s",
                  home=scratch_home, check=False)
    assert result.returncode == 2 and "--every" in result.stderr
    assert registry.sources(scratch_home) == {}
    for every in ("5m", "0d", "367d", "daily", "1 d", "1d "):
        with pytest.raises(registry.HarvestError, match="--every"):
            every_seconds(every)
    assert [every_seconds(e) for e in ("15m", "6h", "1d")] == [900, 21_600, 86_400]


# --- the command line ----------------------------------------------------------------------

@pytest.mark.parametrize("arguments,message", [
    (("file:///etc/passwd", "--type", "ckan", "--name", "local"), "only http(s)"),
    (("http://user:secret@127.0.0.1/", "--type", "ckan", "--name", "creds"), "credentials"),
    (("http://127.0.0.1:9/", "--type", "ckan", "--name", "Bad Name"), "--name"),
])
def test_bad_sources_are_refused(scratch_home, arguments, message):
    result = taza("harvest", "add", *arguments, "--org", "peer-agency", "--email",
                  "a@example.org", home=scratch_home, check=False)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_remove_forgets_the_source_but_keeps_its_drafts(portal, scratch_home):
    url, _ = portal
    add(scratch_home, url, "ckan", "hdx")
    run(scratch_home, "hdx")
    user = harvester_account(scratch_home, registry.source(scratch_home, "hdx"))
    taza("harvest", "remove", "hdx", home=scratch_home)
    assert taza("harvest", "list", home=scratch_home).stdout == ""
    unknown = taza("harvest", "run", "hdx", home=scratch_home, check=False)
    assert unknown.returncode == 2 and "no harvest source 'hdx'" in unknown.stderr
    assert drafts.get_draft(scratch_home, user, "hdx-cod-ab-kgz")["state"] == "draft"
