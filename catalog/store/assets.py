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

from catalog.core.assets import AssetLocator, file_name
from catalog.core.record import Asset, Record


class StoreAssets(AssetLocator):
    @abc.abstractmethod
    def store_staged(self, staging: Path) -> None:
        """Put the files of a staged version (record.json written) where they are served
        from; raise (AssetUnavailable) if that fails, before anything is committed."""

    @abc.abstractmethod
    def remove_objects(self, folder: Path) -> int:
        """Remove the files a version (or staging) folder points to outside itself (a purge,
        or debris of a failed publish); returns how many. Call before removing the folder."""


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


def assets_for(url: str | None, version_dir) -> StoreAssets:
    """The backend TAZA_ASSETS_URL names: unset or empty for local disk, s3://... for S3."""
    if not url:
        return LocalAssets(version_dir)
    from catalog.store.s3_assets import S3Assets  # boto3 is imported only where it is used

    return S3Assets(version_dir, url)
