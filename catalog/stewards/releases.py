"""Publishing approved drafts, and the versions of a dataset: list, download, roll back, withdraw.

Publishing goes through catalog.publish, unchanged: each publish is a new immutable version,
switched in atomically, so a failure or a killed process leaves the previous version serving.
A publish runs as a job (catalog.jobs): the API answers at once with the job to follow, and the
job waits its turn for the store lock. Rollback and withdrawal are quick and run in the
request; they never queue: a second operation on the same dataset gets 409
(catalog.stewards.locks), and so does one while a publish holds the store lock (StoreBusy).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from catalog import publish as pipeline
from catalog.core.record import MANIFEST_FILE, Record
from catalog.jobs import Handler, Job, JobConflict, JobFailed, Jobs, Progress
from catalog.problems import PublishError, ValidationFailed
from catalog.sources.isolation import ReaderUnavailable
from catalog.stewards.access import in_scope, owner, require_scope
from catalog.stewards.accounts import User
from catalog.stewards.db import connect
from catalog.stewards.drafts import (
    check_dataset_id,
    content_digest,
    draft_files,
    open_draft,
    set_published,
    share_draft,
    unshare_draft,
)
from catalog.stewards.errors import (
    Conflict,
    NotFound,
    ServiceError,
    Unavailable,
    Unprocessable,
)
from catalog.stewards.locks import dataset_lock
from catalog.store import CatalogStore, StoreBusy, audit

BUSY = "another publish is in progress; try again when it has finished"
PUBLISH_JOB = "publish"
JOB_ID = re.compile(r"[0-9a-f]{32}")


def request_publish(home: Path, jobs: Jobs, user: User | None, dataset_id: str) -> Job:
    """Queue the publish of the approved draft as the dataset's next version; the job says how
    it goes (job_view). Refusals come at once: 409 for a draft that is not approved, changed
    after its approval or already being published."""
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id):
        with connect(home, write=False) as connection:
            user = require_scope(user, owner(connection, dataset_id), dataset_id)
            draft = open_draft(connection, dataset_id)
            _check_approved(home, draft, dataset_id)
        try:
            job = jobs.submit(PUBLISH_JOB, {"dataset": dataset_id, "draft": draft["id"],
                                            "actor": user.name}, subject=dataset_id,
                              unique=True)
        except JobConflict as err:
            raise Conflict(f"a publish of {dataset_id} is {err.job.state} already; follow it "
                           f"at {job_path(err.job.id)}", job=job_path(err.job.id),
                           message_code="publish_running", params={"id": dataset_id}) from err
        audit.record(home, user.name, "draft.publish_queued", dataset_id, draft=draft["id"],
                     job=job.id)
    return job


def run_publish(home: Path, store: CatalogStore, args: dict, progress: Progress) -> dict:
    """The publish job: the same pipeline as `taza publish`, waiting its turn for the store.

    Safe to run again after a worker died in it: a draft its earlier run published answers
    with that version; a release its earlier run switched in is found unchanged by the
    pipeline (same fingerprint); anything else starts over (the store clears the debris)."""
    dataset_id, draft_id, actor = args["dataset"], args["draft"], args["actor"]
    try:
        with dataset_lock(home, dataset_id, wait=True):
            with connect(home, write=False) as connection:
                draft = connection.execute("SELECT * FROM drafts WHERE id = ?",
                                           (draft_id,)).fetchone()
            if draft is not None and draft["state"] == "published":
                return _published(dataset_id, draft["published_version"],
                                  draft["published_release"], unchanged=False)
            _check_approved(home, draft, dataset_id)
            files = draft_files(home, draft_id)
            result = _run_pipeline(home, store, actor, dataset_id, draft_id,
                                   files.pipeline_manifest(dataset_id), progress)
            with connect(home) as connection:
                set_published(connection, draft, result.version, result.release)
                audit.append(connection, actor, "draft.publish", dataset_id, draft=draft_id,
                             version=result.version, release=result.release,
                             unchanged=result.unchanged)
            # The version now holds the data; the draft keeps its manifest and report only.
            shutil.rmtree(files.upload, ignore_errors=True)
            share_draft(home, files, draft_id)
    except ServiceError as err:
        raise JobFailed(err.as_dict()) from err
    return _published(dataset_id, result.version, result.release, result.unchanged)


def job_handlers(home: Path, store: CatalogStore) -> dict[str, Handler]:
    """The stewards' jobs, by kind, for the workers (the app's threads, `taza worker`)."""
    return {PUBLISH_JOB: lambda args, progress: run_publish(home, store, args, progress)}


def job_view(home: Path, jobs: Jobs, user: User | None, job_id: str) -> dict:
    """A publish job's status: state, progress in percent and step; once it succeeded, the
    version and links to it; once it failed, the error. The dataset's stewards, reviewers
    and admins only (others: 404 when it does not exist, else 401/403)."""
    job = jobs.get(job_id) if JOB_ID.fullmatch(job_id) else None
    if job is None or job.kind != PUBLISH_JOB:
        raise NotFound(f"no job {job_id[:64]!r}", message_code="job_not_found")
    _actor(home, user, job.subject)
    dataset_id = job.subject
    links = [{"rel": "self", "href": job_path(job.id), "type": "application/json"},
             {"rel": "up", "href": f"/api/datasets/{dataset_id}", "type": "application/json"}]
    view = {"id": job.id, "kind": job.kind, "dataset": dataset_id, "draft": job.args["draft"],
            "state": job.state, "progress": job.progress, "step": job.step,
            "attempts": job.attempts, "created": _instant(job.created),
            "started": _instant(job.started), "finished": _instant(job.finished)}
    if job.result is not None:
        view["result"] = job.result
        version = job.result["version"]
        links += [
            {"rel": "version", "href": f"/api/datasets/{dataset_id}/versions",
             "type": "application/json", "title": f"version {version}"},
            {"rel": "collection", "href": f"/ogc/collections/{dataset_id}",
             "type": "application/json"},
            {"rel": "alternate", "href": f"/datasets/{dataset_id}", "type": "text/html"}]
    if job.error is not None:
        view["error"] = job.error
    view["links"] = links
    return view


def job_path(job_id: str) -> str:
    return f"/api/jobs/{job_id}"


def _check_approved(home: Path, draft, dataset_id: str) -> None:
    if draft is None or draft["state"] != "approved":
        state = draft["state"] if draft else "none"
        raise Conflict(f"only an approved draft is published; the draft of "
                       f"{dataset_id} is {state}", state=state,
                       message_code="publish_needs_approval",
                       params={"id": dataset_id, "state": state})
    if content_digest(draft_files(home, draft["id"])) != draft["approved_digest"]:
        raise Conflict("the draft changed after its approval; submit it again",
                       message_code="draft_changed_after_approval")


def _published(dataset_id: str, version: int, release: int, unchanged: bool) -> dict:
    return {"dataset": dataset_id, "version": version, "release": release,
            "unchanged": unchanged}


def _instant(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


def _run_pipeline(home: Path, store: CatalogStore, actor: str, dataset_id: str, draft_id: int,
                  manifest: Path, progress: Progress) -> pipeline.PublishResult:
    try:
        return pipeline.publish(manifest, store, wait=True, actor=actor,
                                context={"draft": draft_id}, progress=progress)
    except ValidationFailed as err:
        audit.record(home, actor, "draft.publish_failed", dataset_id, draft=draft_id,
                     problems=[str(p) for p in err.problems])
        raise Unprocessable("the pipeline rejected the draft; nothing was published",
                            problems=[p.as_dict() for p in err.problems],
                            message_code="pipeline_rejected") from err
    except PublishError as err:
        audit.record(home, actor, "draft.publish_failed", dataset_id, draft=draft_id,
                     error=str(err))
        if isinstance(err, ReaderUnavailable) or isinstance(err.__cause__, ReaderUnavailable):
            # The server, not the draft, is at fault: the operator must fix isolation.
            raise Unavailable(f"{err}; the previous version keeps serving",
                              problems=[err.as_problem().as_dict()],
                              message_code="reader_unavailable") from err
        raise Unprocessable(f"{err}; the previous version keeps serving",
                            problems=[err.as_problem().as_dict()],
                            message_code="publish_failed") from err


def list_versions(home: Path, store: CatalogStore, user: User | None, dataset_id: str) -> dict:
    """The released versions, oldest first, with their files and who published them.

    Only the live version is public; the dataset's stewards, reviewers and admins also see
    the earlier ones (taken down by a rollback or a withdrawal, not purged).
    """
    check_dataset_id(dataset_id)
    live = store.live_version(dataset_id)
    mine = _in_scope(home, user, dataset_id)
    versions = released_versions(store, dataset_id) if mine else [live] if live else []
    if not versions:
        raise NotFound(f"no published dataset {dataset_id!r}",
                       message_code="dataset_not_published", params={"id": dataset_id})
    published_by = _publishers(home, dataset_id)
    listing = []
    for version in versions:
        record = store.record(dataset_id, version)
        base = f"/api/datasets/{dataset_id}/versions/{version}/files"
        listing.append({
            "version": version, "live": version == live,
            "published_at": record.published, "source_file": record.source_file,
            "published_by": published_by.get(version),
            "files": [{"file": a.file, "size": a.size, "checksum": a.checksum,
                       "media_type": a.media_type, "href": f"{base}/{a.file}"}
                      for a in record.assets]
            + [{"file": MANIFEST_FILE, "href": f"{base}/{MANIFEST_FILE}"}],
        })
    return {"dataset": dataset_id, "live_version": live, "versions": listing}


def version_file(home: Path, store: CatalogStore, user: User | None, dataset_id: str,
                 version: int, filename: str) -> tuple[Record, str, bool]:
    """The record and media type of one file of a released version, and whether it is public.

    The live version's files are public. Any other version is the dataset's stewards',
    reviewers' and admins': anonymous 401 and other organisations 403, whether or not it
    exists, so nobody learns which versions there were.
    """
    check_dataset_id(dataset_id)
    public = version == store.live_version(dataset_id)
    if not public:
        _actor(home, user, dataset_id)
        if version not in released_versions(store, dataset_id):
            raise NotFound(f"{dataset_id} has no released version {version}",
                           message_code="version_not_released",
                           params={"id": dataset_id, "version": version})
    record = store.record(dataset_id, version)
    files = record.files()
    if filename not in files:
        raise NotFound(f"{dataset_id} version {version} has no file {filename!r}",
                       message_code="version_file_missing",
                       params={"id": dataset_id, "version": version, "filename": filename[:200]})
    return record, files[filename], public


def rollback(home: Path, store: CatalogStore, user: User | None, dataset_id: str,
             version: int) -> dict:
    """Make an earlier version live again, as a new release (also after a withdrawal)."""
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id):
        user = _actor(home, user, dataset_id)
        if version not in released_versions(store, dataset_id):
            raise NotFound(f"{dataset_id} has no released version {version}; versions: "
                           f"{released_versions(store, dataset_id)}",
                           message_code="version_not_released",
                           params={"id": dataset_id, "version": version})
        if store.live_version(dataset_id) == version:
            raise Conflict(f"version {version} of {dataset_id} is live already",
                           message_code="version_live_already",
                           params={"id": dataset_id, "version": version})
        try:
            result = pipeline.rollback(store, dataset_id, version, wait=False, actor=user.name)
        except StoreBusy as err:
            raise Conflict(BUSY, message_code="store_busy") from err
        except PublishError as err:
            raise Conflict(str(err), problems=[err.as_problem().as_dict()],
                           message_code="release_failed") from err
    return {"dataset": dataset_id, "version": version, "release": result.release}


def withdraw(home: Path, store: CatalogStore, user: User | None, dataset_id: str) -> dict:
    """Take the dataset out of the live catalog; its versions stay for a rollback."""
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id):
        user = _actor(home, user, dataset_id)
        if store.live_version(dataset_id) is None:
            raise Conflict(f"{dataset_id} is not published",
                           message_code="dataset_not_live", params={"id": dataset_id})
        try:
            release = pipeline.withdraw(store, dataset_id, wait=False, actor=user.name)
        except StoreBusy as err:
            raise Conflict(BUSY, message_code="store_busy") from err
        except PublishError as err:
            raise Conflict(str(err), problems=[err.as_problem().as_dict()],
                           message_code="release_failed") from err
    return {"dataset": dataset_id, "release": release}


def released_versions(store: CatalogStore, dataset_id: str) -> list[int]:
    """Versions that went live (a version still being written, or one a crash left behind
    before its release went live, is not one of them) and were not purged."""
    return store.released_versions(dataset_id)


def forget_published_drafts(home: Path) -> Callable[[str, int], int]:
    """For a purge: a remover of the stored files (manifest, report) of the draft that
    published a version. The draft's row stays, as history; returns the drafts emptied."""

    def remove(dataset_id: str, version: int) -> int:
        with connect(home, write=False) as connection:
            rows = connection.execute(
                "SELECT id FROM drafts WHERE dataset_id = ? AND state = 'published' "
                "AND published_version = ?", (dataset_id, version)).fetchall()
        for row in rows:
            files = draft_files(home, row["id"])
            shutil.rmtree(files.root, ignore_errors=True)
            unshare_draft(home, files, row["id"])
        return len(rows)

    return remove


def _actor(home: Path, user: User | None, dataset_id: str) -> User:
    with connect(home, write=False) as connection:
        return require_scope(user, owner(connection, dataset_id), dataset_id)


def _in_scope(home: Path, user: User | None, dataset_id: str) -> bool:
    with connect(home, write=False) as connection:
        return in_scope(user, owner(connection, dataset_id))


def _publishers(home: Path, dataset_id: str) -> dict[int, str]:
    """Who published each version: the actor of its draft.publish audit entry (the person who
    pressed publish, not the draft's author)."""
    with connect(home, write=False) as connection:
        rows = connection.execute(
            "SELECT actor, detail FROM audit WHERE dataset_id = ? AND action = 'draft.publish' "
            "ORDER BY seq", (dataset_id,)).fetchall()
    published = {}
    for row in rows:
        version = json.loads(row["detail"]).get("version")
        published.setdefault(version, row["actor"])  # an unchanged re-publish keeps the first
    return published
