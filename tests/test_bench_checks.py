"""The benchmark's check of a peer's page against ours (bench/versus.py): a page that differs
only in the order of features with equal sort keys is the same answer, anything else is not.
And its report's ratios: a peer that answered nothing is said so, not shown as 0.00x."""

import math
import random

from bench.features import Result
from bench.versus import (
    NO_ANSWER,
    TILE,
    TILE_ZOOMS,
    Measured,
    Peer,
    _ratio,
    _tiles,
    render,
    same_but_ties,
    sort_key_of,
)

OURS = [("p1", 1.0), ("p2", 2.0), ("p3", 2.0), ("p4", 3.0), ("p5", 3.0)]


def test_ties_in_another_order_are_the_same_answer():
    assert same_but_ties([("p1", 1.0), ("p3", 2.0), ("p2", 2.0), ("p5", 3.0), ("p4", 3.0)],
                         OURS)


def test_the_last_run_of_equal_keys_may_end_the_page_with_other_features():
    # More parcels with the key 3.0 lie past the page's end: which of them a page holds is free.
    assert same_but_ties([("p1", 1.0), ("p2", 2.0), ("p3", 2.0), ("p4", 3.0), ("p9", 3.0)],
                         OURS)


def test_another_feature_inside_the_page_is_a_disagreement():
    assert not same_but_ties([("p1", 1.0), ("p2", 2.0), ("p9", 2.0), ("p4", 3.0), ("p5", 3.0)],
                             OURS)


def test_other_key_values_are_a_disagreement():
    assert not same_but_ties([("p1", 1.0), ("p2", 2.0), ("p3", 2.5), ("p4", 3.0),
                              ("p5", 3.0)], OURS)


def test_pages_without_a_sort_key_never_pass_for_tie_orders():
    assert not same_but_ties([("p2", None), ("p1", None)], [("p1", None), ("p2", None)])


def test_the_sort_key_is_read_from_sortby():
    assert sort_key_of({"sortby": "-area_m2"}) == "area_m2"
    assert sort_key_of({"sortby": "+parcel_id"}) == "parcel_id"
    assert sort_key_of({"filter": "x"}) is None


def _measured(**requests: int) -> Measured:
    results = {name: Result(name, "row", {"requests": count, "duration_us": 30_000_000})
               for name, count in requests.items()}
    return Measured(row=None, results=results, problems={}, matched=[])


def test_a_ratio_names_a_peer_that_answered_nothing():
    measured = _measured(ours=600, tipg=0, pygeoapi=300)
    assert _ratio(measured, "pygeoapi") == "2.00x"
    assert _ratio(measured, "tipg") == NO_ANSWER
    assert _ratio(measured, "stock") == "-"  # did not run


def test_the_tiles_row_draws_distinct_tiles_and_names_them_as_each_server_does():
    draw = _tiles(random.Random(7))
    drawn = [draw()[TILE] for _ in range(5000)]
    assert len(set(drawn)) == len(drawn)
    assert {int(tile.split("/")[0]) for tile in drawn} == set(TILE_ZOOMS)
    z, x, y = drawn[0].split("/")
    ours = Peer("ours", "/items", "geom", tiles="/t/{z}/{y}/{x}")  # OGC: row (y), then column
    tipg = Peer("tipg", "/items", "geom", tiles="/t/{z}/{x}/{y}")
    assert render(ours, {TILE: drawn[0]}) == f"/t/{z}/{y}/{x}"
    assert render(tipg, {TILE: drawn[0]}) == f"/t/{z}/{x}/{y}"


def test_the_tiles_row_stays_inside_the_layers_extent():
    """Ours answers 404 outside a layer's tileMatrixSetLimits: the row draws none there."""
    draw = _tiles(random.Random(7), (74.0, 42.0, 75.0, 43.0))
    for _ in range(2000):
        z, x, y = (int(part) for part in draw()[TILE].split("/"))
        n = 2**z
        west, east = x / n * 360 - 180, (x + 1) / n * 360 - 180
        north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
        south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / n))))
        assert east >= 74.0 and west <= 75.0 and north >= 42.0 and south <= 43.0
