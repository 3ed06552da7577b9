"""Resumable uploads: a source sent in pieces (PUT with Content-Range), kept across cuts.

    PUT /api/datasets/{id}/draft/source?filename=NAME&fingerprint=KIND:HEX
        Content-Range: bytes START-END/TOTAL

Every piece names the whole file's fingerprint (`parse_fingerprint`): `sha256:HEX`, the
SHA-256 of the whole file, or `sha256-blocks:HEX`, the SHA-256 of the SHA-256 digests of its
8 MiB blocks one after the other (what the stewards' page computes with crypto.subtle, which
cannot hash a file in a stream). The upload keeps the fingerprint its first piece gave; a
later piece naming another one is refused (409 upload_fingerprint_differs): a different file
with the same name and size can never go on from the bytes of the first. Once TOTAL bytes
are in, the assembled file's fingerprint is computed and must be the one given (else 409
upload_fingerprint_mismatch, the bytes are dropped and nothing reaches the draft). Without a
fingerprint a piece must be the whole file (0-TOTAL-1): it is then an ordinary upload,
never kept for resuming when cut (the API routes it to receive_raw), so it cannot meet
another file's bytes either.

Each piece must start exactly where the received part ends (no gaps, no overlaps: 416 with
the offset to send from); a piece starting at 0 starts a new upload. A connection cut mid-piece
keeps the bytes that arrived, so GET /api/datasets/{id}/draft/source/resume tells where to go
on. Once TOTAL bytes are in, the file is hashed and handed to the draft like a whole upload
(drafts.accept_upload, which checks it only when it differs from the draft's current one).

One upload in progress per dataset, in TAZA_HOME/stewards/resume/<dataset>/ (part, meta.json
with the file name, TOTAL, fingerprint and the upload's id),
changed under its own flock (not the dataset's lock: a slow piece must not block manifest
edits); TOTAL is bounded by the upload limit and the organisation's quota.

An unfinished upload holds its whole TOTAL of the organisation's bytes quota (drafts.py asks
`unfinished_bytes`, or on the PostgreSQL profile the rows of catalog/stewards/unfinished.py,
which count the uploads every node holds), so two uploads started side by side cannot pass
the quota together.
Leftovers (an upload nobody finishes) untouched for TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS (default
24 h) no longer count and are removed: when an upload starts (`remove_expired`), when the API
starts, and periodically by `taza worker` (`start_sweeper`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from catalog.postgis.database import DatabaseError
from catalog.settings import seconds_setting
from catalog.stewards import unfinished
from catalog.stewards.db import stewards_dir
from catalog.stewards.errors import (
    BadRequest,
    Conflict,
    NotFound,
    RangeNotSatisfiable,
    TooLarge,
)
from catalog.stewards.receive import CHUNK, Received

log = logging.getLogger(__name__)
PARTS_MAX_AGE_SECONDS = 86_400.0
CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,18})-([0-9]{1,18})/([0-9]{1,18})$")
FINGERPRINT = re.compile(r"^(sha256|sha256-blocks):([0-9a-f]{64})$")
BLOCK_BYTES = 8 << 20  # the blocks of a `sha256-blocks` fingerprint (stewards.js FINGERPRINT_BLOCK)


@dataclass(frozen=True)
class Piece:
    start: int
    end: int  # inclusive, as Content-Range says it
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def whole(self) -> bool:
        """The piece is the whole file (bytes 0-(TOTAL-1)/TOTAL)."""
        return self.start == 0 and self.end == self.total - 1


@dataclass(frozen=True)
class Progress:
    filename: str
    received: int
    total: int
    fingerprint: str | None = None

    def as_dict(self) -> dict:
        return {"filename": self.filename, "received": self.received, "total": self.total,
                "fingerprint": self.fingerprint, "complete": self.received == self.total}


def parse_fingerprint(value: str | None) -> str | None:
    """The `fingerprint` query parameter, lower-cased; None when not given."""
    if value is None:
        return None
    fingerprint = value.strip().lower()
    if not FINGERPRINT.match(fingerprint):
        raise BadRequest("fingerprint: give 'sha256:HEX' (the whole file's SHA-256) or "
                         "'sha256-blocks:HEX' (the SHA-256 of the SHA-256 digests of its 8 MiB "
                         "blocks), HEX being 64 hexadecimal digits",
                         message_code="upload_fingerprint_malformed")
    return fingerprint


class Fingerprints:
    """Both kinds of fingerprint of bytes fed in order (one pass over the file)."""

    def __init__(self) -> None:
        self.whole = hashlib.sha256()
        self.blocks = hashlib.sha256()
        self.block = hashlib.sha256()
        self.in_block = 0

    def update(self, data: bytes) -> None:
        self.whole.update(data)
        view = memoryview(data)
        while view:
            take = min(len(view), BLOCK_BYTES - self.in_block)
            self.block.update(view[:take])
            self.in_block += take
            view = view[take:]
            if self.in_block == BLOCK_BYTES:
                self._end_block()

    def _end_block(self) -> None:
        self.blocks.update(self.block.digest())
        self.block, self.in_block = hashlib.sha256(), 0

    def matches(self, fingerprint: str) -> bool:
        kind, _, digest = fingerprint.partition(":")
        if kind == "sha256":
            return self.whole.hexdigest() == digest
        blocks = self.blocks.copy()
        if self.in_block:
            blocks.update(self.block.digest())
        return blocks.hexdigest() == digest


def parse_range(header: str, declared: int | None, limit: int) -> Piece:
    """Content-Range of one piece, checked against its body's length and the upload limit."""
    match = CONTENT_RANGE.match(header.strip())
    if not match:
        raise BadRequest("Content-Range: give 'bytes START-END/TOTAL' (END inclusive, TOTAL "
                         "the whole file's size)", message_code="content_range_malformed")
    piece = Piece(*(int(group) for group in match.groups()))
    if piece.total < 1 or piece.end < piece.start or piece.end >= piece.total:
        raise RangeNotSatisfiable(f"Content-Range {header.strip()!r} is not a range inside a "
                                  "file of TOTAL bytes", message_code="content_range_outside")
    if piece.total > limit:
        raise TooLarge(f"the upload ({piece.total:,} bytes) exceeds the limit of {limit:,} "
                       "bytes (TAZA_UPLOAD_MAX_BYTES)", limit=limit,
                       message_code="upload_too_large",
                       params={"size": piece.total, "limit": limit})
    if declared != piece.length:
        raise BadRequest(f"the piece's Content-Length ({declared}) must be END-START+1 "
                         f"({piece.length:,}) of its Content-Range",
                         message_code="piece_length_mismatch")
    return piece


def check_received(received: Received, fingerprint: str) -> None:
    """A whole upload that named its fingerprint must be that file (else 409, and dropped)."""
    fingerprints = Fingerprints()
    with received.path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            fingerprints.update(chunk)
    if not fingerprints.matches(fingerprint):
        received.path.unlink(missing_ok=True)
        raise Conflict(f"the {received.size:,} bytes received of {received.filename!r} are not "
                       "the file its fingerprint names: nothing was kept; send it again",
                       message_code="upload_fingerprint_mismatch",
                       params={"filename": received.filename})


def receive_piece(home: Path, dataset_id: str, filename: str, piece: Piece, fingerprint: str,
                  stream: BinaryIO,
                  begin: Callable[[str, str | None], None] | None = None) -> Progress | Received:
    """Append one piece; the whole file (Received, in stewards/tmp) once the last arrived and
    matched `fingerprint`. A piece from byte 0 starts a new upload, replacing this home's
    unfinished one: `begin(upload_id, replaced_upload_id)` runs first, under the upload's
    lock (the quota's check and the PostgreSQL profile's row: drafts.begin_unfinished)."""
    with _locked(home, dataset_id) as folder:
        meta = _meta(folder)
        if piece.start == 0:
            upload_id = uuid.uuid4().hex
            if begin is not None:
                begin(upload_id, (meta or {}).get("upload"))
            meta = {"filename": filename, "total": piece.total, "fingerprint": fingerprint,
                    "upload": upload_id}
            _reset(folder, meta)
        elif meta is None or meta["filename"] != filename or meta["total"] != piece.total:
            raise Conflict(f"no upload of {filename!r} ({piece.total:,} bytes) is in progress "
                           "for this dataset: send it from byte 0",
                           message_code="upload_not_in_progress", params={"filename": filename})
        elif meta.get("fingerprint") != fingerprint:
            raise Conflict(f"the upload of {filename!r} in progress is of another file (its "
                           "fingerprint differs): send this one from byte 0",
                           message_code="upload_fingerprint_differs",
                           params={"filename": filename})
        received = _received(folder)
        if piece.start != received:
            raise RangeNotSatisfiable(
                f"{received:,} bytes of {filename!r} have arrived: send the next piece from "
                f"byte {received} (no gaps, no overlaps)", received=received,
                total=piece.total,
                message_code="piece_out_of_order",
                params={"received": received, "filename": filename})
        _append(folder / "part", stream, piece.length)
        received = _received(folder)
        if received < piece.total:
            if piece.start > 0:  # the first piece's row was written just now
                unfinished.touch(home, meta.get("upload", ""))
            return Progress(filename, received, piece.total, fingerprint)
        return _complete(home, folder, meta)


def progress(home: Path, dataset_id: str) -> Progress | None:
    """The upload in progress, None when there is none (a page asks before every upload).
    Read without the lock: while a piece arrives this is the count so far, never a 409."""
    folder = stewards_dir(home) / "resume" / dataset_id
    try:
        meta = _meta(folder)
    except (OSError, ValueError):  # replaced between the check and the read
        return None
    return None if meta is None else Progress(meta["filename"], _received(folder),
                                              meta["total"], meta.get("fingerprint"))


def abandon(home: Path, dataset_id: str) -> None:
    with _locked(home, dataset_id) as folder:
        meta = _meta(folder)
        if meta is None:
            raise NotFound(f"no upload in progress for {dataset_id}",
                           message_code="no_upload_in_progress", params={"id": dataset_id})
        unfinished.forget(home, meta.get("upload"))
        _reset(folder, None)


def parts_max_age() -> float:
    """TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS: how long an unfinished upload may stay untouched
    before it is a leftover (1 s to 365 days; default 24 h)."""
    return seconds_setting("TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS", PARTS_MAX_AGE_SECONDS, 1,
                           365 * 86_400)


def unfinished_bytes(home: Path, dataset_ids: list[str], excluding: str | None = None) -> int:
    """The bytes the unfinished uploads of these datasets hold of the quota: each its whole
    TOTAL (what it will hold when finished); leftovers past the maximum age count nothing.
    `excluding`: the dataset uploading now (its new upload replaces its unfinished one)."""
    oldest = time.time() - parts_max_age()
    held = 0
    for dataset_id in dataset_ids:
        if dataset_id == excluding:
            continue
        folder = stewards_dir(home) / "resume" / dataset_id
        try:
            meta = _meta(folder)
            if meta is None or _touched(folder) < oldest:
                continue
            held += max(int(meta["total"]), _received(folder))
        except (OSError, ValueError, KeyError, TypeError):  # removed or replaced meanwhile
            continue
    return held


def remove_expired(home: Path, max_age: float | None = None,
                   database_down_ok: bool = False) -> list[str]:
    """Remove the unfinished uploads untouched for `max_age` seconds (the setting when None);
    one receiving a piece right now is left alone. Returns the datasets whose upload went.
    With `database_down_ok` (a server starting), a database that cannot be reached leaves
    every node's rows to the next sweep instead of failing: this node's files still go."""
    oldest = time.time() - (parts_max_age() if max_age is None else max_age)
    try:
        unfinished.expire(home, oldest)  # every node's rows, this node's files below
    except DatabaseError as err:
        if not database_down_ok:
            raise
        log.warning("unfinished uploads' rows not swept: %s", err)
    root = stewards_dir(home) / "resume"
    if not root.is_dir():
        return []
    removed = []
    for folder in sorted(root.iterdir()):
        try:
            if _meta(folder) is None and not (folder / "part").exists():
                continue
            if _touched(folder) >= oldest:
                continue
            with _locked(home, folder.name) as locked:
                if _touched(locked) < oldest:  # not resumed between the look and the lock
                    unfinished.forget(home, (_meta(locked) or {}).get("upload"))
                    _reset(locked, None)
                    removed.append(folder.name)
        except Conflict:  # a piece is arriving: not a leftover
            continue
        except (OSError, ValueError):
            continue
    if removed:
        log.info("removed unfinished uploads older than the maximum age: %s",
                 ", ".join(removed))
    return removed


def start_sweeper(home: Path, stop: threading.Event) -> threading.Thread:
    """A thread removing leftovers (remove_expired) every half maximum age, at most hourly,
    until `stop` is set (`taza worker` runs it)."""
    interval = min(parts_max_age() / 2, 3600.0)

    def loop() -> None:
        while not stop.is_set():
            try:
                remove_expired(home)
            except DatabaseError as err:  # down for now: one line, not a traceback a round
                log.warning("unfinished uploads could not be swept: %s", err)
            except Exception:
                log.exception("unfinished uploads could not be swept")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="upload-leftovers", daemon=True)
    thread.start()
    return thread


def _touched(folder: Path) -> float:
    """When the upload last changed: its part (each piece) or its meta.json (its start)."""
    times = [path.stat().st_mtime for path in (folder / "part", folder / "meta.json")
             if path.exists()]
    return max(times, default=0.0)


@contextlib.contextmanager
def _locked(home: Path, dataset_id: str) -> Iterator[Path]:
    folder = stewards_dir(home) / "resume" / dataset_id
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise Conflict(f"another piece of {dataset_id}'s upload is arriving; send one "
                           "piece at a time", message_code="piece_arriving") from err
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _meta(folder: Path) -> dict | None:
    path = folder / "meta.json"
    return json.loads(path.read_text()) if path.exists() else None


def _reset(folder: Path, meta: dict | None) -> None:
    (folder / "part").unlink(missing_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)
    if meta is not None:
        (folder / "part").touch()
        (folder / "meta.json").write_text(json.dumps(meta))


def _received(folder: Path) -> int:
    part = folder / "part"
    return part.stat().st_size if part.exists() else 0


def _append(part: Path, stream: BinaryIO, length: int) -> None:
    """At most `length` bytes of the body; what arrived stays when the client goes away
    (gunicorn then ends the stream early), so the upload resumes from there."""
    left = length
    with part.open("ab") as handle:
        try:
            while left > 0 and (chunk := stream.read(min(CHUNK, left))):
                handle.write(chunk[:left])
                left -= len(chunk[:left])
        finally:
            handle.flush()
            os.fsync(handle.fileno())


def _complete(home: Path, folder: Path, meta: dict) -> Received:
    """The assembled file, hashed and checked against the fingerprint its pieces named, moved
    to stewards/tmp (the draft takes it from there); its row goes either way."""
    filename = meta["filename"]
    fingerprints = Fingerprints()
    with (folder / "part").open("rb") as handle:
        while chunk := handle.read(CHUNK):
            fingerprints.update(chunk)
    unfinished.forget(home, meta.get("upload"))
    if not meta.get("fingerprint") or not fingerprints.matches(meta["fingerprint"]):
        _reset(folder, None)
        raise Conflict(f"the {meta['total']:,} bytes received of {filename!r} are not the file "
                       "its fingerprint names (pieces of another file?): nothing was kept; "
                       "send the file again from byte 0",
                       message_code="upload_fingerprint_mismatch",
                       params={"filename": filename})
    digest = fingerprints.whole
    tmp = stewards_dir(home) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / f"upload-{os.getpid()}-{uuid.uuid4().hex}.part"
    size = (folder / "part").stat().st_size
    os.rename(folder / "part", target)
    (folder / "meta.json").unlink(missing_ok=True)
    return Received(target, filename, size, digest.hexdigest())
