"""Datasets and their drafts: manifest, upload, report, and the review workflow.

    draft --submit--> submitted --approve--> approved --publish--> published
                          |  \\--reject (comment)--> rejected
    Any edit (manifest or upload) returns a submitted, approved or rejected draft to `draft`:
    an approval covers exactly the content it saw.

A dataset has at most one open draft. Its files live in TAZA_HOME/stewards/drafts/<draft>/
(never served directly): manifest.txt as sent, upload/ (upload.json, original/, stage/ with the
normalised source and the pipeline's <id>.yaml) and report.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from catalog.core.assets import AssetUnavailable
from catalog.manifest import DATASET_ID, reserved_id
from catalog.safe_parse import UnsafeInput, load_yaml
from catalog.sources.findings import Finding, has_blocking
from catalog.sources.isolation import ReaderUnavailable
from catalog.sources.preview import PREVIEW_JSON, PREVIEW_PNG
from catalog.sources.reader import stage_upload
from catalog.sources.uploads import UnsupportedFormat, UploadLimits, UploadOptions, format_of
from catalog.stewards import report, resume, unfinished
from catalog.stewards.access import (
    EDITORS,
    REVIEWERS,
    in_scope,
    owner,
    require_role,
    require_scope,
    require_user,
)
from catalog.stewards.accounts import ORGANISATION, User, user_by_id
from catalog.stewards.config import StewardSettings
from catalog.stewards.db import connect, stewards_dir
from catalog.stewards.errors import (
    BadRequest,
    Conflict,
    DraftQuotaExceeded,
    Forbidden,
    NotFound,
    Unavailable,
    Unprocessable,
    Unsupported,
    UploadQuotaExceeded,
)
from catalog.stewards.locks import dataset_lock
from catalog.stewards.receive import Received
from catalog.store import CatalogStore, audit
from catalog.store.draft_objects import draft_objects
from catalog.store.release_records import RecordsUnavailable

OPEN_STATES = ("draft", "submitted", "approved", "rejected")
MAX_COMMENT = 4000
MAX_FILENAME_BYTES = 200


@dataclass(frozen=True)
class DraftFiles:
    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.txt"

    @property
    def upload(self) -> Path:
        return self.root / "upload"

    @property
    def upload_meta(self) -> Path:
        return self.upload / "upload.json"

    @property
    def stage(self) -> Path:
        return self.upload / "stage"

    @property
    def staged(self) -> Path:
        return self.stage / "staged.json"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    def pipeline_manifest(self, dataset_id: str) -> Path:
        return self.stage / f"{dataset_id}.yaml"

    def manifest_text(self) -> str | None:
        return self.manifest.read_text(encoding="utf-8") if self.manifest.exists() else None


def draft_files(home: Path, draft_id: int) -> DraftFiles:
    """The draft's folder in this home; on the PostgreSQL + object-store profile brought
    first to the copy in the bucket that the last change sent (catalog/store/draft_objects.py)."""
    files = DraftFiles(stewards_dir(home) / "drafts" / str(draft_id))
    sync = draft_objects(home)
    if sync is not None:
        try:
            sync.pull(draft_id, files.root)
        except (AssetUnavailable, RecordsUnavailable) as err:
            raise Unavailable(str(err), message_code="draft_store_unavailable") from err
    return files


def share_draft(home: Path, files: DraftFiles, draft_id: int) -> None:
    """After a change to a draft's files (under its dataset's lock): send them to the bucket,
    where other nodes read them (PostgreSQL + object-store profile; else nothing to do)."""
    sync = draft_objects(home)
    if sync is not None:
        try:
            sync.push(draft_id, files.root)
        except (AssetUnavailable, RecordsUnavailable) as err:
            raise Unavailable(str(err), message_code="draft_store_unavailable") from err


def unshare_draft(home: Path, files: DraftFiles, draft_id: int) -> None:
    """The draft's files are removed: from the bucket too (and other nodes' copies)."""
    sync = draft_objects(home)
    if sync is not None:
        try:
            sync.remove(draft_id, files.root)
        except (AssetUnavailable, RecordsUnavailable) as err:
            raise Unavailable(str(err), message_code="draft_store_unavailable") from err


# -- datasets ------------------------------------------------------------------------------

def check_dataset_id(dataset_id: str) -> str:
    if not isinstance(dataset_id, str) or not DATASET_ID.match(dataset_id):
        raise BadRequest("dataset ids: 3-64 characters, lowercase letters, digits and '-'",
                         message_code="dataset_id_invalid")
    return dataset_id


def create_dataset(home: Path, store: CatalogStore, user: User | None, dataset_id: str,
                   organisation: str | None = None) -> dict:
    """Register a dataset id for an organisation (a steward's own; any, for an admin)."""
    user = require_user(user)
    require_role(user, EDITORS, "creating a dataset")
    check_dataset_id(dataset_id)
    if reason := reserved_id(dataset_id):
        raise BadRequest(f"{reason}; choose another id", field="id",
                         message_code="dataset_id_reserved", params={"id": dataset_id})
    organisation = organisation or user.organisation
    if not isinstance(organisation, str) or not ORGANISATION.match(organisation):
        raise BadRequest("name the owning organisation (3-64 characters: a-z, 0-9, '-')",
                         message_code="organisation_invalid")
    if not user.is_admin and organisation != user.organisation:
        raise Forbidden(f"{user.name} creates datasets for {user.organisation} only",
                        message_code="organisation_not_yours",
                        params={"organisation": user.organisation})
    with connect(home) as connection:
        existing = owner(connection, dataset_id)
        if existing is not None:
            raise Conflict(f"{dataset_id} exists already (organisation {existing})",
                           message_code="dataset_exists",
                           params={"id": dataset_id, "organisation": existing})
        if store.versions(dataset_id) and not user.is_admin:
            raise Conflict(f"{dataset_id} is published by the catalog admins; ask an admin "
                           "to hand it to your organisation",
                           message_code="dataset_held_by_admins", params={"id": dataset_id})
        connection.execute("INSERT INTO datasets (id, organisation, created_by, created_at) "
                           "VALUES (?, ?, ?, ?)", (dataset_id, organisation, user.name,
                                                   audit.now()))
        audit.append(connection, user.name, "dataset.create", dataset_id,
                     organisation=organisation)
    return {"id": dataset_id, "organisation": organisation}


def list_datasets(home: Path, store: CatalogStore, user: User | None) -> list[dict]:
    """Live datasets for everyone, plus the ones in the user's scope with their draft."""
    release = store.current()
    live = dict(release.datasets) if release else {}
    with connect(home, write=False) as connection:
        owned = {row["id"]: row["organisation"]
                 for row in connection.execute("SELECT id, organisation FROM datasets")}
        drafts = {row["dataset_id"]: row for row in connection.execute(
            "SELECT * FROM drafts WHERE state IN (?, ?, ?, ?)", OPEN_STATES)}
    listing = []
    for dataset_id in sorted(set(live) | set(owned)):
        organisation = owned.get(dataset_id)
        mine = in_scope(user, organisation)
        if dataset_id not in live and not mine:
            continue
        entry = {"id": dataset_id, "organisation": organisation,
                 "live_version": live.get(dataset_id)}
        if mine and dataset_id in drafts:
            entry["draft"] = {"id": drafts[dataset_id]["id"],
                              "state": drafts[dataset_id]["state"]}
        listing.append(entry)
    return listing


def get_dataset(home: Path, store: CatalogStore, user: User | None, dataset_id: str) -> dict:
    check_dataset_id(dataset_id)
    release = store.current()
    live = release.datasets.get(dataset_id) if release else None
    with connect(home, write=False) as connection:
        organisation = owner(connection, dataset_id)
        mine = in_scope(user, organisation)
        if live is None and not (mine and (organisation or store.versions(dataset_id))):
            raise NotFound(f"no published dataset {dataset_id!r}",
                           message_code="dataset_not_published", params={"id": dataset_id})
        draft = _open_draft(connection, dataset_id) if mine else None
        view = {"id": dataset_id, "organisation": organisation, "live_version": live}
        if mine:  # what the stewards' page may ask for without meeting a 404
            view["released_versions"] = store.released_versions(dataset_id)
            view["manifest"] = draft is not None and draft_files(home, draft["id"]).manifest \
                .exists() or _published_manifest(connection, home, dataset_id) is not None
        if draft is not None:
            view["draft"] = _draft_view(connection, home, draft)
    if live is not None:
        view["title"] = store.record(dataset_id, live).manifest.title
    return view


# -- drafts --------------------------------------------------------------------------------

def get_draft(home: Path, user: User | None, dataset_id: str) -> dict:
    with connect(home, write=False) as connection:
        draft = _readable_draft(connection, user, dataset_id)
        return _draft_view(connection, home, draft)


def get_report(home: Path, user: User | None, dataset_id: str) -> dict:
    with connect(home, write=False) as connection:
        draft = _readable_draft(connection, user, dataset_id)
    data = _stored_report(draft_files(home, draft["id"]), dataset_id, draft["id"])
    return {**data, "state": draft["state"], "comment": draft["comment"]}


PREVIEW_FILES = {"json": (PREVIEW_JSON, "application/geo+json"),
                 "png": (PREVIEW_PNG, "image/png")}


def get_preview(home: Path, user: User | None, dataset_id: str, kind: str) -> tuple[bytes, str]:
    """The draft's map preview (catalog.sources.preview), as the isolated reader wrote it
    while staging the upload: the JSON (features or footprint) or the raster's PNG."""
    with connect(home, write=False) as connection:
        draft = _readable_draft(connection, user, dataset_id)
    name, media_type = PREVIEW_FILES[kind]
    path = draft_files(home, draft["id"]).stage / name
    if not path.is_file():
        raise NotFound(f"{dataset_id}'s draft has no map preview"
                       + ("" if kind == "json" else " image"),
                       message_code="preview_missing", params={"id": dataset_id})
    return path.read_bytes(), media_type


def get_manifest(home: Path, user: User | None, dataset_id: str) -> str:
    """The open draft's manifest; without an open draft, the last published one (the manifest
    the next draft starts from, so a form opened after a publication is not empty)."""
    with connect(home, write=False) as connection:
        check_dataset_id(dataset_id)
        require_scope(user, _known_owner(connection, dataset_id), dataset_id)
        draft = _open_draft(connection, dataset_id)
        if draft is not None:
            text = draft_files(home, draft["id"]).manifest_text()
        else:
            published = _published_manifest(connection, home, dataset_id)
            text = published.read_text(encoding="utf-8") if published else None
    if text is None:
        raise NotFound(f"{dataset_id} has no manifest yet",
                       message_code="manifest_none_yet", params={"id": dataset_id})
    return text


def manifest_fields(text: str) -> dict:
    """The manifest as a JSON object (dates as ISO text), for the stewards' form; a manifest
    that is not a YAML mapping can only be edited as text (422)."""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, UnsafeInput) as err:
        raise Unprocessable("the manifest is not valid YAML: edit it as YAML",
                            message_code="manifest_not_yaml") from err
    if not isinstance(data, dict):
        raise Unprocessable("the manifest is not a YAML mapping: edit it as YAML",
                            message_code="manifest_not_mapping")
    return json.loads(json.dumps(data, default=_iso))


def manifest_yaml(text: str) -> str:
    """The manifest as YAML: one stored as JSON (the form sends JSON) written as YAML, any
    other text (YAML, or not parseable) as it is."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, UnsafeInput):
        return text
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def review_queue(home: Path, user: User | None) -> list[dict]:
    """Submitted drafts the user may review."""
    user = require_user(user)
    require_role(user, REVIEWERS, "the review queue")
    with connect(home, write=False) as connection:
        rows = connection.execute(
            "SELECT drafts.*, datasets.organisation FROM drafts JOIN datasets "
            "ON datasets.id = drafts.dataset_id WHERE drafts.state = 'submitted' "
            "ORDER BY drafts.updated_at").fetchall()
        return [_draft_view(connection, home, row) for row in rows
                if in_scope(user, row["organisation"])]


def put_manifest(home: Path, user: User | None, dataset_id: str, text: str) -> tuple[dict, bool]:
    """Store the steward's manifest (YAML or JSON); return the report and whether it passes."""
    check_dataset_id(dataset_id)
    if "\x00" in text:
        raise BadRequest("the manifest must be text", message_code="manifest_not_text")
    with dataset_lock(home, dataset_id):
        with connect(home) as connection:
            user = _editor(connection, user, dataset_id)
            draft = _draft_for_edit(connection, home, user, dataset_id, "draft.manifest")
            files = draft_files(home, draft["id"])
            files.root.mkdir(parents=True, exist_ok=True)
            old_id_field = _id_field(files.manifest_text())
            _atomic_write(files.manifest, text)
        if _id_field(text) != old_id_field and files.upload_meta.exists():
            _restage(files, _id_field(text))
        result = _refresh_report(files, dataset_id, draft["id"])
        share_draft(home, files, draft["id"])
    findings = report.manifest_findings(text, dataset_id, files.root)
    return result, not has_blocking(findings)


def accept_upload(home: Path, user: User | None, dataset_id: str, received: Received,
                  options: UploadOptions, limits: UploadLimits) -> tuple[dict, bool]:
    """Make a received file the draft's source; return the report and whether it passes.

    Nothing of a refused upload stays: the received file is removed, and a draft is created
    only once the quotas are checked (in the same transaction)."""
    try:
        check_dataset_id(dataset_id)
        if len(received.filename.encode()) > MAX_FILENAME_BYTES or "\x00" in received.filename:
            raise BadRequest(f"file names are at most {MAX_FILENAME_BYTES} bytes",
                             message_code="filename_too_long", params={"max": MAX_FILENAME_BYTES})
        file_format = format_of(received.filename)
    except UnsupportedFormat as err:
        received.path.unlink(missing_ok=True)
        raise Unsupported(str(err),
                          message_code="file_type_unsupported",
                          params={"filename": received.filename[:200]}) from err
    except BadRequest:
        received.path.unlink(missing_ok=True)
        raise
    try:
        with dataset_lock(home, dataset_id):
            with connect(home, write=False) as connection:
                user = _editor(connection, user, dataset_id)
                id_field = _id_field(_manifest_for_upload(connection, home, dataset_id))
                unchanged = _unchanged_upload(connection, home, dataset_id, received, options)
            if unchanged is not None:  # the same bytes, options and name: no second check,
                # but still an edit (its author joins the contributors, a review is voided)
                with connect(home) as connection:
                    draft = _draft_for_edit(connection, home, user, dataset_id, None)
                    _log_edit(connection, user, draft, "draft.upload",
                              filename=received.filename, size=received.size,
                              sha256=received.sha256, unchanged=True)
                return unchanged
            # Staged outside the draft: a draft (new or not) changes only once all went well.
            fresh = stewards_dir(home) / "tmp" / f"stage-{os.getpid()}-{uuid.uuid4().hex}"
            try:
                staged = _stage_upload(fresh, received, options, limits, file_format, id_field)
                draft = _commit_upload(home, user, dataset_id, received, options, staged, fresh)
            finally:
                shutil.rmtree(fresh, ignore_errors=True)
            files = draft_files(home, draft["id"])
            result = _refresh_report(files, dataset_id, draft["id"])
            share_draft(home, files, draft["id"])
    finally:
        received.path.unlink(missing_ok=True)
    return result, not has_blocking(staged.findings)


def _unchanged_upload(connection, home: Path, dataset_id: str, received: Received,
                      options: UploadOptions) -> tuple[dict, bool] | None:
    """The open draft's report when the upload is the one it already holds (same SHA-256,
    file name and options): checking it again would only cost the steward time."""
    draft = _open_draft(connection, dataset_id)
    if draft is None:
        return None
    files = draft_files(home, draft["id"])
    if not (files.upload_meta.exists() and files.staged.exists() and files.report.exists()):
        return None
    meta = json.loads(files.upload_meta.read_text())
    if (meta["sha256"], meta["filename"], meta["options"]) != (
            received.sha256, received.filename, options.as_dict()):
        return None
    staged = json.loads(files.staged.read_text())
    report_data = json.loads(files.report.read_text())
    return report_data, not any(f["status"] == "blocking" for f in staged["findings"])


def _commit_upload(home: Path, user: User, dataset_id: str, received: Received,
                   options: UploadOptions, staged, fresh: Path) -> sqlite3.Row:
    """In one transaction: the bytes quota, the draft (created if none), the audit entry; the
    staged folder becomes the draft's upload. A new draft's files go if anything fails."""
    with connect(home) as connection:
        created = _open_draft(connection, dataset_id) is None
        files = None
        try:
            _reserve_upload_bytes(connection, home, dataset_id,
                                  received.size if staged.source else 0)
            draft = _draft_for_edit(connection, home, user, dataset_id, None)
            files = draft_files(home, draft["id"])
            files.root.mkdir(parents=True, exist_ok=True)
            _swap(files.upload, fresh)
            _set_upload_bytes(connection, draft["id"], _held_bytes(files))
            _log_edit(connection, user, draft, "draft.upload", filename=received.filename,
                      size=received.size, sha256=received.sha256, format=staged.format,
                      options=options.as_dict(), blocking=_count(staged.findings))
        except BaseException:
            if created and files is not None:
                shutil.rmtree(files.root, ignore_errors=True)
            raise
    return draft


def _manifest_for_upload(connection, home: Path, dataset_id: str) -> str | None:
    """The manifest an upload is staged with: the open draft's, or the one a new draft starts
    from (the last published draft's)."""
    draft = _open_draft(connection, dataset_id) or connection.execute(
        "SELECT id FROM drafts WHERE dataset_id = ? AND state = 'published' ORDER BY id DESC "
        "LIMIT 1", (dataset_id,)).fetchone()
    return draft_files(home, draft["id"]).manifest_text() if draft else None


def upload_allowance(home: Path, dataset_id: str, declared: int | None) -> int:
    """Bytes the dataset's organisation may still upload to it; checked before the body is
    read (409 past the open-drafts quota, 413 past the bytes quota for a declared size)."""
    with connect(home, write=False) as connection:
        organisation = owner(connection, dataset_id)
        if organisation is None:
            raise NotFound(f"no dataset {dataset_id!r} in the stewards' service: create it "
                           "with POST /api/datasets",
                           message_code="dataset_not_registered", params={"id": dataset_id})
        draft = _open_draft(connection, dataset_id)
        if draft is None:
            _check_draft_quota(connection, organisation)
        used = _bytes_used(connection, home, organisation, dataset_id)
        held = draft["upload_bytes"] if draft else 0
    allowance = _settings().quota_upload_bytes - (used - held)
    if declared is not None and declared > allowance:
        raise _upload_quota_error(organisation, used - held, declared)
    return max(allowance, 0)


def begin_unfinished(home: Path, dataset_id: str, total: int, upload_id: str,
                     replaced: str | None) -> None:
    """A resumable upload of `total` bytes starts (resume.receive_piece, under its lock). On
    the PostgreSQL profile, in one transaction under the state writers' lock: the row of the
    upload it replaces on this node goes, the bytes quota is checked against every node's
    unfinished uploads, and the new upload's row is written (catalog/stewards/unfinished.py),
    so uploads started side by side through several nodes cannot together pass the quota.
    The embedded profile's files are the record (upload_allowance checked them)."""
    if not unfinished.in_database():
        return
    with connect(home) as connection:
        if replaced:
            unfinished.drop(connection, replaced)
        _reserve_upload_bytes(connection, home, dataset_id, total)
        unfinished.record(connection, upload_id, dataset_id, total)


def upload_quota_error(home: Path, dataset_id: str, requested: int) -> UploadQuotaExceeded:
    """The 413 for an upload that grew past the quota while it streamed."""
    with connect(home, write=False) as connection:
        organisation = owner(connection, dataset_id)
        draft = _open_draft(connection, dataset_id)
        used = (_bytes_used(connection, home, organisation, dataset_id)
                - (draft["upload_bytes"] if draft else 0))
    return _upload_quota_error(organisation, used, requested)


def check_draft_quota(home: Path, dataset_id: str) -> None:
    """409 when an edit would open a draft past the organisation's open-drafts quota."""
    with connect(home, write=False) as connection:
        organisation = owner(connection, dataset_id)
        if organisation is not None and _open_draft(connection, dataset_id) is None:
            _check_draft_quota(connection, organisation)


def submit(home: Path, user: User | None, dataset_id: str) -> dict:
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id), connect(home) as connection:
        user = _editor(connection, user, dataset_id)
        draft = _require_state(connection, dataset_id, ("draft", "rejected"), "submitted")
        current = _stored_report(draft_files(home, draft["id"]), dataset_id, draft["id"])
        if not current["summary"]["publishable"]:
            raise Unprocessable("the draft has blocking problems; fix them first",
                                findings=[f for f in current["findings"]
                                          if f["status"] == "blocking"],
                                          message_code="draft_has_blocking")
        _set_state(connection, draft, "submitted", comment=None)
        audit.append(connection, user.name, "draft.submit", dataset_id, draft=draft["id"])
        return _draft_view(connection, home, _open_draft(connection, dataset_id))


def approve(home: Path, user: User | None, dataset_id: str) -> dict:
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id), connect(home) as connection:
        user = _reviewer(connection, user, dataset_id)
        draft = _require_state(connection, dataset_id, ("submitted",), "approved")
        if user.id in _contributors(connection, draft["id"]):
            raise Forbidden(f"{user.name} worked on this draft: another reviewer approves it",
                            message_code="reviewer_is_author")
        digest = content_digest(draft_files(home, draft["id"]))
        _set_state(connection, draft, "approved", reviewed_by=user.id, approved_digest=digest)
        audit.append(connection, user.name, "draft.approve", dataset_id, draft=draft["id"],
                     digest=digest)
        return _draft_view(connection, home, _open_draft(connection, dataset_id))


def reject(home: Path, user: User | None, dataset_id: str, comment: str) -> dict:
    if not isinstance(comment, str) or not comment.strip():
        raise BadRequest("a rejection needs a comment saying what to change",
                         message_code="comment_required")
    if len(comment) > MAX_COMMENT:
        raise BadRequest(f"comments are at most {MAX_COMMENT} characters",
                         message_code="comment_too_long", params={"max": MAX_COMMENT})
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id), connect(home) as connection:
        user = _reviewer(connection, user, dataset_id)
        draft = _require_state(connection, dataset_id, ("submitted", "approved"), "rejected")
        _set_state(connection, draft, "rejected", reviewed_by=user.id, approved_digest=None,
                   comment=comment.strip())
        audit.append(connection, user.name, "draft.reject", dataset_id, draft=draft["id"],
                     comment=comment.strip())
        return _draft_view(connection, home, _open_draft(connection, dataset_id))


def discard(home: Path, user: User | None, dataset_id: str) -> None:
    """Drop the open draft and its files (the audit log keeps the history)."""
    check_dataset_id(dataset_id)
    with dataset_lock(home, dataset_id):
        with connect(home) as connection:
            user = _editor(connection, user, dataset_id)
            draft = _open_draft(connection, dataset_id)
            if draft is None:
                raise NotFound(f"{dataset_id} has no open draft",
                               message_code="draft_missing", params={"id": dataset_id})
            _set_state(connection, draft, "discarded")
            audit.append(connection, user.name, "draft.discard", dataset_id, draft=draft["id"])
        files = draft_files(home, draft["id"])
        shutil.rmtree(files.root, ignore_errors=True)
        unshare_draft(home, files, draft["id"])


def content_digest(files: DraftFiles) -> str:
    """What an approval covers: the manifest text and the upload (bytes and options)."""
    digest = hashlib.sha256()
    for path in (files.manifest, files.upload_meta):
        digest.update(path.read_bytes() if path.exists() else b"-")
        digest.update(b"\n")
    return digest.hexdigest()


def open_draft(connection: sqlite3.Connection, dataset_id: str) -> sqlite3.Row | None:
    return _open_draft(connection, dataset_id)


# -- helpers -------------------------------------------------------------------------------

def _open_draft(connection: sqlite3.Connection, dataset_id: str) -> sqlite3.Row | None:
    return connection.execute(
        "SELECT * FROM drafts WHERE dataset_id = ? AND state IN (?, ?, ?, ?)",
        (dataset_id, *OPEN_STATES)).fetchone()


def _known_owner(connection: sqlite3.Connection, dataset_id: str) -> str:
    organisation = owner(connection, dataset_id)
    if organisation is None:
        raise NotFound(f"no dataset {dataset_id!r} in the stewards' service: create it with "
                       "POST /api/datasets",
                       message_code="dataset_not_registered", params={"id": dataset_id})
    return organisation


def _editor(connection, user: User | None, dataset_id: str) -> User:
    user = require_scope(user, _known_owner(connection, dataset_id), dataset_id)
    require_role(user, EDITORS, "editing a draft")
    return user


def _reviewer(connection, user: User | None, dataset_id: str) -> User:
    user = require_scope(user, _known_owner(connection, dataset_id), dataset_id)
    require_role(user, REVIEWERS, "reviewing")
    return user


def _readable_draft(connection, user: User | None, dataset_id: str) -> sqlite3.Row:
    check_dataset_id(dataset_id)
    require_scope(user, _known_owner(connection, dataset_id), dataset_id)
    draft = _open_draft(connection, dataset_id)
    if draft is None:
        raise NotFound(f"{dataset_id} has no open draft",
                       message_code="draft_missing", params={"id": dataset_id})
    return draft


def _draft_for_edit(connection, home: Path, user: User, dataset_id: str,
                    action: str | None) -> sqlite3.Row:
    """The open draft (created when there is none and the quota allows), returned to `draft`
    state by the edit."""
    draft = _open_draft(connection, dataset_id)
    if draft is None:
        _check_draft_quota(connection, owner(connection, dataset_id))
        now = audit.now()
        cursor = connection.execute(
            "INSERT INTO drafts (dataset_id, state, author_id, created_at, updated_at) "
            "VALUES (?, 'draft', ?, ?, ?)", (dataset_id, user.id, now, now))
        seeded = _seed_manifest(connection, home, dataset_id, cursor.lastrowid)
        audit.append(connection, user.name, "draft.create", dataset_id, draft=cursor.lastrowid,
                     manifest_from=seeded)
        draft = connection.execute("SELECT * FROM drafts WHERE id = ?",
                                   (cursor.lastrowid,)).fetchone()
    if action is not None:
        _log_edit(connection, user, draft, action)
    return draft


def _settings() -> StewardSettings:
    return StewardSettings.from_environment()


def _quota_usage(connection, organisation: str) -> tuple[int, int]:
    """The organisation's open drafts and the bytes their uploads hold."""
    row = connection.execute(
        "SELECT COUNT(*), CAST(COALESCE(SUM(drafts.upload_bytes), 0) AS BIGINT) FROM drafts "
        "JOIN datasets "
        "ON datasets.id = drafts.dataset_id WHERE datasets.organisation = ? "
        "AND drafts.state IN (?, ?, ?, ?)", (organisation, *OPEN_STATES)).fetchone()
    return row[0], row[1]


def _bytes_used(connection, home: Path, organisation: str, uploading: str) -> int:
    """The organisation's bytes of the quota: its open drafts' uploads, and its datasets'
    unfinished resumable uploads (resume.py's files in this home, or on the PostgreSQL
    profile the rows of every node's: unfinished.py), but for the dataset `uploading` now (its
    new upload replaces its own unfinished one)."""
    drafts = _quota_usage(connection, organisation)[1]
    if unfinished.in_database():  # every node's unfinished uploads, from their rows
        oldest = time.time() - resume.parts_max_age()
        return drafts + unfinished.held_bytes(connection, organisation, uploading, oldest)
    datasets = [row[0] for row in connection.execute(
        "SELECT id FROM datasets WHERE organisation = ?", (organisation,)).fetchall()]
    return drafts + resume.unfinished_bytes(home, datasets, excluding=uploading)


def _check_draft_quota(connection, organisation: str) -> None:
    limit = _settings().quota_open_drafts
    drafts, _ = _quota_usage(connection, organisation)
    if drafts >= limit:
        raise DraftQuotaExceeded(
            f"{organisation} has {drafts} open drafts, its quota is {limit} "
            "(TAZA_QUOTA_OPEN_DRAFTS): publish or discard one first",
            quota="open_drafts", organisation=organisation, limit=limit, used=drafts,
            message_code="draft_quota_exceeded",
            params={"organisation": organisation, "used": drafts, "limit": limit})


def _reserve_upload_bytes(connection, home: Path, dataset_id: str, incoming: int) -> None:
    """413 when an upload replacing the draft's current one would pass the bytes quota."""
    organisation = owner(connection, dataset_id)
    draft = _open_draft(connection, dataset_id)
    used = (_bytes_used(connection, home, organisation, dataset_id)
            - (draft["upload_bytes"] if draft else 0))
    if used + incoming > _settings().quota_upload_bytes:
        raise _upload_quota_error(organisation, used, incoming)


def _upload_quota_error(organisation: str, used: int, requested: int) -> UploadQuotaExceeded:
    limit = _settings().quota_upload_bytes
    return UploadQuotaExceeded(
        f"{organisation}'s open drafts hold {used:,} bytes of uploads; {requested:,} more "
        f"would pass its quota of {limit:,} bytes (TAZA_QUOTA_UPLOAD_BYTES): publish or "
        "discard drafts first", quota="upload_bytes", organisation=organisation, limit=limit,
        used=used, requested=requested,
        message_code="upload_quota_exceeded",
        params={"organisation": organisation, "used": used, "requested": requested, "limit": limit})


def _set_upload_bytes(connection, draft_id: int, size: int) -> None:
    connection.execute("UPDATE drafts SET upload_bytes = ? WHERE id = ?", (size, draft_id))


def _held_bytes(files: DraftFiles) -> int:
    """The size of the upload a draft keeps on disk (a refused one keeps no bytes)."""
    if not files.upload_meta.exists():
        return 0
    meta = json.loads(files.upload_meta.read_text())
    return meta["size"] if (files.upload / "original" / meta["filename"]).exists() else 0


def _seed_manifest(connection, home: Path, dataset_id: str, draft_id: int) -> str | None:
    """Start a new draft from the manifest of the last published one (a new version usually
    changes the data, not the description); None when there is none."""
    previous = _published_manifest(connection, home, dataset_id)
    if previous is None:
        return None
    files = draft_files(home, draft_id)
    files.root.mkdir(parents=True, exist_ok=True)
    _atomic_write(files.manifest, previous.read_text(encoding="utf-8"))
    _refresh_report(files, dataset_id, draft_id)
    return f"draft {previous.parent.name}"


def _published_manifest(connection, home: Path, dataset_id: str) -> Path | None:
    """The manifest of the newest published draft whose files remain (a purge removes those
    of the version it took down)."""
    rows = connection.execute(
        "SELECT id FROM drafts WHERE dataset_id = ? AND state = 'published' ORDER BY id DESC",
        (dataset_id,)).fetchall()
    return next((draft_files(home, r["id"]).manifest for r in rows
                 if draft_files(home, r["id"]).manifest.exists()), None)


def _log_edit(connection, user: User, draft: sqlite3.Row, action: str, **detail) -> None:
    """Record an edit: the author joins the contributors and any review is voided."""
    connection.execute("INSERT INTO contributors (draft_id, user_id) VALUES (?, ?) "
                       "ON CONFLICT DO NOTHING", (draft["id"], user.id))
    current = connection.execute("SELECT state FROM drafts WHERE id = ?",
                                 (draft["id"],)).fetchone()["state"]
    if current != "draft":
        detail["review_voided"] = current
    connection.execute("UPDATE drafts SET state = 'draft', reviewed_by = NULL, "
                       "approved_digest = NULL, updated_at = ? WHERE id = ?",
                       (audit.now(), draft["id"]))
    audit.append(connection, user.name, action, draft["dataset_id"], draft=draft["id"],
                 **detail)


def _require_state(connection, dataset_id: str, allowed: tuple[str, ...],
                   target: str) -> sqlite3.Row:
    draft = _open_draft(connection, dataset_id)
    if draft is None:
        raise NotFound(f"{dataset_id} has no open draft",
                       message_code="draft_missing", params={"id": dataset_id})
    if draft["state"] not in allowed:
        raise Conflict(f"the draft is {draft['state']}; only a draft that is "
                       f"{' or '.join(allowed)} can become {target}", state=draft["state"],
                       message_code="draft_state_conflict",
                       params={"state": draft["state"], "target": target})
    return draft


def _set_state(connection, draft: sqlite3.Row, state: str, **columns) -> None:
    allowed = {"comment", "reviewed_by", "approved_digest", "published_version",
               "published_release"}
    assignments = ["state = ?", "updated_at = ?"]
    values: list = [state, audit.now()]
    for column, value in columns.items():
        assert column in allowed  # column names come from this module, never from input
        assignments.append(f"{column} = ?")
        values.append(value)
    values.append(draft["id"])
    connection.execute(f"UPDATE drafts SET {', '.join(assignments)} WHERE id = ?",  # noqa: S608
                       values)


def set_published(connection, draft: sqlite3.Row, version: int, release: int) -> None:
    _set_state(connection, draft, "published", published_version=version,
               published_release=release)


def _contributors(connection, draft_id: int) -> set[int]:
    return {row["user_id"] for row in connection.execute(
        "SELECT user_id FROM contributors WHERE draft_id = ?", (draft_id,))}


def _draft_view(connection, home: Path, draft: sqlite3.Row) -> dict:
    files = draft_files(home, draft["id"])
    names = {user_id: user_by_id(connection, user_id).name
             for user_id in _contributors(connection, draft["id"]) | {draft["author_id"]}}
    summary = None
    if files.report.exists():
        summary = json.loads(files.report.read_text())["summary"]
    upload = json.loads(files.upload_meta.read_text()) if files.upload_meta.exists() else None
    return {
        "id": draft["id"], "dataset_id": draft["dataset_id"], "state": draft["state"],
        "author": names[draft["author_id"]], "contributors": sorted(names.values()),
        "created_at": draft["created_at"], "updated_at": draft["updated_at"],
        "comment": draft["comment"],
        "reviewed_by": user_by_id(connection, draft["reviewed_by"]).name
        if draft["reviewed_by"] else None,
        "manifest": files.manifest.exists(), "upload": upload, "summary": summary,
        "report": f"/api/datasets/{draft['dataset_id']}/draft/report",
    }


def _stage_upload(fresh: Path, received: Received, options: UploadOptions,
                  limits: UploadLimits, file_format: str, id_field: str | None):
    """Stage a received file into a fresh folder laid out as a draft's upload/."""
    original = fresh / "original" / received.filename
    original.parent.mkdir(parents=True)
    os.rename(received.path, original)
    started = time.monotonic()
    staged = _isolated_stage(original, fresh, fresh / "stage", options, limits, id_field)
    meta = {"filename": received.filename, "size": received.size, "sha256": received.sha256,
            "format": file_format, "options": options.as_dict(), "received_at": audit.now(),
            "check_seconds": round(time.monotonic() - started, 3)}
    _atomic_write(fresh / "upload.json", json.dumps(meta, indent=2))
    _write_staged(fresh / "stage", staged, id_field)
    if staged.source is None:  # refused (unsafe archive, unreadable file): keep no bytes
        shutil.rmtree(original.parent, ignore_errors=True)
    # Otherwise the original stays, to stage it again when the manifest's id_field changes.
    return staged


def _restage(files: DraftFiles, id_field: str | None) -> None:
    """Check the current upload again (the manifest's id_field changed)."""
    meta = json.loads(files.upload_meta.read_text())
    original = files.upload / "original" / meta["filename"]
    if not original.exists():
        return
    options = UploadOptions("geometry" in meta["options"]["repair"], meta["options"]["variable"])
    fresh = files.upload / f"stage.new-{uuid.uuid4().hex}"
    staged = _isolated_stage(original, fresh, fresh, options, UploadLimits.from_environment(),
                             id_field)
    _write_staged(fresh, staged, id_field)
    _swap(files.stage, fresh)


def _isolated_stage(original: Path, fresh: Path, workdir: Path, options: UploadOptions,
                    limits: UploadLimits, id_field: str | None):
    """Stage in the isolated reader; a server that cannot isolate it keeps nothing (503)."""
    try:
        return stage_upload(original, workdir, options, limits, id_field)
    except ReaderUnavailable as err:
        shutil.rmtree(fresh, ignore_errors=True)
        raise Unavailable(str(err), message_code="reader_unavailable") from err


def _write_staged(stage_dir: Path, staged, id_field: str | None) -> None:
    data = {"format": staged.format, "kind": staged.kind,
            "source": staged.source.name if staged.source else None,
            "source_path": str(staged.source.relative_to(stage_dir)) if staged.source else None,
            "facts": staged.facts, "id_field": id_field,
            "findings": [f.as_dict() for f in staged.findings]}
    stage_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(stage_dir / "staged.json", json.dumps(data, indent=2, default=str))


def _refresh_report(files: DraftFiles, dataset_id: str, draft_id: int) -> dict:
    """Recompute report.json (and the pipeline's manifest) from the manifest and the upload."""
    text = files.manifest_text()
    findings = report.manifest_findings(text, dataset_id, files.root)
    staged = json.loads(files.staged.read_text()) if files.staged.exists() else None
    if staged is None:
        findings.append(Finding("blocking", f"no source uploaded yet: PUT or POST "
                                f"/api/datasets/{dataset_id}/draft/source", {}, "no_source"))
    else:
        findings += [Finding.from_dict(f) for f in staged["findings"]]
    pipeline_manifest = files.pipeline_manifest(dataset_id)
    pipeline_manifest.unlink(missing_ok=True)
    if text is not None and staged and staged["source_path"] and not has_blocking(findings):
        findings += report.write_pipeline_manifest(text, dataset_id, files.stage,
                                                   files.stage / staged["source_path"])
    upload = json.loads(files.upload_meta.read_text()) if files.upload_meta.exists() else None
    data = {
        "dataset": dataset_id, "draft": draft_id, "generated_at": audit.now(),
        "upload": upload,
        "source": {key: staged[key] for key in ("format", "kind", "source", "facts",
                                                 "id_field")} if staged else None,
        "summary": report.summarise(findings), "findings": report.ordered(findings),
    }
    _atomic_write(files.report, json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return data


def _stored_report(files: DraftFiles, dataset_id: str, draft_id: int) -> dict:
    """report.json, or an empty blocking one (a worker killed before it was written)."""
    if files.report.exists():
        return json.loads(files.report.read_text())
    missing = [Finding("blocking", "nothing checked yet: put a manifest and upload a source",
                       {}, "nothing_checked")]
    return {"dataset": dataset_id, "draft": draft_id, "generated_at": None, "upload": None,
            "source": None, "summary": report.summarise(missing),
            "findings": report.ordered(missing)}


def _id_field(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, UnsafeInput):
        return None
    value = data.get("id_field") if isinstance(data, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _count(findings: list[Finding]) -> int:
    return sum(1 for f in findings if f.status == "blocking")


def _swap(target: Path, fresh: Path) -> None:
    """Replace folder target by fresh (two renames); the old one is then removed."""
    old = target.with_name(f"{target.name}.old-{uuid.uuid4().hex}")
    if target.exists():
        os.rename(target, old)
    os.rename(fresh, target)
    shutil.rmtree(old, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
