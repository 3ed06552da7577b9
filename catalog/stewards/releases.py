"""Publishing approved drafts, and the versions of a dataset: list, download, roll back, withdraw.

Publishing goes through catalog.publish, unchanged: each publish is a new immutable version,
switched in atomically, so a failure or a killed process leaves the previous version serving.
The API never queues: a second operation on the same dataset gets 409 (catalog.stewards.locks),
and so does a publish while another dataset's publish holds the store lock (StoreBusy).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from catalog import publish as pipeline
from catalog.core.record import MANIFEST_FILE, Record
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
)
from catalog.stewards.errors import Conflict, NotFound, Unavailable, Unprocessable
from catalog.stewards.locks import dataset_lock
from catalog.store import CatalogStore, StoreBusy, audit

BUSY = "another publish is in progress; try again when it has finished"


def publish_draft(home: Path, store: CatalogStore, user: User | None, dataset_id: str) -> dict:
    """Publish the approved draft as the dataset's next version."""
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id):
        with connect(home, write=False) as connection:
            user = require_scope(user, owner(connection, dataset_id), dataset_id)
            draft = open_draft(connection, dataset_id)
            if draft is None or draft["state"] != "approved":
                state = draft["state"] if draft else "none"
                raise Conflict(f"only an approved draft is published; the draft of "
                               f"{dataset_id} is {state}", state=state)
        files = draft_files(home, draft["id"])
        if content_digest(files) != draft["approved_digest"]:
            raise Conflict("the draft changed after its approval; submit it again")
        result = _run_pipeline(home, store, user, dataset_id, draft["id"],
                               files.pipeline_manifest(dataset_id))
        with connect(home) as connection:
            set_published(connection, draft, result.version, result.release)
            audit.append(connection, user.name, "draft.publish", dataset_id, draft=draft["id"],
                         version=result.version, release=result.release,
                         unchanged=result.unchanged)
        # The version now holds the data; the draft keeps its manifest and report only.
        shutil.rmtree(files.upload, ignore_errors=True)
    return {"dataset": dataset_id, "version": result.version, "release": result.release,
            "unchanged": result.unchanged}


def _run_pipeline(home: Path, store: CatalogStore, user: User, dataset_id: str, draft_id: int,
                  manifest: Path) -> pipeline.PublishResult:
    try:
        return pipeline.publish(manifest, store, wait=False, actor=user.name,
                                context={"draft": draft_id})
    except StoreBusy as err:
        raise Conflict(BUSY) from err
    except ValidationFailed as err:
        audit.record(home, user.name, "draft.publish_failed", dataset_id, draft=draft_id,
                     problems=[str(p) for p in err.problems])
        raise Unprocessable("the pipeline rejected the draft; nothing was published",
                            problems=[p.as_dict() for p in err.problems]) from err
    except PublishError as err:
        audit.record(home, user.name, "draft.publish_failed", dataset_id, draft=draft_id,
                     error=str(err))
        if isinstance(err, ReaderUnavailable) or isinstance(err.__cause__, ReaderUnavailable):
            # The server, not the draft, is at fault: the operator must fix isolation.
            raise Unavailable(f"{err}; the previous version keeps serving") from err
        raise Unprocessable(f"{err}; the previous version keeps serving") from err


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
        raise NotFound(f"no published dataset {dataset_id!r}")
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
            raise NotFound(f"{dataset_id} has no released version {version}")
    record = store.record(dataset_id, version)
    files = record.files()
    if filename not in files:
        raise NotFound(f"{dataset_id} version {version} has no file {filename!r}")
    return record, files[filename], public


def rollback(home: Path, store: CatalogStore, user: User | None, dataset_id: str,
             version: int) -> dict:
    """Make an earlier version live again, as a new release (also after a withdrawal)."""
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id):
        user = _actor(home, user, dataset_id)
        if version not in released_versions(store, dataset_id):
            raise NotFound(f"{dataset_id} has no released version {version}; versions: "
                           f"{released_versions(store, dataset_id)}")
        if store.live_version(dataset_id) == version:
            raise Conflict(f"version {version} of {dataset_id} is live already")
        try:
            result = pipeline.rollback(store, dataset_id, version, wait=False, actor=user.name)
        except StoreBusy as err:
            raise Conflict(BUSY) from err
        except PublishError as err:
            raise Conflict(str(err)) from err
    return {"dataset": dataset_id, "version": version, "release": result.release}


def withdraw(home: Path, store: CatalogStore, user: User | None, dataset_id: str) -> dict:
    """Take the dataset out of the live catalog; its versions stay for a rollback."""
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id):
        user = _actor(home, user, dataset_id)
        if store.live_version(dataset_id) is None:
            raise Conflict(f"{dataset_id} is not published")
        try:
            release = pipeline.withdraw(store, dataset_id, wait=False, actor=user.name)
        except StoreBusy as err:
            raise Conflict(BUSY) from err
        except PublishError as err:
            raise Conflict(str(err)) from err
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
            shutil.rmtree(draft_files(home, row["id"]).root, ignore_errors=True)
        return len(rows)

    return remove


def _actor(home: Path, user: User | None, dataset_id: str) -> User:
    with connect(home, write=False) as connection:
        return require_scope(user, owner(connection, dataset_id), dataset_id)


def _in_scope(home: Path, user: User | None, dataset_id: str) -> bool:
    with connect(home, write=False) as connection:
        return in_scope(user, owner(connection, dataset_id))


def _publishers(home: Path, dataset_id: str) -> dict[int, str]:
    with connect(home, write=False) as connection:
        rows = connection.execute(
            "SELECT drafts.published_version, users.name FROM drafts JOIN users "
            "ON users.id = drafts.author_id WHERE drafts.dataset_id = ? "
            "AND drafts.state = 'published'", (dataset_id,)).fetchall()
    return {row["published_version"]: row["name"] for row in rows}
