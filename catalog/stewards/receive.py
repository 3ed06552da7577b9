"""Request bodies streamed to disk in 1 MiB chunks: a 2 GB upload never sits in memory.

The body goes to a temporary file in TAZA_HOME/stewards/tmp (the same filesystem as the drafts,
so accepting it is a rename) while its SHA-256 and size are computed; past the size limit the
upload stops with 413. Multipart bodies are decoded with werkzeug's sans-IO decoder, one file
part named `file`; anything else in the form is refused rather than ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from catalog.stewards.errors import BadRequest, ServiceError, TooLarge

CHUNK = 1 << 20
MULTIPART_OVERHEAD = 64 * 1024  # part headers and boundaries around the file
MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Received:
    path: Path
    filename: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Allowance:
    """Bytes a body may bring, and what to answer past them (the quota's own refusal)."""

    quota: int
    refusal: Callable[[int], ServiceError]  # given the bytes received so far


class _Sink:
    """A temporary file that hashes and counts what is written, refusing past the limit."""

    def __init__(self, tmp_dir: Path, limit: int, allowance: Allowance | None = None):
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.path = tmp_dir / f"upload-{os.getpid()}-{uuid.uuid4().hex}.part"
        self.handle = self.path.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0
        self.limit = limit
        self.allowance = allowance

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"the upload exceeds the limit of {self.limit:,} bytes "
                           "(TAZA_UPLOAD_MAX_BYTES)", limit=self.limit,
                           message_code="upload_too_large",
                           params={"size": self.size, "limit": self.limit})
        if self.allowance and self.size > self.allowance.quota:
            raise self.allowance.refusal(self.size)
        self.digest.update(data)
        self.handle.write(data)

    def finish(self, filename: str) -> Received:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return Received(self.path, filename, self.size, self.digest.hexdigest())

    def discard(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def _sink(tmp_dir: Path, limit: int, allowance: Allowance | None) -> Iterator[_Sink]:
    remove_stale_parts(tmp_dir)
    sink = _Sink(tmp_dir, limit, allowance)
    try:
        yield sink
    except BaseException:
        sink.discard()
        raise


def receive_raw(stream: BinaryIO, filename: str, tmp_dir: Path, limit: int,
                allowance: Allowance | None = None, declared: int | None = None) -> Received:
    """The whole body is the file. A body shorter than its Content-Length (the client went
    away: gunicorn then simply ends the stream) is refused, never taken for a whole file."""
    with _sink(tmp_dir, limit, allowance) as sink:
        for chunk in _chunks(stream):
            sink.write(chunk)
        if declared is not None and sink.size != declared:
            raise BadRequest(f"the upload was cut short: {sink.size:,} of {declared:,} bytes "
                             "arrived",
                             message_code="upload_cut_short",
                             params={"size": sink.size, "declared": declared})
        return sink.finish(filename)


def receive_multipart(stream: BinaryIO, boundary: bytes, tmp_dir: Path, limit: int,
                      allowance: Allowance | None = None) -> Received:
    """A multipart/form-data body with exactly one part: the file, in field `file`."""
    decoder = MultipartDecoder(boundary, max_form_memory_size=MAX_FIELD_BYTES, max_parts=4)
    with _sink(tmp_dir, limit, allowance) as sink:
        state = _Parts(sink)
        try:
            for chunk in _chunks(stream):
                decoder.receive_data(chunk)
                state.drain(decoder)
            decoder.receive_data(None)
            state.drain(decoder)
        except ValueError as err:
            raise BadRequest(f"malformed multipart body: {err}",
                             message_code="multipart_malformed") from err
        except RequestEntityTooLarge as err:
            raise BadRequest("a form field is too large: send the file in field 'file' "
                             "and options in the query string",
                             message_code="multipart_field_too_large") from err
        if state.filename is None or not state.complete:
            raise BadRequest("the multipart body has no complete part 'file' with a filename",
                             message_code="multipart_no_file")
        return sink.finish(state.filename)


class _Parts:
    def __init__(self, sink: _Sink):
        self.sink = sink
        self.filename: str | None = None
        self.complete = False

    def drain(self, decoder: MultipartDecoder) -> None:
        event = decoder.next_event()
        while not isinstance(event, (NeedData, Epilogue)):
            if isinstance(event, File):
                self.start_file(event)
            elif isinstance(event, Field):
                raise BadRequest(f"unexpected form field {event.name!r}: send the file in "
                                 "field 'file' and options in the query string",
                                 message_code="multipart_form_field")
            elif isinstance(event, Data):
                self.sink.write(event.data)
                self.complete = not event.more_data
            event = decoder.next_event()

    def start_file(self, event: File) -> None:
        if event.name != "file" or self.filename is not None:
            raise BadRequest(f"unexpected file field {event.name!r}: send one file, in "
                             "field 'file'", message_code="multipart_file_field")
        self.filename = PurePosixPath(event.filename.replace("\\", "/")).name


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    except RequestEntityTooLarge as err:  # werkzeug's own check of max_content_length
        raise TooLarge("the upload exceeds the size limit (TAZA_UPLOAD_MAX_BYTES)",
                       message_code="upload_over_limit") from err


def remove_stale_parts(tmp_dir: Path) -> None:
    """Delete partial uploads and staging folders whose process died (killed worker, lost
    power): both are named after the pid that wrote them."""
    if not tmp_dir.is_dir():
        return
    for leftover in [*tmp_dir.glob("upload-*.part"), *tmp_dir.glob("stage-*")]:
        pid = leftover.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
