"""The pixels of a raster grid that a rectangle covers: shared by the OGC coverages and the
portal's raster clips, which answer a miss each in their own way."""

from __future__ import annotations

import math

from rasterio.windows import Window

EDGE_TOLERANCE = 1e-6  # in pixels: a subset edge on a pixel edge does not take the next pixel


class OutsideGrid(ValueError):
    """The rectangle is not finite or covers no pixel of the grid (the message says which)."""


def pixel_window(dataset, left: float, bottom: float, right: float, top: float) -> Window:
    """Every pixel whose area overlaps the requested rectangle, clipped to the grid."""
    if not all(math.isfinite(v) for v in (left, bottom, right, top)):
        raise OutsideGrid("bbox, subset: coordinates must be finite numbers")
    # Clip in coordinates first: 1e308 would become an infinite pixel index.
    grid = dataset.bounds
    left, right = max(left, grid.left), min(right, grid.right)
    bottom, top = max(bottom, grid.bottom), min(top, grid.top)
    missed = f"the requested area does not overlap the coverage (extent {list(grid)})"
    if left >= right or bottom >= top:
        raise OutsideGrid(missed)
    inverse = ~dataset.transform
    col_a, row_a = inverse @ (left, top)
    col_b, row_b = inverse @ (right, bottom)
    col_start = max(0, math.floor(min(col_a, col_b) + EDGE_TOLERANCE))
    col_stop = min(dataset.width, math.ceil(max(col_a, col_b) - EDGE_TOLERANCE))
    row_start = max(0, math.floor(min(row_a, row_b) + EDGE_TOLERANCE))
    row_stop = min(dataset.height, math.ceil(max(row_a, row_b) - EDGE_TOLERANCE))
    if col_stop <= col_start or row_stop <= row_start:
        raise OutsideGrid(missed)
    return Window(col_start, row_start, col_stop - col_start, row_stop - row_start)
