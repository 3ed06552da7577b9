"""Authorise first (issue 11, item 3) and reserved dataset ids (item 8), on the real server.

Every /api route checks the account, the role and the organisation before it reads the body
or looks anything up: requests are sent as raw HTTP whose body never comes, so an answer at
all proves the server did not wait for it. Anonymous requests for anything not public get 401
whether it exists or not; another organisation's upload gets 403 with the upload folder
untouched; failed uploads leave no temporary file, draft row or draft folder; per-organisation
quotas on open drafts and upload bytes answer a JSON naming the quota and what is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import yaml
from flask import Flask

from catalog.jobs import open_jobs
from catalog.manifest import RESERVED_IDS
from catalog.portal import i18n
from catalog.processes import PROCESSORS
from catalog.stewards import api as stewards_api
from catalog.store import CatalogStore
from tests.conftest import DATASETS, ROOT, start_server, stop_server, taza
from tests.stewards_support import (
    RUN_PROFILE,
    STATE_PROFILES,
    Api,
    api_environment,  # noqa: F401 (an autouse fixture)
    make_manifest,
    polygon_features,
    running_api,
    state_profile,
    wait_for,
    write_geojson,
)

STRINGS = i18n.strings()
UPLOAD_LIMIT = 3_000_000  # TAZA_UPLOAD_MAX_BYTES of the module's server
# The Content-Length of bodies that never come: within the upload limit, so a server that
# reads before it checks would wait for them (instead of answering 413 at once).
NEVER_SENT = UPLOAD_LIMIT - 1
PUBLIC_ROUTES = {("GET", "/api"), ("GET", "/api/"), ("GET", "/api/datasets"),
                 ("GET", "/api/session"), ("POST", "/api/session"), ("POST", "/api/password"),
                 ("GET", "/api/openapi.json")}


@pytest.fixture(scope="module", params=RUN_PROFILE)
def api(request, tmp_path_factory):
    """The server (on the run's profile); tests marked `on_both_engines` run on each engine."""
    home = tmp_path_factory.mktemp("stewards-access")
    with state_profile(request, "stewards_access") as profile, running_api(
            home, workers=2, TAZA_UPLOAD_MAX_BYTES=UPLOAD_LIMIT, **profile) as running:
        yield running


@pytest.fixture(scope="module")
def private(api) -> str:
    """A dataset of ministry-a with an open draft (manifest, upload): nothing of it is public."""
    dataset_id = api.new_id("private")
    api.create(dataset_id)
    assert api.put_manifest(dataset_id, make_manifest(dataset_id)).status_code == 200
    return dataset_id


def raw_request(server_url: str, method: str, path: str, headers: dict[str, str],
                body: bytes = b"", declared: int | None = None) -> tuple[int, dict]:
    """Send a request whose Content-Length announces `declared` bytes but only `body` follows;
    return the status and JSON of the answer. If the server read the body before answering,
    it would wait for bytes that never come and this would time out (30 s)."""
    url = urllib.parse.urlsplit(server_url)
    length = len(body) if declared is None else declared
    head = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close",
            f"Content-Length: {length}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    payload = rest.split(b"\r\n\r\n", 1)[1]
    return int(status_line.split()[1]), json.loads(payload) if payload else {}


def _complete(answer: bytes) -> bool:
    head, _, payload = answer.partition(b"\r\n\r\n")
    match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    return match is None or len(payload) >= int(match.group(1))


# Tokens, accounts and draft rows are read on the state's engine: these run on both.
on_both_engines = pytest.mark.parametrize("api", STATE_PROFILES, indirect=True)


def api_routes() -> list[tuple[str, str, object]]:
    """(method, rule, view) of every route of the stewards' blueprint."""
    app = Flask(__name__)
    store = CatalogStore(Path(os.environ.get("TMPDIR", "/tmp")) / f"access-{os.getpid()}")
    app.register_blueprint(stewards_api.create_blueprint(store, open_jobs(store.home)))
    return [(method, rule.rule, app.view_functions[rule.endpoint])
            for rule in app.url_map.iter_rules() if rule.endpoint.startswith("stewards_api.")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]


def fill(rule: str, dataset_id: str) -> str:
    values = {"dataset_id": dataset_id, "version": "1", "filename": "x.gpkg",
              "token_id": "0123456789abcdef", "job_id": "0" * 32}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule)


def tmp_files(home: Path) -> list[str]:
    folder = home / "stewards" / "tmp"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def draft_rows(home: Path, dataset_id: str) -> int:
    """Draft rows of the dataset, on the engine of the test's server (api_environment)."""
    url = os.environ.get("TAZA_DATABASE_URL")
    if url:
        with psycopg.connect(url) as database:
            return database.execute("SELECT COUNT(*) FROM taza_state.drafts WHERE dataset_id "
                                    "= %s", (dataset_id,)).fetchone()[0]
    with sqlite3.connect(home / "stewards" / "stewards.sqlite") as database:
        return database.execute("SELECT COUNT(*) FROM drafts WHERE dataset_id = ?",
                                (dataset_id,)).fetchone()[0]


def draft_folders(home: Path) -> list[str]:
    folder = home / "stewards" / "drafts"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- every route: a policy, and 401 before the body ----------------------------------------

def test_every_api_route_declares_a_policy():
    routes = api_routes()
    assert len(routes) > 20
    unguarded = [(method, rule) for method, rule, view in routes
                 if not hasattr(view, "policy")]
    assert unguarded == []


@on_both_engines
def test_anonymous_gets_401_on_every_private_route_before_the_body_is_read(api, private):
    missing = "no-such-dataset"
    checked = 0
    for method, rule, _ in api_routes():
        if (method, rule) in PUBLIC_ROUTES:
            continue
        for dataset_id in (private, missing):
            path = fill(rule, dataset_id)
            status, body = raw_request(api.url, method, path,
                                       {"Content-Type": "application/octet-stream"},
                                       declared=NEVER_SENT)
            assert status == 401, (method, path, body)
            assert body["code"] == "Unauthorized"
            checked += 1
    assert checked > 40
    assert tmp_files(api.server.home) == []


@on_both_engines
def test_upload_to_another_organisation_is_403_before_a_byte_is_read(api, private):
    home = api.server.home
    before = (tmp_files(home), draft_folders(home), draft_rows(home, private))
    for method, query, content_type in (
            ("PUT", "?filename=parcels.geojson", "application/octet-stream"),
            ("POST", "", "multipart/form-data; boundary=xyz")):
        status, body = raw_request(
            api.url, method, f"/api/datasets/{private}/draft/source{query}",
            {"Authorization": f"Bearer {api.tokens['bob']}", "Content-Type": content_type},
            body=b"first bytes", declared=NEVER_SENT)
        assert status == 403 and "ministry-a" in body["description"], body
    # The same with the whole body sent: refused, nothing stored anywhere.
    source = write_geojson(home / "bobs.geojson", polygon_features(3))
    assert api.upload(private, source, "bob").status_code == 403
    assert api.upload_multipart(private, source, "bob").status_code == 403
    assert (tmp_files(home), draft_folders(home), draft_rows(home, private)) == before
    draft = api.get(f"/api/datasets/{private}/draft", "alice").json()
    assert draft["upload"] is None


def test_anonymous_gets_401_for_private_things_whether_they_exist_or_not(api, private,
                                                                          tmp_path):
    for path in (f"/api/datasets/{private}", "/api/datasets/no-such-dataset",
                 f"/api/datasets/{private}/draft", "/api/datasets/no-such-dataset/draft",
                 f"/api/datasets/{private}/versions", "/api/datasets/no-such-dataset/versions",
                 "/api/datasets/Not_An_Id", "/api/reviews", "/api/me", "/api/tokens"):
        answer = api.get(path)
        assert answer.status_code == 401, (path, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    # Signed in: another organisation 403, a dataset that does not exist 404.
    assert api.get(f"/api/datasets/{private}", "bob").status_code == 403
    assert api.get(f"/api/datasets/{private}/versions", "bob").status_code == 403
    assert api.get("/api/datasets/no-such-dataset", "bob").status_code == 404
    assert api.get(f"/api/datasets/{private}", "alice").status_code == 200

    # A live dataset with two versions: the dataset and its live version are public, the
    # older version is not (401 anonymous, readable to its organisation).
    dataset_id = api.new_id("public")
    api.create(dataset_id)
    assert api.put_manifest(dataset_id, make_manifest(dataset_id)).status_code == 200
    for count in (3, 4):
        source = write_geojson(tmp_path / f"v{count}.geojson", polygon_features(count))
        assert api.upload(dataset_id, source).status_code == 201
        api.review_and_publish(dataset_id)
    assert api.get(f"/api/datasets/{dataset_id}").status_code == 200
    assert api.get(f"/api/datasets/{dataset_id}/versions").status_code == 200
    files = f"/api/datasets/{dataset_id}/versions/{{}}/files/{dataset_id}.geojson"
    assert api.get(files.format(2)).status_code == 200
    assert api.get(files.format(1)).status_code == 401
    assert api.get(files.format(7)).status_code == 401  # absent or not: the same answer
    assert api.get(files.format(1), "anna").status_code == 200
    assert api.get(files.format(1), "bob").status_code == 403
    assert api.get(f"/api/datasets/{dataset_id}/draft").status_code == 401


# -- failed uploads leave nothing behind ----------------------------------------------------

@on_both_engines
def test_failed_uploads_leave_no_file_no_draft_row_no_draft_folder(api, tmp_path):
    home = api.server.home
    dataset_id = api.new_id("empty")
    api.create(dataset_id)  # registered, no draft yet
    source = write_geojson(tmp_path / "ok.geojson", polygon_features(3))
    big = tmp_path / "big.geojson"
    big.write_bytes(b" " * (UPLOAD_LIMIT + 1))
    base = f"/api/datasets/{dataset_id}/draft/source"

    def chunks():
        for _ in range(UPLOAD_LIMIT // 65536 + 2):
            yield b" " * 65536

    failures = {
        "anonymous": lambda: api.upload(dataset_id, source, None),
        "other organisation": lambda: api.upload(dataset_id, source, "bob"),
        "reviewer": lambda: api.upload(dataset_id, source, "rita"),
        "too large (declared)": lambda: api.upload(dataset_id, big),
        "too large (streamed)": lambda: api.put(base, "alice", data=chunks(),
                                                params={"filename": "big.geojson"}),
        "unsupported format": lambda: api.put(base, "alice", data=b"x",
                                              params={"filename": "notes.docx"}),
        "no filename": lambda: api.put(base, "alice", data=b"x"),
        "malformed multipart": lambda: api.post(
            base, "alice", data=b"--xyz\r\nnonsense",
            headers={"Content-Type": "multipart/form-data; boundary=xyz"}),
        "bad option": lambda: api.upload(dataset_id, source, repair="everything"),
    }
    expected = {"anonymous": 401, "other organisation": 403, "reviewer": 403,
                "too large (declared)": 413, "too large (streamed)": 413,
                "unsupported format": 415, "no filename": 400, "malformed multipart": 400,
                "bad option": 400}
    folders = draft_folders(home)
    for name, attempt in failures.items():
        answer = attempt()
        assert answer.status_code == expected[name], (name, answer.text)
        assert answer.json()["description"], name
        assert tmp_files(home) == [], name
        assert draft_rows(home, dataset_id) == 0, name
        assert draft_folders(home) == folders, name

    # The client goes away mid-stream: the part file the server was writing is removed.
    url = urllib.parse.urlsplit(api.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall((f"PUT {base}?filename=cut.geojson HTTP/1.1\r\nHost: {url.netloc}\r\n"
                      f"Authorization: Bearer {api.tokens['alice']}\r\n"
                      f"Content-Length: {UPLOAD_LIMIT}\r\n\r\n").encode() + b" " * 1_200_000)
        assert wait_for(lambda: tmp_files(home), 30, 0.02), "the upload never started"
    assert wait_for(lambda: tmp_files(home) == [], 30), tmp_files(home)
    assert draft_rows(home, dataset_id) == 0 and draft_folders(home) == folders
    assert api.get(f"/api/datasets/{dataset_id}/draft", "alice").status_code == 404


def test_worker_killed_mid_upload_its_replacement_removes_the_part_file(api, private):
    """The part file is named after the receiving worker; gunicorn's replacement worker
    removes the dead one's leftovers when it starts, before any other upload."""
    home = api.server.home
    url = urllib.parse.urlsplit(api.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall((f"PUT /api/datasets/{private}/draft/source?filename=cut.geojson "
                      f"HTTP/1.1\r\nHost: {url.netloc}\r\n"
                      f"Authorization: Bearer {api.tokens['alice']}\r\n"
                      f"Content-Length: {UPLOAD_LIMIT}\r\n\r\n").encode() + b" " * 1_200_000)
        assert wait_for(lambda: tmp_files(home), 30, 0.02)
        [part] = tmp_files(home)
        os.kill(int(part.split("-")[1]), signal.SIGKILL)
        assert wait_for(lambda: tmp_files(home) == [], 30), tmp_files(home)
    assert wait_for(lambda: api.get("/healthz").status_code == 200, 30)
    assert api.get(f"/api/datasets/{private}/draft", "alice").json()["upload"] is None


# -- quotas ---------------------------------------------------------------------------------

def test_quotas_on_open_drafts_and_upload_bytes(tmp_path_factory, tmp_path):
    source = write_geojson(tmp_path / "parcels.geojson", polygon_features(20))
    size = source.stat().st_size
    home = tmp_path_factory.mktemp("stewards-quotas")
    with running_api(home, workers=2, TAZA_QUOTA_OPEN_DRAFTS=2,
                     TAZA_QUOTA_UPLOAD_BYTES=size + size // 2) as api:
        limits = api.get("/api").json()["limits"]
        assert limits["quota_open_drafts"] == 2
        assert limits["quota_upload_bytes"] == size + size // 2
        ids = [api.new_id("quota") for _ in range(3)]
        for dataset_id in ids:
            api.create(dataset_id, "bob")
        for dataset_id in ids[:2]:
            assert api.put_manifest(dataset_id, make_manifest(dataset_id), "bob").status_code \
                == 200

        # A third open draft: 409, for a manifest and for an upload, before the body is read.
        third = api.put_manifest(ids[2], make_manifest(ids[2]), "bob")
        assert third.status_code == 409, third.text
        refusal = third.json()
        assert (refusal["code"], refusal["quota"], refusal["limit"], refusal["used"],
                refusal["organisation"]) == ("QuotaExceeded", "open_drafts", 2, 2, "ministry-b")
        assert "TAZA_QUOTA_OPEN_DRAFTS" in refusal["description"]
        status, body = raw_request(api.url, "PUT",
                                   f"/api/datasets/{ids[2]}/draft/source?filename=a.geojson",
                                   {"Authorization": f"Bearer {api.tokens['bob']}"},
                                   declared=NEVER_SENT // 100)
        assert status == 409 and body["quota"] == "open_drafts"
        assert draft_rows(home, ids[2]) == 0
        # Another organisation has its own quota.
        other = api.new_id("other-org")
        api.create(other, "alice")
        assert api.put_manifest(other, make_manifest(other), "alice").status_code == 200

        # Upload bytes: the first upload fits, a second one in another draft does not.
        assert api.upload(ids[0], source, "bob").status_code == 201
        declared = api.upload(ids[1], source, "bob")
        assert declared.status_code == 413, declared.text
        refusal = declared.json()
        assert (refusal["quota"], refusal["used"], refusal["requested"],
                refusal["limit"]) == ("upload_bytes", size, size, size + size // 2)

        def streamed():  # no Content-Length: refused while the bytes arrive
            data = source.read_bytes()
            for start in range(0, len(data), 4096):
                yield data[start:start + 4096]

        chunked = api.put(f"/api/datasets/{ids[1]}/draft/source", "bob", data=streamed(),
                          params={"filename": "parcels.geojson"})
        assert chunked.status_code == 413 and chunked.json()["quota"] == "upload_bytes"
        assert tmp_files(home) == []
        assert api.get(f"/api/datasets/{ids[1]}/draft", "bob").json()["upload"] is None
        # Replacing a draft's own upload counts its bytes once.
        assert api.upload(ids[0], source, "bob").status_code == 201
        # Discarding the draft frees its bytes and its place.
        assert api.request("DELETE", f"/api/datasets/{ids[0]}/draft", "bob").status_code == 204
        assert api.upload(ids[1], source, "bob").status_code == 201
        assert api.put_manifest(ids[2], make_manifest(ids[2]), "bob").status_code == 200


# -- reserved ids ---------------------------------------------------------------------------

# -- refusals carry a message code -----------------------------------------------------------

def test_refusals_carry_a_message_code_and_params_beside_the_english_description(api):
    """What a steward can cause from the pages answers `messageCode` + `params` (the pages
    say them in ky/ru/en: strings.yml problem.*); `code` and `description` stay for clients."""
    dataset_id = api.new_id("coded")
    api.create(dataset_id)
    cases = [
        (api.post("/api/datasets", "alice", json={"id": "Bad_Id"}), 400, "dataset_id_invalid",
         {}),
        (api.post("/api/datasets", "alice", json={"id": dataset_id}), 409, "dataset_exists",
         {"id": dataset_id, "organisation": "ministry-a"}),
        (api.get(f"/api/datasets/{dataset_id}/draft", "bob"), 403, "dataset_not_yours",
         {"id": dataset_id, "user": "bob"}),
        (api.post(f"/api/datasets/{dataset_id}/draft/submit", "alice"), 404, "draft_missing",
         {"id": dataset_id}),
        (api.get("/api/datasets", "alice", params={"page": "2"}), 400, "query_params_unknown",
         {"unknown": "page", "allowed": "-"}),
        (api.post("/api/session", json={"name": "alice", "password": "wrong-password"}), 401,
         "signin_wrong", {}),
    ]
    for answer, status, code, params in cases:
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert (body["messageCode"], body["params"]) == (code, params), body
        assert body["code"] and body["description"]
        assert set(STRINGS[f"problem.{code}"]) == {"ky", "ru", "en"}


# -- unfinished resumable uploads: in the quota, and removed once too old ----------------------

def put_piece(api, dataset_id: str, data: bytes, end: int, user: str = "bob"):
    """The first piece (bytes 0-END) of a resumable upload of `data`."""
    return api.put(f"/api/datasets/{dataset_id}/draft/source", user,
                   params={"filename": "parcels.geojson",
                           "fingerprint": f"sha256:{hashlib.sha256(data).hexdigest()}"},
                   data=data[:end + 1], headers={"Content-Range": f"bytes 0-{end}/{len(data)}"})


def age(folder: Path, seconds: float) -> None:
    """Make an unfinished upload look untouched for `seconds` (no sleeping)."""
    for path in folder.iterdir():
        stamp = path.stat().st_mtime - seconds
        os.utime(path, (stamp, stamp))


def test_unfinished_uploads_hold_quota_bytes_and_old_leftovers_are_removed(tmp_path_factory,
                                                                           tmp_path):
    source = write_geojson(tmp_path / "parcels.geojson", polygon_features(20))
    data = source.read_bytes()
    size = len(data)
    home = tmp_path_factory.mktemp("stewards-leftovers")
    with running_api(home, workers=2, TAZA_QUOTA_UPLOAD_BYTES=size + size // 2,
                     TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS=3600) as api:
        first, second, third = (api.new_id("leftover") for _ in range(3))
        for dataset_id, user in ((first, "bob"), (second, "bob"), (third, "alice")):
            api.create(dataset_id, user)
            assert api.put_manifest(dataset_id, make_manifest(dataset_id), user).ok
        leftover = home / "stewards" / "resume" / first
        # Half of a resumable upload of `first` holds the whole file's bytes of the quota.
        assert put_piece(api, first, data, size // 2).status_code == 202
        refused = api.upload(second, source, "bob")
        assert refused.status_code == 413, refused.text
        body = refused.json()
        assert (body["quota"], body["used"], body["requested"]) == ("upload_bytes", size, size)
        assert (body["messageCode"], body["params"]["used"]) == ("upload_quota_exceeded", size)
        assert put_piece(api, second, data, 99).status_code == 413  # and a resumable start
        assert (leftover / "part").stat().st_size == size // 2 + 1  # a recent one is kept
        # Untouched past TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS: removed when an upload starts.
        age(leftover, 3601)
        assert api.upload(second, source, "bob").status_code == 201
        assert not (leftover / "part").exists() and not (leftover / "meta.json").exists()
        resume_url = f"/api/datasets/{first}/draft/source/resume"
        assert api.get(resume_url, "bob").json() == {"upload": None}
        # ... and by `taza worker`, without any upload.
        assert api.request("DELETE", f"/api/datasets/{second}/draft", "bob").status_code == 204
        assert put_piece(api, third, data, 99, "alice").status_code == 202
        kept = home / "stewards" / "resume" / third
        age(kept, 60)  # touched a minute ago: not a leftover yet
        assert put_piece(api, first, data, 99).status_code == 202
        age(leftover, 7200)
        env = dict(os.environ, TAZA_HOME=str(home), TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS="3600")
        with (tmp_path / "worker.log").open("w") as log:
            worker = subprocess.Popen([sys.executable, "-m", "catalog.cli", "worker"], env=env,
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
            try:
                assert wait_for(lambda: not (leftover / "part").exists(), 60), \
                    (tmp_path / "worker.log").read_text()
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=120)
        assert api.get(resume_url, "bob").json() == {"upload": None}
        assert (kept / "part").stat().st_size == 100
        assert api.get(f"/api/datasets/{third}/draft/source/resume", "alice").json()["upload"][
            "received"] == 100


def unfinished_rows(url: str) -> dict[str, tuple[str, int]]:
    """The unfinished uploads the database records: dataset -> (node, declared total)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT dataset_id, node, total "
                                  "FROM taza_state.unfinished_uploads").fetchall()
    return {dataset_id: (node, total) for dataset_id, node, total in rows}


def test_unfinished_uploads_through_two_homes_on_one_database_share_the_quota(
        private_postgres, tmp_path_factory, tmp_path):
    """Two app nodes with homes of their own on one PostgreSQL (as behind nginx, where each
    node keeps the pieces it receives): an unfinished upload held by one node counts in the
    quota checked by the other; its row goes when it is abandoned, finished or too old; and
    two uploads started side by side through the two nodes never pass the quota together."""
    data = write_geojson(tmp_path / "parcels.geojson", polygon_features(20)).read_bytes()
    size = len(data)
    private_postgres.drop_database("quota_two_homes")
    url = private_postgres.create_database("quota_two_homes")
    profile = {"TAZA_DATABASE_URL": url, "TAZA_QUOTA_UPLOAD_BYTES": size + size // 2,
               "TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS": 3600}
    home_a, home_b = (tmp_path_factory.mktemp(f"quota-node-{name}") for name in "ab")
    try:
        with running_api(home_a, workers=1, TAZA_NODE="node-a", **profile) as node_a:
            shutil.copytree(home_a / "keys", home_b / "keys")  # one audit chain, one key
            server_b = start_server(home_b, workers=1, env={
                **{key: str(value) for key, value in profile.items()}, "TAZA_NODE": "node-b"})
            node_b = Api(server_b, node_a.tokens)
            try:
                first, second, third = (node_a.new_id("two-homes") for _ in range(3))
                for dataset_id in (first, second, third):
                    node_a.create(dataset_id, "bob")
                    assert node_a.put_manifest(dataset_id, make_manifest(dataset_id), "bob").ok
                # Half an upload through node A holds the whole file's bytes on node B too.
                assert put_piece(node_a, first, data, size // 2).status_code == 202
                assert unfinished_rows(url) == {first: ("node-a", size)}
                refused = put_piece(node_b, second, data, 99)
                assert refused.status_code == 413, refused.text
                body = refused.json()
                assert (body["messageCode"], body["params"]["used"]) == (
                    "upload_quota_exceeded", size), body
                whole = node_b.upload(second, tmp_path / "parcels.geojson", "bob")
                assert whole.status_code == 413 and whole.json()["used"] == size, whole.text
                assert not (home_b / "stewards" / "resume" / second / "meta.json").exists()
                # Abandoned through its node: the row goes, node B may start.
                resume_url = f"/api/datasets/{first}/draft/source/resume"
                assert node_a.request("DELETE", resume_url, "bob").status_code == 204
                assert unfinished_rows(url) == {}
                assert put_piece(node_b, second, data, 99).status_code == 202
                assert unfinished_rows(url) == {second: ("node-b", size)}
                assert put_piece(node_a, third, data, 99).status_code == 413
                # Finished: the row goes (the draft's upload holds the bytes now).
                rest = node_b.put(f"/api/datasets/{second}/draft/source", "bob",
                                  params={"filename": "parcels.geojson", "fingerprint":
                                          f"sha256:{hashlib.sha256(data).hexdigest()}"},
                                  data=data[100:],
                                  headers={"Content-Range": f"bytes 100-{size - 1}/{size}"})
                assert rest.status_code == 201, rest.text
                assert unfinished_rows(url) == {}
                assert node_a.request("DELETE", f"/api/datasets/{second}/draft",
                                      "bob").status_code == 204
                # A row untouched past the maximum age (its node died, say) stops counting
                # and goes when an upload starts on any node.
                assert put_piece(node_a, first, data, 99).status_code == 202
                with psycopg.connect(url) as connection:
                    connection.execute("UPDATE taza_state.unfinished_uploads "
                                       "SET touched = touched - 7200")
                assert put_piece(node_b, second, data, 99).status_code == 202
                assert unfinished_rows(url) == {second: ("node-b", size)}
                assert node_b.request("DELETE", f"/api/datasets/{second}/draft/source/resume",
                                      "bob").status_code == 204
                # Side by side, through both nodes, again and again: never both.
                for _ in range(4):
                    with ThreadPoolExecutor(2) as pool:
                        answers = list(pool.map(
                            lambda pair: put_piece(pair[0], pair[1], data, 99).status_code,
                            ((node_a, first), (node_b, second))))
                    assert sorted(answers) == [202, 413], answers
                    assert len(unfinished_rows(url)) == 1
                    for node, dataset_id in ((node_a, first), (node_b, second)):
                        node.request("DELETE", f"/api/datasets/{dataset_id}/draft/source/resume",
                                     "bob")
                    assert unfinished_rows(url) == {}
            finally:
                stop_server(server_b)
    finally:
        private_postgres.drop_database("quota_two_homes")


def test_every_process_id_is_reserved():
    assert set(PROCESSORS) <= RESERVED_IDS
    assert {"metadata", "collections", "items", "search", "queryables", "conformance", "api",
            "ogc", "stac", "assets", "tiles", "latest", "jobs", "processes"} <= RESERVED_IDS


@pytest.mark.parametrize("reserved", ["site-screening", "metadata", "collections", "latest"])
def test_reserved_ids_are_refused_by_the_api(api, reserved):
    answer = api.post("/api/datasets", "alice", json={"id": reserved})
    assert answer.status_code == 400, answer.text
    assert "reserved" in answer.json()["description"]
    assert api.get(f"/api/datasets/{reserved}", "alice").status_code == 404


def test_reserved_ids_are_refused_by_taza_publish(scratch_home, tmp_path):
    manifest = yaml.safe_load((DATASETS / "airports.yaml").read_text(encoding="utf-8"))
    manifest["id"] = "zonal-statistics"
    manifest["source"] = str(DATASETS / manifest["source"])
    path = tmp_path / "zonal-statistics.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    refused = taza("publish", str(path), home=scratch_home, check=False)
    assert refused.returncode == 1
    assert "reserved" in refused.stderr and "process" in refused.stderr
    assert not (scratch_home / "datasets" / "zonal-statistics").exists()
    validated = taza("validate", str(path), home=scratch_home, check=False)
    assert validated.returncode == 1 and "reserved" in validated.stderr
