"""The local-disk AssetLocator: a version's files in its folder under the catalog home."""

from __future__ import annotations

from pathlib import Path

from catalog.core.assets import AssetLocator, file_name
from catalog.core.record import Asset, Record


class LocalAssets(AssetLocator):
    """Files of `datasets/<id>/<version>/` under the home (catalog.store's layout)."""

    def __init__(self, version_dir):
        self._version_dir = version_dir  # (dataset id, version) -> its folder

    def local_path(self, record: Record, file: Asset | str) -> Path:
        return self._version_dir(record.id, record.version) / file_name(record, file)

    def read_range(self, record: Record, file: Asset | str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"a byte range starts and runs at 0 or more, not {start}+{length}")
        with self.local_path(record, file).open("rb") as handle:
            handle.seek(start)
            return handle.read(length)

    def size(self, record: Record, file: Asset | str) -> int:
        return self.local_path(record, file).stat().st_size
