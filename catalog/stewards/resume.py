"""Resumable uploads: a source sent in pieces (PUT with Content-Range), kept across cuts.

    PUT /api/datasets/{id}/draft/source?filename=NAME   Content-Range: bytes START-END/TOTAL

Each piece must start exactly where the received part ends (no gaps, no overlaps: 416 with
the offset to send from); a piece starting at 0 starts a new upload. A connection cut mid-piece
keeps the bytes that arrived, so GET /api/datasets/{id}/draft/source/resume tells where to go
on. Once TOTAL bytes are in, the file is hashed and handed to the draft like a whole upload
(drafts.accept_upload, which checks it only when it differs from the draft's current one).

One upload in progress per dataset, in TAZA_HOME/stewards/resume/<dataset>/ (part, meta.json),
changed under its own flock (not the dataset's lock: a slow piece must not block manifest
edits); TOTAL is bounded by the upload limit and the organisation's quota.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from catalog.stewards.db import stewards_dir
from catalog.stewards.errors import (
    BadRequest,
    Conflict,
    NotFound,
    RangeNotSatisfiable,
    TooLarge,
)
from catalog.stewards.receive import CHUNK, Received

CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,18})-([0-9]{1,18})/([0-9]{1,18})$")


@dataclass(frozen=True)
class Piece:
    start: int
    end: int  # inclusive, as Content-Range says it
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class Progress:
    filename: str
    received: int
    total: int

    def as_dict(self) -> dict:
        return {"filename": self.filename, "received": self.received, "total": self.total,
                "complete": self.received == self.total}


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


def receive_piece(home: Path, dataset_id: str, filename: str, piece: Piece,
                  stream: BinaryIO) -> Progress | Received:
    """Append one piece; the whole file (Received, in stewards/tmp) once the last arrived."""
    with _locked(home, dataset_id) as folder:
        meta = _meta(folder)
        if piece.start == 0:
            meta = {"filename": filename, "total": piece.total}
            _reset(folder, meta)
        elif meta is None or meta["filename"] != filename or meta["total"] != piece.total:
            raise Conflict(f"no upload of {filename!r} ({piece.total:,} bytes) is in progress "
                           "for this dataset: send it from byte 0",
                           message_code="upload_not_in_progress", params={"filename": filename})
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
            return Progress(filename, received, piece.total)
        return _complete(home, folder, filename)


def progress(home: Path, dataset_id: str) -> Progress | None:
    """The upload in progress, None when there is none (a page asks before every upload).
    Read without the lock: while a piece arrives this is the count so far, never a 409."""
    folder = stewards_dir(home) / "resume" / dataset_id
    try:
        meta = _meta(folder)
    except (OSError, ValueError):  # replaced between the check and the read
        return None
    return None if meta is None else Progress(meta["filename"], _received(folder),
                                              meta["total"])


def abandon(home: Path, dataset_id: str) -> None:
    with _locked(home, dataset_id) as folder:
        if _meta(folder) is None:
            raise NotFound(f"no upload in progress for {dataset_id}",
                           message_code="no_upload_in_progress", params={"id": dataset_id})
        _reset(folder, None)


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


def _complete(home: Path, folder: Path, filename: str) -> Received:
    """The assembled file, hashed, moved to stewards/tmp (the draft takes it from there)."""
    digest = hashlib.sha256()
    with (folder / "part").open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    tmp = stewards_dir(home) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / f"upload-{os.getpid()}-{uuid.uuid4().hex}.part"
    size = (folder / "part").stat().st_size
    os.rename(folder / "part", target)
    (folder / "meta.json").unlink(missing_ok=True)
    return Received(target, filename, size, digest.hexdigest())
