"""Cloud-native outputs: GeoPackage and GeoJSON for vectors, Cloud Optimized GeoTIFF for rasters.

Each converter writes into a staging folder and returns `Asset` descriptions (file name,
media type, size, checksum) plus the facts the STAC metadata needs (catalog.core.record
types: they go into the version's record as they are).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from catalog.core.record import Asset

MEDIA_TYPES = {
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
}


def describe_file(path: Path, key: str, title: str, roles: tuple[str, ...]) -> Asset:
    """Size and multihash checksum of a written file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return Asset(key, path.name, title, MEDIA_TYPES[path.suffix], roles, path.stat().st_size,
                 "1220" + digest.hexdigest())
