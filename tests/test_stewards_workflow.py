"""The stewards' workflow on the real server (2 gunicorn workers): roles, review, versions,
rollback, withdrawal, the audit log, and the same operations through `taza`."""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.conftest import taza
from tests.stewards_support import (
    RUN_PROFILE,
    STATE_PROFILES,
    api_environment,  # noqa: F401 (an autouse fixture)
    assert_state_on_its_engine,
    get_with_worker,
    make_manifest,
    polygon_features,
    running_api,
    state_profile,
    token_hashes,
    workers,
    write_geojson,
)

PROPAGATION_BOUND_S = 2.0  # issue 5: published changes show within 2 s on every worker


@pytest.fixture(scope="module", params=RUN_PROFILE)
def api(request, tmp_path_factory):
    """The server (on the run's profile); a test parametrised over STATE_PROFILES runs on each
    engine."""
    home = tmp_path_factory.mktemp("stewards-workflow")
    with state_profile(request, "stewards_workflow") as profile, \
            running_api(home, workers=2, **profile) as running:
        yield running


def publish_version(api, dataset_id: str, count: int, folder, author: str = "alice") -> dict:
    source = write_geojson(folder / f"parcels-{count}.geojson", polygon_features(count))
    assert api.upload(dataset_id, source, author).status_code == 201
    return api.review_and_publish(dataset_id, author)


def served_by_worker(api, dataset_id: str) -> dict[str, dict[int, set]]:
    """What /ogc and /stac answer now, per gunicorn worker: fresh connections until every
    worker has answered at least twice (the worker of each connection is read from /proc)."""
    every = set(workers(api.server))
    reads = {
        "ogc": (f"/ogc/collections/{dataset_id}/items?limit=1",
                lambda r: r.json()["numberMatched"] if r.status_code == 200 else r.status_code),
        "stac": (f"/stac/collections/{dataset_id}/items", _stac_versions),
    }
    answers: dict[str, dict[int, set]] = {}
    for kind, (path, read) in reads.items():
        per_worker: dict[int, list] = {}
        for _ in range(100):
            response, worker = get_with_worker(api.server, path)
            per_worker.setdefault(worker, []).append(read(response))
            if set(per_worker) >= every and all(len(v) >= 2 for v in per_worker.values()):
                break
        answers[kind] = {worker: set(values) for worker, values in per_worker.items()}
    return answers


def _stac_versions(response) -> tuple | int:
    """The dataset versions the STAC items link to (asset hrefs /assets/<id>/<version>/...)."""
    if response.status_code != 200:
        return response.status_code
    return tuple(sorted({a["href"].split("/assets/")[1].split("/")[1]
                         for item in response.json()["features"]
                         for a in item["assets"].values() if "/assets/" in a["href"]}))


def assert_served_everywhere(api, dataset_id: str, count: int, version: str) -> None:
    answers = served_by_worker(api, dataset_id)
    every = set(workers(api.server))
    assert len(every) == 2
    assert answers == {"ogc": dict.fromkeys(every, {count}),
                       "stac": dict.fromkeys(every, {(version,)})}, answers


def test_review_publish_versions_rollback_withdraw(api, tmp_path):
    dataset_id = api.new_id("parcels")
    api.create(dataset_id)
    assert api.put_manifest(dataset_id, make_manifest(dataset_id)).status_code == 200
    assert api.upload(dataset_id, write_geojson(tmp_path / "v1.geojson",
                                                polygon_features(5))).status_code == 201

    # Drafts are private: anonymous 401, another organisation 403, absent from public lists.
    assert api.get(f"/api/datasets/{dataset_id}/draft").status_code == 401
    assert api.get(f"/api/datasets/{dataset_id}/draft/report").status_code == 401
    assert api.get(f"/api/datasets/{dataset_id}/draft", "bob").status_code == 403
    assert api.upload(dataset_id, tmp_path / "v1.geojson", "bob").status_code == 403
    assert api.put_manifest(dataset_id, make_manifest(dataset_id), "bob").status_code == 403
    assert api.post(f"/api/datasets/{dataset_id}/draft/submit", "bob").status_code == 403
    assert api.get(f"/api/datasets/{dataset_id}").status_code == 401  # not public: sign in
    assert api.get(f"/api/datasets/{dataset_id}", "bob").status_code == 403
    assert dataset_id not in {d["id"] for d in api.get("/api/datasets").json()["datasets"]}
    assert api.get(f"/api/datasets/{dataset_id}/draft", "anna").status_code == 200  # same org

    # Nothing is published without a reviewer who is not an author.
    assert api.post(f"/api/datasets/{dataset_id}/draft/publish", "alice").status_code == 409
    assert api.post(f"/api/datasets/{dataset_id}/draft/submit", "alice").status_code == 200
    assert api.post(f"/api/datasets/{dataset_id}/draft/approve", "alice").status_code == 403
    assert api.post(f"/api/datasets/{dataset_id}/draft/approve", "rex").status_code == 403
    assert api.get("/api/reviews", "rita").json()["drafts"][0]["dataset_id"] == dataset_id
    assert api.post(f"/api/datasets/{dataset_id}/draft/approve", "rita").status_code == 200
    assert api.publish(dataset_id, "alice")["version"] == 1
    api.wait_served(dataset_id, 1)

    # Version 2, with both workers serving version 1 first (so each has a release to drop).
    assert_served_everywhere(api, dataset_id, 5, "1")
    source = write_geojson(tmp_path / "v2.geojson", polygon_features(3))
    assert api.upload(dataset_id, source, "anna").status_code == 201
    for step, user in (("submit", "anna"), ("approve", "rita")):
        assert api.post(f"/api/datasets/{dataset_id}/draft/{step}", user).status_code == 200
    second = api.publish(dataset_id, "anna")
    published_at = time.monotonic()
    assert second["version"] == 2
    time.sleep(max(0.0, published_at + PROPAGATION_BOUND_S - time.monotonic()))
    assert_served_everywhere(api, dataset_id, 3, "2")

    # Only the live version is public (issue 11); the dataset's stewards still reach version 1.
    public = api.get(f"/api/datasets/{dataset_id}/versions").json()
    assert [(v["version"], v["live"]) for v in public["versions"]] == [(2, True)]
    versions = api.get(f"/api/datasets/{dataset_id}/versions", "alice").json()
    assert [(v["version"], v["live"], v["published_by"]) for v in versions["versions"]] == [
        (1, False, "alice"), (2, True, "anna")]
    old_file = f"/api/datasets/{dataset_id}/versions/1/files/{dataset_id}.geojson"
    assert api.get(old_file).status_code == 401
    old = api.get(old_file, "alice")
    assert old.status_code == 200 and len(old.json()["features"]) == 5
    manifest = api.get(f"/api/datasets/{dataset_id}/versions/1/files/manifest.yaml", "alice")
    assert manifest.status_code == 200 and f"id: {dataset_id}" in manifest.text
    assert api.get(f"/api/datasets/{dataset_id}/versions/1/files/record.json",
                   "alice").status_code == 404

    # Another organisation can neither roll back nor withdraw.
    assert api.post(f"/api/datasets/{dataset_id}/rollback", "bob",
                    json={"version": 1}).status_code == 403
    assert api.post(f"/api/datasets/{dataset_id}/withdraw", "bob").status_code == 403
    assert api.post(f"/api/datasets/{dataset_id}/rollback", "alice",
                    json={"version": 9}).status_code == 404

    rolled = api.post(f"/api/datasets/{dataset_id}/rollback", "alice", json={"version": 1})
    assert rolled.status_code == 200
    api.wait_served(dataset_id, 1)

    assert api.post(f"/api/datasets/{dataset_id}/withdraw", "alice").status_code == 200
    api.wait_served(dataset_id, None)
    assert api.get(f"/api/datasets/{dataset_id}/versions").status_code == 401  # anonymous
    assert len(api.get(f"/api/datasets/{dataset_id}/versions", "alice").json()["versions"]) == 2
    assert api.post(f"/api/datasets/{dataset_id}/withdraw", "alice").status_code == 409
    restored = api.post(f"/api/datasets/{dataset_id}/rollback", "alice", json={"version": 2})
    assert restored.status_code == 200
    api.wait_served(dataset_id, 2)

    # Who did what, in order, in a chain that verifies.
    log = api.get(f"/api/audit?dataset={dataset_id}", "root").json()
    assert log["chain"]["ok"]
    actions = [(e["actor"], e["action"]) for e in log["entries"]]
    # Each release switch: an intent entry before it, the outcome after (issue 11, item 5).
    assert actions[:11] == [
        ("alice", "dataset.create"), ("alice", "draft.create"), ("alice", "draft.manifest"),
        ("alice", "draft.upload"), ("alice", "draft.submit"), ("rita", "draft.approve"),
        ("alice", "draft.publish_queued"), ("alice", "release.intent"),
        ("alice", "dataset.publish"), ("alice", "draft.publish"), ("anna", "draft.create")]
    assert actions[-10:] == [
        ("anna", "draft.publish_queued"), ("anna", "release.intent"),
        ("anna", "dataset.publish"), ("anna", "draft.publish"),
        ("alice", "release.intent"), ("alice", "dataset.rollback"),
        ("alice", "release.intent"), ("alice", "dataset.withdraw"),
        ("alice", "release.intent"), ("alice", "dataset.rollback")]
    assert api.get("/api/audit", "alice").status_code == 403
    assert api.get("/api/audit").status_code == 401
    assert api.get("/api/audit?limit=0", "root").status_code == 400


def test_reject_with_comment_and_edits_void_approval(api, tmp_path):
    source = write_geojson(tmp_path / "p.geojson", polygon_features(2))
    dataset_id, answer = api.draft_dataset("rejected", source)
    assert answer.status_code == 201
    base = f"/api/datasets/{dataset_id}/draft"
    assert api.post(f"{base}/submit", "alice").status_code == 200
    assert api.post(f"{base}/reject", "rita", json={}).status_code == 400
    rejected = api.post(f"{base}/reject", "rita", json={"comment": "Cite the survey year."})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    draft = api.get(base, "alice").json()
    assert draft["comment"] == "Cite the survey year." and draft["reviewed_by"] == "rita"
    assert api.post(f"{base}/submit", "alice").status_code == 200
    assert api.post(f"{base}/approve", "rita").status_code == 200
    # An edit after the approval sends the draft back: the approval saw other content.
    edited = api.put_manifest(dataset_id, make_manifest(dataset_id, attribution="Survey 2024"))
    assert edited.status_code == 200
    assert api.get(base, "alice").json()["state"] == "draft"
    assert api.post(f"{base}/publish", "alice").status_code == 409
    log = api.get(f"/api/audit?dataset={dataset_id}&actor=alice", "root").json()["entries"]
    assert log[-1]["action"] == "draft.manifest"
    assert log[-1]["detail"]["review_voided"] == "approved"
    # A reviewer who edited the draft cannot approve it either.
    assert api.upload(dataset_id, source, "root").status_code == 201
    assert api.post(f"{base}/submit", "alice").status_code == 200
    assert api.post(f"{base}/approve", "root").status_code == 403
    assert api.request("DELETE", base, "alice").status_code == 204
    assert api.get(base, "alice").status_code == 404


def test_tokens_and_accounts(api):
    assert api.get("/api/me", "alice").json()["organisation"] == "ministry-a"
    token = api.tokens["alice"]
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")  # one character off
    for header in ("Bearer taza_0123456789abcdef_" + "x" * 43, "Bearer nonsense",
                   "Basic YWxpY2U6cGFzcw==", f"Bearer {altered}"):
        answer = api.get("/api/me", headers={"Authorization": header})
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith(
            "Bearer"), header
    # A wrong token is refused on public reads too (it is a mistake worth saying).
    assert api.get("/api/datasets", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.post("/api/datasets", json={"id": "anonymous-data"}).status_code == 401
    assert api.post("/api/datasets", "bob", json={"id": "bobs-data",
                                                 "organisation": "ministry-a"}).status_code == 403
    assert api.post("/api/datasets", "rita", json={"id": "ritas-data"}).status_code == 403

    fresh = taza("users", "token", "anna", "--revoke-others", home=api.server.home).stdout.strip()
    assert api.get("/api/me", "anna").status_code == 401  # the old token is revoked
    api.tokens["anna"] = fresh
    assert api.get("/api/me", "anna").status_code == 200
    taza("users", "add", "temp", "--role", "steward", "--org", "ministry-a", home=api.server.home)
    token = taza("users", "token", "temp", home=api.server.home).stdout.strip()
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    taza("users", "disable", "temp", home=api.server.home)
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    listing = taza("users", "list", home=api.server.home).stdout
    assert "temp" in listing and "disabled" in listing
    refused = taza("users", "add", "xavier", "--role", "steward", home=api.server.home,
                   check=False)
    assert refused.returncode == 1 and "--org" in refused.stderr
    secrets = token_hashes(api)
    assert all(len(s) == 64 for s in secrets)
    assert not any(api.tokens["alice"].split("_", 2)[2] in s for s in secrets)  # hashed only
    # (split at most twice: the secret itself may hold "_")


@pytest.mark.parametrize("api", STATE_PROFILES, indirect=True)
def test_cli_versions_rollback_withdraw_are_audited(api, tmp_path):
    """Drafts, review, publish, versions, rollback, withdrawal and the audit chain, on both
    engines of the stewards' state."""
    dataset_id, answer = api.draft_dataset("cli", write_geojson(tmp_path / "a.geojson",
                                                                polygon_features(4)))
    api.review_and_publish(dataset_id)
    publish_version(api, dataset_id, 2, tmp_path)
    home = api.server.home
    listing = taza("versions", dataset_id, home=home).stdout
    assert "version 1" in listing and "version 2" in listing and "live" in listing
    assert "version 1 is live" in taza("rollback", dataset_id, "1", home=home).stdout
    api.wait_served(dataset_id, 1)
    again = taza("rollback", dataset_id, "1", home=home, check=False)
    assert again.returncode == 1 and "live already" in again.stderr
    missing = taza("rollback", dataset_id, "7", home=home, check=False)
    assert missing.returncode == 1 and "no released version 7" in missing.stderr
    assert "withdrawn" in taza("withdraw", dataset_id, home=home).stdout
    api.wait_served(dataset_id, None)
    assert "is withdrawn" in taza("versions", dataset_id, home=home).stdout
    log = api.get(f"/api/audit?dataset={dataset_id}", "root").json()["entries"]
    cli = [(e["action"], e["detail"]) for e in log if e["actor"].startswith("cli:")]
    assert [action for action, _ in cli] == ["release.intent", "dataset.rollback",
                                             "release.intent", "dataset.withdraw"]
    assert "audit chain ok" in taza("audit", home=home).stderr
    assert_state_on_its_engine(api)


@pytest.mark.embedded_only(
    "edits the audit table of stewards.sqlite (its append-only triggers); PostgreSQL's "
    "taza_state.audit refuses the same: tests/test_state_migrate.py::"
    "test_migrate_serves_the_same_catalog_and_verify_names_a_change")
def test_audit_log_is_append_only_and_tamper_evident(scratch_home):
    for name in ("one", "two", "three"):
        taza("users", "add", name, "--role", "reviewer", home=scratch_home)
    assert taza("audit", "--verify", home=scratch_home).returncode == 0
    database = sqlite3.connect(scratch_home / "stewards/stewards.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        database.execute("UPDATE audit SET actor = 'someone' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        database.execute("DELETE FROM audit WHERE seq = 2")
    # Someone with write access to the file drops the trigger and edits an entry: detected.
    database.execute("DROP TRIGGER audit_no_update")
    database.execute("UPDATE audit SET detail = '{\"user\": \"mallory\"}' WHERE seq = 2")
    database.commit()
    broken = taza("audit", "--verify", home=scratch_home, check=False)
    assert broken.returncode == 1 and "BROKEN at entry 2" in broken.stderr
