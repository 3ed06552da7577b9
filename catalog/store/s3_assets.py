"""The S3 AssetLocator: a version's files in an S3 bucket (TAZA_ASSETS_URL=s3://bucket/prefix).

Publishing uploads every file a record lists, from the staging folder, before the version is
committed and long before the release switch: a publish that fails midway leaves objects no
record points at (invisible, since clients reach files only through /assets of the live
version) and the previous release serving. Each staged version gets its own key prefix
(`<prefix><id>/<version>/<upload>/`, kept in the version folder's `objects.json`), and every
PUT carries `If-None-Match: *`, so an object is never overwritten, even when a failed publish's
version number is used again.

The version folder keeps `record.json`, `objects.json` and the GeoPackage (the FeatureStore
reads it as SQLite, which needs a local file); the other files live only in the bucket.
The server reads rasters through GDAL's `/vsis3/` (`gdal_path`), and /assets streams objects
with HTTP Range (`open`). Endpoint and keys come from the usual AWS_* variables
(docs/deployment.md).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from catalog.core.assets import VSIS3, AssetUnavailable, file_name
from catalog.core.record import RECORD_FILE, Asset, Record, read_record
from catalog.store.assets import OBJECTS_FILE, StoreAssets
from catalog.store.files import atomic_write

KEPT_LOCAL = {"application/geopackage+sqlite3"}  # read as SQLite by the FeatureStore
MAX_OBJECT_BYTES = 5 * 1024**3  # one PUT's limit in S3
CHUNK = 1 << 20


class ObjectStoreSettingsError(ValueError):
    """TAZA_ASSETS_URL or the AWS_* settings are unusable (the message says which)."""


@dataclass(frozen=True)
class BucketLocation:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> BucketLocation:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ObjectStoreSettingsError(
                f"TAZA_ASSETS_URL: expected s3://bucket or s3://bucket/prefix, got {url!r}")
        prefix = parts.path.strip("/")
        if any(piece in ("", ".", "..") for piece in prefix.split("/")) and prefix:
            raise ObjectStoreSettingsError(f"TAZA_ASSETS_URL: bad prefix {prefix!r}")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


def endpoint_url() -> str | None:
    """The S3 endpoint: AWS_ENDPOINT_URL (boto3's name), or AWS_S3_ENDPOINT (GDAL's, host:port
    with AWS_HTTPS=NO for plain HTTP); None means AWS itself."""
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return url
    gdal = os.environ.get("AWS_S3_ENDPOINT")
    if gdal:
        scheme = "http" if os.environ.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE") \
            else "https"
        return gdal if "://" in gdal else f"{scheme}://{gdal}"
    return None


def configure_gdal(endpoint: str | None) -> None:
    """GDAL's /vsis3/ reads its endpoint from AWS_S3_ENDPOINT (host:port), AWS_HTTPS and
    AWS_VIRTUAL_HOSTING: derive them from the boto3-style URL unless they are set. GDAL reads
    configuration options from the environment, so every rasterio open in this process (and
    in children it starts) finds the bucket."""
    if endpoint is None or os.environ.get("AWS_S3_ENDPOINT"):
        return
    parts = urlsplit(endpoint)
    os.environ["AWS_S3_ENDPOINT"] = parts.netloc
    os.environ.setdefault("AWS_HTTPS", "NO" if parts.scheme == "http" else "YES")
    # Path-style URLs: S3-compatible servers on an address rarely have per-bucket host names.
    os.environ.setdefault("AWS_VIRTUAL_HOSTING", "FALSE")
    # A COG is opened by its path: no directory listing of the bucket on open.
    os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")


def s3_client():
    """A boto3 client from the AWS_* settings. Checksums only where the API requires them:
    the streamed CRC trailers newer boto3 sends by default are not understood by every
    S3-compatible server (Ceph 16 among them); uploads carry Content-MD5 instead."""
    config = Config(request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=endpoint_url(), config=config)


def read_vsis3(path: str) -> bytes:
    """The whole object a GDAL /vsis3/<bucket>/<key> path names (for readers that get only
    the path GDAL opens, such as the coverage provider answering a whole-file GeoTIFF)."""
    bucket, _, key = path.removeprefix(VSIS3).partition("/")
    try:
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as err:
        raise AssetUnavailable(f"s3://{bucket}/{key}: {err}") from err


class S3Assets(StoreAssets):
    """Files of a version in the bucket, found through the version folder's objects.json.
    A version published before the catalog moved to the bucket (no objects.json) is still
    read from its folder."""

    def __init__(self, version_dir: Callable[[str, int], Path], url: str, client=None,
                 objects: Callable[[str, int], tuple[str, str] | None] | None = None,
                 cache_dir: Path | None = None):
        self._version_dir = version_dir
        self._objects_lookup = objects
        self._cache_dir = cache_dir
        self.location = BucketLocation.parse(url)
        endpoint = endpoint_url()
        configure_gdal(endpoint)
        self._client = client or s3_client()
        self._heads: dict[tuple[str, str], dict] = {}  # objects never change: cache HEADs
        self._lock = threading.Lock()

    # -- publishing ----------------------------------------------------------------------

    def store_staged(self, staging: Path) -> None:
        """Upload the files a staged version's record lists, record where they went, and
        remove the local copies the server does not need on disk. objects.json is written
        first, so whoever finds this folder as debris after a crash removes the uploads."""
        record = read_record(staging / RECORD_FILE)
        prefix = (f"{self.location.prefix}{record.id}/{record.version}/"
                  f"{uuid.uuid4().hex}/")
        (staging / OBJECTS_FILE).write_text(json.dumps(
            {"bucket": self.location.bucket, "prefix": prefix}, indent=2))
        files = record.files()
        try:
            for name, media_type in files.items():
                self._put(staging / name, prefix + name, media_type)
        except AssetUnavailable:
            self._remove_quietly(staging)
            raise
        for name, media_type in files.items():
            if media_type not in KEPT_LOCAL:
                (staging / name).unlink()

    def store_existing(self, folder: Path) -> bool:
        """Copy a version published to disk into the bucket (`taza migrate --assets`): upload
        the files its record lists, then write objects.json, last, so a failure leaves the
        version read from disk as before (the objects uploaded so far are under a prefix no
        record names). The local copies stay until the operator removes them. False when
        the version is in a bucket already."""
        if (folder / OBJECTS_FILE).exists():
            return False
        record = read_record(folder / RECORD_FILE)
        prefix = f"{self.location.prefix}{record.id}/{record.version}/{uuid.uuid4().hex}/"
        for name, media_type in record.files().items():
            self._put(folder / name, prefix + name, media_type)
        atomic_write(folder / OBJECTS_FILE, json.dumps(
            {"bucket": self.location.bucket, "prefix": prefix}, indent=2))
        return True

    def object_sizes(self, folder: Path) -> dict[str, int | AssetUnavailable] | None:
        """The size of each file's object of a version folder, or why it cannot be read; None
        when the folder was never copied to the bucket. `taza migrate --verify` compares them
        with the files."""
        where = _objects_of(folder)
        if where is None:
            return None
        sizes: dict[str, int | AssetUnavailable] = {}
        for name in read_record(folder / RECORD_FILE).files():
            try:
                sizes[name] = self._head(where[0], where[1] + name)["ContentLength"]
            except AssetUnavailable as err:
                sizes[name] = err
        return sizes

    def _put(self, path: Path, key: str, media_type: str) -> None:
        size = path.stat().st_size
        if size > MAX_OBJECT_BYTES:
            raise AssetUnavailable(f"{path.name} is {size} bytes, above the {MAX_OBJECT_BYTES}"
                                   " bytes one S3 PUT takes")
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
            handle.seek(0)
            try:
                # If-None-Match: the server refuses to replace an existing object.
                self._client.put_object(
                    Bucket=self.location.bucket, Key=key, Body=handle, ContentLength=size,
                    ContentType=media_type, IfNoneMatch="*",
                    ContentMD5=base64.b64encode(digest.digest()).decode())
            except (BotoCoreError, ClientError) as err:
                raise AssetUnavailable(f"upload of {path.name} to s3://"
                                       f"{self.location.bucket}/{key} failed: {err}") from err

    def remove_objects(self, folder: Path) -> int:
        where = _objects_of(folder)
        if where is None:
            return 0
        return self.remove_prefix(*where)

    def remove_prefix(self, bucket: str, prefix: str) -> int:
        deleted = 0
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                         Prefix=prefix)
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self._client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
                    deleted += len(keys)
        except (BotoCoreError, ClientError) as err:
            raise AssetUnavailable(f"removing s3://{bucket}/{prefix}: {err}") from err
        return deleted

    def _remove_quietly(self, folder: Path) -> None:
        """Best effort after a failed upload: what stays is invisible (no record points at
        it) and the next clean-up under the lock tries again while the folder exists."""
        try:
            self.remove_objects(folder)
        except AssetUnavailable:
            pass

    # -- reading -------------------------------------------------------------------------

    def local_path(self, record: Record, file: Asset | str) -> Path | None:
        name = file_name(record, file)
        if self._objects(record.id, record.version) is None:
            return self._version_dir(record.id, record.version) / name
        if record.files()[name] in KEPT_LOCAL:
            path = self._version_dir(record.id, record.version) / name
            if path.exists() or self._cache_dir is None:
                return path
            return self._cached_copy(record, name)
        return None

    def _cached_copy(self, record: Record, name: str) -> Path:
        """A file this node must read from its disk (a GeoPackage, as SQLite) of a version
        published from another home: downloaded once into the node's cache, written aside
        and renamed into place, so readers never see half a file."""
        path = self._cache_dir / record.id / str(record.version) / name
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        bucket, key = self._key(record, name)
        partial = path.with_name(f".{name}.{uuid.uuid4().hex}")
        try:
            self._client.download_file(bucket, key, str(partial))
            os.replace(partial, path)
        except (BotoCoreError, ClientError, OSError) as err:
            partial.unlink(missing_ok=True)
            raise AssetUnavailable(f"s3://{bucket}/{key}: {err}") from err
        return path

    def gdal_path(self, record: Record, file: Asset | str) -> str:
        path = self.local_path(record, file)
        if path is not None:
            return str(path)
        bucket, key = self._key(record, file)
        return f"{VSIS3}{bucket}/{key}"

    def size(self, record: Record, file: Asset | str) -> int:
        path = self.local_path(record, file)
        if path is not None:
            return path.stat().st_size
        return self._head(*self._key(record, file))["ContentLength"]

    def open(self, record: Record, file: Asset | str,
             window: tuple[int, int] | None = None) -> io.BufferedIOBase:
        path = self.local_path(record, file)
        if path is not None:
            return path.open("rb")
        bucket, key = self._key(record, file)
        reader = ObjectReader(self._client, bucket, key, self._head(bucket, key), window)
        # The first GET now, where the window starts: a store that does not answer raises
        # here, before an HTTP answer has begun, rather than cutting a 200 short.
        reader.seek(window[0] if window else 0)
        reader.start()
        return reader

    def _key(self, record: Record, file: Asset | str) -> tuple[str, str]:
        name = file_name(record, file)
        bucket, prefix = self._objects(record.id, record.version)
        return bucket, prefix + name

    def _objects(self, dataset_id: str, version: int) -> tuple[str, str] | None:
        if self._objects_lookup is not None:
            return self._objects_lookup(dataset_id, version)
        return _objects_of(self._version_dir(dataset_id, version))

    def _head(self, bucket: str, key: str) -> dict:
        with self._lock:
            cached = self._heads.get((bucket, key))
        if cached is not None:
            return cached
        try:
            answer = self._client.head_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as err:
            raise AssetUnavailable(f"s3://{bucket}/{key}: {err}") from err
        head = {"ContentLength": answer["ContentLength"], "ETag": answer["ETag"].strip('"'),
                "LastModified": answer["LastModified"]}
        with self._lock:
            if len(self._heads) > 10_000:
                self._heads.clear()
            self._heads[(bucket, key)] = head
        return head


def _objects_of(folder: Path) -> tuple[str, str] | None:
    """(bucket, key prefix) of a version folder's files, or None for files on disk."""
    try:
        where = json.loads((folder / OBJECTS_FILE).read_text())
    except FileNotFoundError:
        return None
    return where["bucket"], where["prefix"]


class ObjectReader(io.RawIOBase):
    """A seekable, read-only view of one object: one ranged GET per stretch read in order.

    `window` (start, stop) is the byte range the caller will read, when it knows it (an HTTP
    Range request): the GET asks for exactly that, not the rest of the object."""

    def __init__(self, client, bucket: str, key: str, head: dict,
                 window: tuple[int, int] | None = None):
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self.size: int = head["ContentLength"]
        self.etag: str = head["ETag"]
        self.last_modified = head["LastModified"]
        self._window = window
        self._position = 0
        self._body = None
        self._body_position = 0
        self._body_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer) -> int:
        if self._position >= self.size or len(buffer) == 0:
            return 0
        if self._body is None or self._body_position != self._position \
                or self._position >= self._body_end:
            self._open_body()
        data = self._body.read(min(len(buffer), self._body_end - self._position))
        if not data:
            raise AssetUnavailable(f"s3://{self._bucket}/{self._key} ended early")
        buffer[:len(data)] = data
        self._position += len(data)
        self._body_position = self._position
        return len(data)

    def start(self) -> None:
        """Open the stream at the current position (reads would open it anyway)."""
        if self._position < self.size:
            self._open_body()

    def _open_body(self) -> None:
        self._close_body()
        end = self.size
        if self._window and self._window[0] <= self._position < self._window[1]:
            end = min(self._window[1], self.size)
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key,
                                             Range=f"bytes={self._position}-{end - 1}")
        except (BotoCoreError, ClientError) as err:
            raise AssetUnavailable(f"s3://{self._bucket}/{self._key}: {err}") from err
        self._body, self._body_position, self._body_end = answer["Body"], self._position, end

    def _close_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()
