"""The synthetic parcels' grid (bench/parcels.py): counts past half the coarse grid split its
cells just enough, and the split cells still hold one valid parcel each, inside their cell."""

import numpy as np
import shapely
from hypothesis import given
from hypothesis import strategies as st

from bench.parcels import MAX_DRAWN_SHARE, Grid, quadrilaterals, split_for


@given(count=st.integers(1, 50_000_000), candidates=st.integers(1_000, 5_000_000))
def test_the_split_is_the_smallest_that_keeps_the_draw_under_its_share(count, candidates):
    k = split_for(count, candidates)
    assert count <= MAX_DRAWN_SHARE * k * k * candidates
    assert k == 1 or count > MAX_DRAWN_SHARE * (k - 1) ** 2 * candidates


def test_counts_that_fit_the_coarse_grid_keep_it():
    # The 1,000,000-parcel layer of earlier results stays byte for byte the same layer.
    assert split_for(1_000_000, 4_300_000) == 1
    assert split_for(10_000_000, 4_300_000) == 3


def test_split_cells_hold_valid_parcels_inside_them():
    grid = Grid(3)
    x = np.array([74.0, 74.0 + grid.x, 74.0])
    y = np.array([42.0, 42.0, 42.0 + grid.y])
    parcels = quadrilaterals(x, y, np.random.default_rng(1), grid)
    cells = shapely.box(x, y, x + grid.x, y + grid.y)
    assert shapely.is_valid(parcels).all()
    assert shapely.contains(cells, parcels).all()
    assert not shapely.intersects(parcels[0], parcels[1])
