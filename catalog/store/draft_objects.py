"""Drafts' files in the bucket, for nodes that share no catalog home (issue 13).

On the PostgreSQL + object-store profile (TAZA_DATABASE_URL and TAZA_ASSETS_URL both set) a
draft's folder (`stewards/drafts/<draft>/` of the home: manifest, upload, staged source,
report) is only a node's local copy. After every change made under the dataset's lock, the
writer sends the whole folder to the bucket as a new generation
(`<prefix>drafts/<draft>/<generation>/<path>`, objects never overwritten) and records the
generation in `taza_state.draft_files`, so an upload through node A is checked, reviewed and
published by node B or the worker: before reading a draft, a node brings its copy to the
recorded generation (downloaded aside, then renamed into place, under a lock file of the home).
The generation before the current one is kept, so a node still downloading it does not lose
it; older ones are removed.

The embedded profile (and the PostgreSQL profile without a bucket) keeps the folders as they
are: the home is the truth there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from catalog import settings
from catalog.core.assets import AssetUnavailable
from catalog.postgis import database
from catalog.store import state_postgresql
from catalog.store.release_records import RecordsUnavailable
from catalog.store.release_records_postgresql import MIGRATIONS
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
        """Send the draft's folder as a new generation and make it the current one."""
        generation = uuid.uuid4().hex
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                       if p.is_file()) if root.is_dir() else []
        prefix = self._prefix(draft_id, generation)
        try:
            for name in names:
                self.client.upload_file(str(root / name), self.location.bucket, prefix + name)
        except (BotoCoreError, ClientError, OSError) as err:
            self._delete_prefix(prefix)
            raise AssetUnavailable(f"draft {draft_id}: sending its files to the bucket "
                                   f"failed: {err}") from err
        with self._unit(write=True) as unit:
            row = unit.execute("SELECT generation, previous FROM draft_files WHERE "
                               "draft_id = ?", (draft_id,)).fetchone()
            unit.execute("INSERT INTO draft_files (draft_id, generation, files, previous) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (draft_id) DO UPDATE SET "
                         "generation = EXCLUDED.generation, files = EXCLUDED.files, "
                         "previous = EXCLUDED.previous",
                         (draft_id, generation, json.dumps(names), row[0] if row else None))
        if row is not None and row[1]:
            self._delete_prefix(self._prefix(draft_id, row[1]))
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
        generation, names = row[0], json.loads(row[1])
        if _read(marker) == generation:
            return
        with self._locked(root):
            if _read(marker) == generation:
                return
            fresh = root.with_name(f".{root.name}.pull-{uuid.uuid4().hex}")
            prefix = self._prefix(draft_id, generation)
            try:
                for name in names:
                    (fresh / name).parent.mkdir(parents=True, exist_ok=True)
                    self.client.download_file(self.location.bucket, prefix + name,
                                              str(fresh / name))
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

    def _prefix(self, draft_id: int, generation: str) -> str:
        return f"{self.location.prefix}drafts/{draft_id}/{generation}/"

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
        """Best effort: what stays is unreferenced."""
        with contextlib.suppress(BotoCoreError, ClientError):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=prefix)
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.location.bucket,
                                               Delete={"Objects": keys})

    @contextlib.contextmanager
    def _unit(self, write: bool) -> Iterator[state_postgresql.StateConnection]:
        try:
            with state_postgresql.connect(self.url, self.home, write, MIGRATIONS) as unit:
                yield unit
        except (database.DatabaseError, psycopg.OperationalError) as err:
            raise RecordsUnavailable(f"the drafts' files cannot be read: {err}") from err


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
