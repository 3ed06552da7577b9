"""Cloud-native outputs: GeoPackage and GeoJSON for vectors, Cloud Optimized GeoTIFF for rasters.

Each converter writes into a staging folder and returns `Asset` descriptions (file name,
media type, size, checksum) plus the facts the STAC metadata needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

MEDIA_TYPES = {
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
}


@dataclass(frozen=True)
class Asset:
    """One published file of a dataset version."""

    key: str  # the STAC asset key, e.g. 'geopackage'
    file: str  # file name inside the version folder
    title: str
    media_type: str
    roles: tuple[str, ...]
    size: int
    checksum: str  # multihash: sha2-256 code 0x12, length 0x20, then the hex digest

    def as_dict(self) -> dict:
        return {"key": self.key, "file": self.file, "title": self.title,
                "media_type": self.media_type, "roles": list(self.roles), "size": self.size,
                "checksum": self.checksum}


def describe_file(path: Path, key: str, title: str, roles: tuple[str, ...]) -> Asset:
    """Size and multihash checksum of a written file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return Asset(key, path.name, title, MEDIA_TYPES[path.suffix], roles, path.stat().st_size,
                 "1220" + digest.hexdigest())
