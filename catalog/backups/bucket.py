"""The bucket's part of a backup (TAZA_ASSETS_URL=s3://...): the objects the backed-up state
refers to, copied into the backup folder, and put back by `taza restore`.

Which objects: those named while the catalog is at rest (under the backup's locks), in the same
REPEATABLE READ snapshot `pg_dump` then writes: every version recorded in
`taza_state.versions` and not purged (its `objects` prefix and the files its record lists),
the current generation of every draft's files (`taza_state.draft_files`, blobs stored by
content), and any version folder of the backed-up home with an objects.json (the profile with a
bucket and no database). Objects written after the snapshot are referenced by nothing in the
backup; uploads happen before a version is committed, so every object the snapshot names exists.

Where: `DEST/bucket/<bucket>/<key>`, listed in backup.json (`objects`: bucket, key, size,
SHA-256, media type). A published version's key is unique (`<dataset>/<version>/<upload id>/`)
and never overwritten (every PUT carries If-None-Match), and a draft's blob is named by its
SHA-256: so an object a previous backup holds under the same key is the same bytes. With
`taza backup --previous OLD`, such objects are hard-linked from OLD (checked against the size
and SHA-256 OLD recorded) instead of downloaded again: a nightly backup downloads only the
versions and drafts' files that are new since.

Restore puts each object back under its key (the bucket is created when missing), refusing to
replace an object that holds other bytes; an object already there with the same bytes is left
as it is. Putting objects back is additive: the catalog serving meanwhile refers to none of the
new keys, so a restore that fails later leaves it whole.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from botocore.exceptions import BotoCoreError, ClientError

from catalog.backups import (
    BackupError,
    CodedText,
    check_file,
    file_digest,
    file_problem,
    safe_relative,
)
from catalog.core.record import RECORD_FILE, Record
from catalog.store.assets import OBJECTS_FILE
from catalog.store.s3_assets import MAX_OBJECT_BYTES, BucketLocation, s3_client

BUCKET_FOLDER = "bucket"
CHUNK = 1 << 20
Log = Callable[[str], None]


def referenced_objects(connection, assets_url: str | None, home_copy: Path) -> list[dict]:
    """(bucket, key, media type) of every object the backed-up state refers to, sorted.
    `connection`: the snapshot's transaction (None without a database); `home_copy`: the
    backup's copy of the home."""
    found: dict[tuple[str, str], str] = {}
    if connection is not None and connection.execute(
            "SELECT to_regclass('taza_state.versions') IS NOT NULL").fetchone()[0]:
        rows = connection.execute(
            "SELECT dataset, version, record, objects FROM taza_state.versions "
            "WHERE NOT purged AND record IS NOT NULL AND objects IS NOT NULL").fetchall()
        for _, _, record, objects in rows:
            _add_version(found, json.loads(record), json.loads(objects))
        if assets_url:
            location = BucketLocation.parse(assets_url)
            for draft_id, files in connection.execute(
                    "SELECT draft_id, files FROM taza_state.draft_files").fetchall():
                for digest in set(json.loads(files).values()):
                    key = f"{location.prefix}drafts/{draft_id}/blobs/{digest}"
                    found[(location.bucket, key)] = "application/octet-stream"
    datasets = home_copy / "datasets"
    for objects in sorted(datasets.glob(f"*/*/{OBJECTS_FILE}")) if datasets.is_dir() else ():
        record = objects.with_name(RECORD_FILE)
        if objects.parent.name.isdigit() and record.is_file():
            _add_version(found, json.loads(record.read_text(encoding="utf-8")),
                         json.loads(objects.read_text()))
    return [{"bucket": bucket, "key": key, "media_type": media_type}
            for (bucket, key), media_type in sorted(found.items())]


def _add_version(found: dict, record: dict, objects: dict) -> None:
    for name, media_type in Record.from_json(record).files().items():
        found[(objects["bucket"], objects["prefix"] + name)] = media_type


def object_path(entry: dict) -> PurePosixPath:
    """Where an object sits in a backup folder, relative to `bucket/` (refused unless safe)."""
    return safe_relative(f"{entry['bucket']}/{entry['key']}")


def copy_objects(wanted: list[dict], dest: Path, previous: Path | None, log: Log) -> dict:
    """Copy the objects into dest/bucket/ (hard links from `previous` where it holds the same
    key with a matching SHA-256); returns backup.json's `bucket` entry."""
    earlier = _previous_objects(previous) if previous else {}
    client = s3_client() if wanted else None
    entries, linked, downloaded = [], 0, 0
    for item in wanted:
        relative = object_path(item)
        target = dest / BUCKET_FOLDER / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        old = earlier.get((item["bucket"], item["key"]))
        if old is not None and _link_checked(previous / BUCKET_FOLDER / relative, target, old):
            entries.append(item | {"size": old["size"], "sha256": old["sha256"]})
            linked += 1
            continue
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        try:
            client.download_file(item["bucket"], item["key"], str(partial))
        except (BotoCoreError, ClientError, OSError) as err:
            partial.unlink(missing_ok=True)
            where = f"s3://{item['bucket']}/{item['key']}"
            raise BackupError(
                f"{where}, which the backed-up state refers to, "
                f"cannot be read: {err} (purged or replaced since the snapshot? take the "
                "backup again)", code="object_unreadable",
                params={"object": where, "reason": str(err)}) from err
        os.replace(partial, target)
        size, digest = file_digest(target)
        entries.append(item | {"size": size, "sha256": digest})
        downloaded += 1
    if wanted:
        log(CodedText(f"bucket: {downloaded} object(s) downloaded, {linked} linked from "
                      f"{previous}", "progress.bucket", downloaded=downloaded, linked=linked,
                      previous=previous))
    return {"folder": BUCKET_FOLDER, "downloaded": downloaded, "linked": linked,
            "previous": str(previous) if previous else None, "objects": entries}


def _previous_objects(previous: Path) -> dict[tuple[str, str], dict]:
    try:
        manifest = json.loads((previous / "backup.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BackupError(f"--previous {previous}: not a finished backup ({err})",
                          code="previous_unfinished",
                          params={"previous": previous, "reason": str(err)}) from err
    entries = (manifest.get("bucket") or {}).get("objects") or []
    return {(e["bucket"], e["key"]): e for e in entries if isinstance(e, dict)}


def _link_checked(source: Path, target: Path, recorded: dict) -> bool:
    """Hard-link (else copy) an object of an earlier backup, if its bytes still match."""
    try:
        if file_digest(source) != (recorded["size"], recorded["sha256"]):
            return False
        try:
            os.link(source, target)
        except OSError:  # another file system
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            with source.open("rb") as reader, partial.open("wb") as writer:
                while chunk := reader.read(CHUNK):
                    writer.write(chunk)
            os.replace(partial, target)
        return True
    except FileNotFoundError:
        return False


def verify_objects(source: Path, manifest: dict) -> list[str]:
    """Problems of the backup's objects against their recorded sizes and SHA-256."""
    problems = []
    for entry in (manifest.get("bucket") or {}).get("objects", []):
        problem = check_file(source / BUCKET_FOLDER / object_path(entry), entry)
        if problem:
            problems.append(file_problem(f"s3://{entry['bucket']}/{entry['key']}", problem))
    return problems


def put_objects(source: Path, manifest: dict) -> int:
    """Put every object of the backup back under its key; returns how many were sent (an
    object already there with the same bytes is not sent again)."""
    entries = (manifest.get("bucket") or {}).get("objects", [])
    if not entries:
        return 0
    client, sent, buckets = s3_client(), 0, set()
    try:
        for entry in entries:
            if entry["bucket"] not in buckets:
                _ensure_bucket(client, entry["bucket"])
                buckets.add(entry["bucket"])
            if _put(client, source / BUCKET_FOLDER / object_path(entry), entry):
                sent += 1
    except (BotoCoreError, ClientError) as err:
        raise BackupError(f"putting the backup's objects back into the bucket failed: "
                          f"{err}", code="put_objects", params={"reason": str(err)}) from err
    return sent


def _ensure_bucket(client, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
        client.create_bucket(Bucket=bucket)


def _same_bytes(client, entry: dict, etag: str, md5: str) -> bool:
    """Whether the object in the bucket holds the backup's bytes: its ETag is their MD5 when it
    was sent in one PUT; one sent in parts (boto3's upload_file for a large draft upload) has
    an ETag of another kind, so it is read and hashed."""
    if "-" not in etag:
        return etag == md5
    digest = hashlib.sha256()
    body = client.get_object(Bucket=entry["bucket"], Key=entry["key"])["Body"]
    for chunk in body.iter_chunks(CHUNK):
        digest.update(chunk)
    return digest.hexdigest() == entry["sha256"]


def _put(client, path: Path, entry: dict) -> bool:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
    if sha256.hexdigest() != entry["sha256"]:
        raise BackupError(f"{path}: changed while it was being restored",
                          code="object_changed", params={"path": path})
    where = f"s3://{entry['bucket']}/{entry['key']}"
    try:
        head = client.head_object(Bucket=entry["bucket"], Key=entry["key"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        head = None
    if head is not None:
        if head["ContentLength"] == entry["size"] and \
                _same_bytes(client, entry, head["ETag"].strip('"'), md5.hexdigest()):
            return False
        raise BackupError(f"{where} exists with other bytes; a restore never replaces an "
                          "object (restore into an empty bucket, or remove it)",
                          code="object_exists", params={"object": where})
    if entry["size"] > MAX_OBJECT_BYTES:
        raise BackupError(f"{where}: {entry['size']} bytes, above one S3 PUT's limit",
                          code="object_too_large",
                          params={"object": where, "size": entry["size"]})
    with path.open("rb") as handle:
        client.put_object(Bucket=entry["bucket"], Key=entry["key"], Body=handle,
                          ContentLength=entry["size"], ContentType=entry["media_type"],
                          IfNoneMatch="*",
                          ContentMD5=base64.b64encode(md5.digest()).decode())
    return True
