"""Drafts' files in the bucket, for nodes that share no catalog home (issue 13).

On the PostgreSQL + object-store profile (TAZA_DATABASE_URL and TAZA_ASSETS_URL both set) a
draft's folder (`stewards/drafts/<draft>/` of the home: manifest, upload, staged source,
report) is only a node's local copy. After every change made under the dataset's lock, the
writer sends the folder to the bucket as a new generation (each file stored by content,
`<prefix>drafts/<draft>/blobs/<sha256>`, so an unchanged upload is not sent again) and records
the generation (its paths and their digests) in `taza_state.draft_files`, so an upload
through node A is checked, reviewed and published by node B or the worker: before reading a
draft, a node brings its copy to the recorded generation (downloaded aside, then renamed into
place, under a lock file of the home).
The blobs of the generation before the current one are kept, so a node still downloading it
does not lose them; other blobs are removed.

The embedded profile (and the PostgreSQL profile without a bucket) keeps the folders as they
are: the home is the truth there.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from catalog import settings
from catalog.core.assets import AssetUnavailable
from catalog.store import state_postgresql
from catalog.store.release_records_postgresql import state_unit
from catalog.store.s3_assets import BucketLocation, s3_client

_INSTANCES: dict[tuple[str, str, str], DraftObjects] = {}
_INSTANCES_LOCK = threading.Lock()


class DraftObjects:
    def __init__(self, database_url: str, assets_url: str, home: Path):
        self.url, self.home = database_url, Path(home)
        self.location = BucketLocation.parse(assets_url)
        self.client = s3_client()

    # -- writing (under the dataset's lock) -----------------------------------------------

    def push(self, draft_id: int, root: Path) -> str:
        """Send the draft's folder as a new generation and make it the current one. Files are
        stored by content (`blobs/<sha256>`): a file the last two generations hold already (the
        upload, when only the manifest changed) is not sent again."""
        generation = uuid.uuid4().hex
        files = {p.relative_to(root).as_posix(): _sha256(p) for p in sorted(root.rglob("*"))
                 if p.is_file()} if root.is_dir() else {}
        with self._unit(write=False) as unit:
            row = unit.execute("SELECT files, previous FROM draft_files WHERE draft_id = ?",
                               (draft_id,)).fetchone()
        before = json.loads(row[0]) if row else {}
        kept = set(before.values()) | (set(json.loads(row[1]).values()) if row and row[1]
                                       else set())
        sent = []
        try:
            for name, digest in files.items():
                if digest not in kept and digest not in sent:
                    self.client.upload_file(str(root / name), self.location.bucket,
                                            self._blob(draft_id, digest))
                    sent.append(digest)
        except (BotoCoreError, ClientError, OSError) as err:
            for digest in sent:
                self._delete_keys([self._blob(draft_id, digest)])
            raise AssetUnavailable(f"draft {draft_id}: sending its files to the bucket "
                                   f"failed: {err}") from err
        with self._unit(write=True) as unit:
            unit.execute("INSERT INTO draft_files (draft_id, generation, files, previous) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (draft_id) DO UPDATE SET "
                         "generation = EXCLUDED.generation, files = EXCLUDED.files, "
                         "previous = EXCLUDED.previous",
                         (draft_id, generation, json.dumps(files), json.dumps(before)))
        # Blobs of neither this generation nor the one before (a reader may still fetch it).
        wanted = {self._blob(draft_id, d) for d in set(files.values()) | set(before.values())}
        self._delete_keys([key for key in self._keys(f"{self.location.prefix}drafts/"
                                                     f"{draft_id}/") if key not in wanted])
        self._marker(root).write_text(generation)
        return generation

    def remove(self, draft_id: int, root: Path) -> None:
        """The draft's files are gone (discarded, or its version purged): everywhere."""
        with self._unit(write=True) as unit:
            unit.execute("DELETE FROM draft_files WHERE draft_id = ?", (draft_id,))
        self._delete_prefix(f"{self.location.prefix}drafts/{draft_id}/")
        shutil.rmtree(root, ignore_errors=True)
        self._marker(root).unlink(missing_ok=True)

    def sent(self, root: Path) -> bool:
        """Whether this home's copy of a draft was sent (or read) as a generation already."""
        return self._marker(root).exists()

    # -- reading --------------------------------------------------------------------------

    def pull(self, draft_id: int, root: Path) -> None:
        """Bring this home's copy of the draft to the recorded generation (nothing recorded:
        the draft never had files, or they were removed)."""
        with self._unit(write=False) as unit:
            row = unit.execute("SELECT generation, files FROM draft_files WHERE draft_id = ?",
                               (draft_id,)).fetchone()
        marker = self._marker(root)
        if row is None:
            if marker.exists():  # had files here once, removed since by another node
                with self._locked(root):
                    shutil.rmtree(root, ignore_errors=True)
                    marker.unlink(missing_ok=True)
            return
        generation, files = row[0], json.loads(row[1])
        if _read(marker) == generation:
            return
        with self._locked(root):
            if _read(marker) == generation:
                return
            fresh = root.with_name(f".{root.name}.pull-{uuid.uuid4().hex}")
            try:
                for name, digest in files.items():
                    (fresh / name).parent.mkdir(parents=True, exist_ok=True)
                    self.client.download_file(self.location.bucket,
                                              self._blob(draft_id, digest), str(fresh / name))
                fresh.mkdir(parents=True, exist_ok=True)
            except (BotoCoreError, ClientError, OSError) as err:
                shutil.rmtree(fresh, ignore_errors=True)
                raise AssetUnavailable(f"draft {draft_id}: reading its files from the "
                                       f"bucket failed: {err}") from err
            old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex}")
            if root.exists():
                os.rename(root, old)
            os.rename(fresh, root)
            shutil.rmtree(old, ignore_errors=True)
            marker.write_text(generation)

    # -- helpers --------------------------------------------------------------------------

    def _blob(self, draft_id: int, digest: str) -> str:
        return f"{self.location.prefix}drafts/{draft_id}/blobs/{digest}"

    def _keys(self, prefix: str) -> list[str]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError):
            return []  # best effort: what stays is unreferenced

    def _delete_keys(self, keys: list[str]) -> None:
        """Best effort: what stays is unreferenced."""
        with contextlib.suppress(BotoCoreError, ClientError):
            for start in range(0, len(keys), 1000):
                chunk = [{"Key": key} for key in keys[start:start + 1000]]
                if chunk:
                    self.client.delete_objects(Bucket=self.location.bucket,
                                               Delete={"Objects": chunk})

    @staticmethod
    def _marker(root: Path) -> Path:
        return root.with_name(f".{root.name}.generation")

    @contextlib.contextmanager
    def _locked(self, root: Path) -> Iterator[None]:
        root.parent.mkdir(parents=True, exist_ok=True)
        with root.with_name(f".{root.name}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _delete_prefix(self, prefix: str) -> None:
        self._delete_keys(self._keys(prefix))

    def _unit(self, write: bool) -> contextlib.AbstractContextManager[
            state_postgresql.StateConnection]:
        return state_unit(self.url, self.home, write, "the drafts' files")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def draft_objects(home: Path) -> DraftObjects | None:
    """The drafts' bucket of this process's profile; None where the home holds the drafts."""
    url, assets_url = settings.database_url(), settings.assets_url()
    if not url or not assets_url:
        return None
    key = (url, assets_url, str(Path(home).resolve()))
    with _INSTANCES_LOCK:
        if key not in _INSTANCES:
            _INSTANCES[key] = DraftObjects(url, assets_url, Path(home))
        return _INSTANCES[key]
