"""Where a dataset version's files are: URLs for clients, paths or bytes for the server.

`AssetLocator` is the one way to reach a version's files (its assets and the published
manifest copy): nothing else builds `/assets/...` URLs or version folder paths
(tests/test_record.py checks the code for it). The store provides the local-disk locator
(catalog/store/assets.py); an object-store one (issue 13) implements the same methods and may
answer `local_path` with None, so a server reads through `gdal_path` (GDAL's /vsis3/),
`open` or `read_range` instead.
"""

from __future__ import annotations

import abc
import io
from pathlib import Path
from urllib.parse import quote

from catalog.core.record import Asset, Record

# The route the server answers a version's files on (catalog/app.py), with HTTP Range.
ASSETS_ROUTE = "/assets"
VSIS3 = "/vsis3/"  # GDAL's name for a path in an S3 bucket: /vsis3/<bucket>/<key>


class AssetNotFound(LookupError):
    """The version has no such file."""


class AssetUnavailable(RuntimeError):
    """The file is listed but its storage does not answer (an object store down or
    refusing): a 503 for clients, a failed publish for publishers."""


def file_name(record: Record, file: Asset | str) -> str:
    """The name of one of the record's files (an asset or the manifest copy), checked: only
    names the record lists reach the disk or a URL, so no name walks out of the folder."""
    name = file.file if isinstance(file, Asset) else file
    if name not in record.files():
        raise AssetNotFound(f"{record.id} version {record.version} has no file {name!r}")
    return name


class AssetLocator(abc.ABC):
    """A version's files: for clients a URL, for the server a local path or byte ranges."""

    def url(self, record: Record, file: Asset | str, base: str = "") -> str:
        """The URL clients fetch the file from: relative (`/assets/<id>/<version>/<file>`),
        or absolute under `base`, the server's public URL. A name the version lacks still
        gets its URL (the server answers it 404), but never one outside the version."""
        name = file.file if isinstance(file, Asset) else file
        if not name or "/" in name or name in (".", ".."):
            raise AssetNotFound(f"{name!r} is not a file name")
        path = "/".join((ASSETS_ROUTE, quote(record.id), str(record.version), quote(name)))
        return base.rstrip("/") + path

    @abc.abstractmethod
    def local_path(self, record: Record, file: Asset | str) -> Path | None:
        """The file on this machine's disk, or None where the files are elsewhere."""

    def read_range(self, record: Record, file: Asset | str, start: int, length: int) -> bytes:
        """Up to `length` bytes of the file from offset `start` (fewer at its end)."""
        if start < 0 or length < 0:
            raise ValueError(f"a byte range starts and runs at 0 or more, not {start}+{length}")
        with self.open(record, file, window=(start, start + length)) as stream:
            stream.seek(start)
            return stream.read(length)

    @abc.abstractmethod
    def size(self, record: Record, file: Asset | str) -> int:
        """The file's size in bytes."""

    @abc.abstractmethod
    def gdal_path(self, record: Record, file: Asset | str) -> str:
        """The name GDAL (rasterio) opens the file by: a local path or a /vsi... path."""

    @abc.abstractmethod
    def open(self, record: Record, file: Asset | str,
             window: tuple[int, int] | None = None) -> io.BufferedIOBase | io.RawIOBase:
        """The file as a seekable binary stream. `window` (start, stop) is a hint: the byte
        range the caller will read, so remote storage fetches only that."""
