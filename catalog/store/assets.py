"""The asset backends of the store: where a version's files live (docs/architecture.md).

`StoreAssets` adds to the core's `AssetLocator` what the store itself calls while it holds the
publish lock: `store_staged` before a version is committed, `remove_objects` in a purge or when
it clears debris.
`LocalAssets` (the version folder under the home) is the embedded default; `S3Assets`
(catalog/store/s3_assets.py) keeps the files in a bucket. `TAZA_ASSETS_URL` chooses.
"""

from __future__ import annotations

import abc
import io
from pathlib import Path

from catalog.core.assets import AssetLocator, AssetUnavailable, file_name
from catalog.core.record import Asset, Record

OBJECTS_FILE = "objects.json"  # in a version folder: where its files are in a bucket


class StoreAssets(AssetLocator):
    @abc.abstractmethod
    def store_staged(self, staging: Path) -> None:
        """Put the files of a staged version (record.json written) where they are served
        from; raise (AssetUnavailable) if that fails, before anything is committed."""

    @abc.abstractmethod
    def remove_objects(self, folder: Path) -> int:
        """Remove the files a version (or staging) folder points to outside itself (a purge,
        or debris of a failed publish); returns how many. Call before removing the folder."""

    def remove_prefix(self, bucket: str, prefix: str) -> int:
        """Remove every object under a version's key prefix (a purge of a version whose folder
        is in another node's home); returns how many."""
        raise AssetUnavailable(f"s3://{bucket}/{prefix} cannot be removed: TAZA_ASSETS_URL "
                               "is not set")


class LocalAssets(StoreAssets):
    """Files of `datasets/<id>/<version>/` under the home (catalog.store's layout)."""

    def __init__(self, version_dir):
        self._version_dir = version_dir  # (dataset id, version) -> its folder

    def store_staged(self, staging: Path) -> None:
        """The staging folder becomes the version folder: the files are already in place."""

    def remove_objects(self, folder: Path) -> int:
        return 0  # the version folder holds them all; the store removes it

    def local_path(self, record: Record, file: Asset | str) -> Path:
        return self._version_dir(record.id, record.version) / file_name(record, file)

    def gdal_path(self, record: Record, file: Asset | str) -> str:
        return str(self.local_path(record, file))

    def open(self, record: Record, file: Asset | str,
             window: tuple[int, int] | None = None) -> io.BufferedReader:
        return self.local_path(record, file).open("rb")

    def size(self, record: Record, file: Asset | str) -> int:
        return self.local_path(record, file).stat().st_size


def assets_for(url: str | None, version_dir, objects=None,
               cache_dir: Path | None = None) -> StoreAssets:
    """The backend TAZA_ASSETS_URL names: unset or empty for local disk, s3://... for S3.
    objects: (dataset id, version) -> (bucket, key prefix) or None, where the store keeps
    that (default: the version folder's objects.json); cache_dir: where a file that must be
    read from a local disk is downloaded to when its version folder is not in this home."""
    if not url:
        return LocalAssets(version_dir)
    from catalog.store.s3_assets import S3Assets  # boto3 is imported only where it is used

    return S3Assets(version_dir, url, objects=objects, cache_dir=cache_dir)
