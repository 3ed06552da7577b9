"""The rows of bench/stac_load.py searched in process against our SQLite index, without HTTP:
the time SQL takes per search, with the plans as chosen and with range plans turned off
(catalog/stac_index/sqlite_backend.py, MAX_RANGE_CANDIDATES), to see which searches of a row
are slow and why, before running the load.

    python -m bench stac_plans [--index bench/.work/stac-home/stac-index.sqlite] [--searches 600]

The index is the one `python -m bench stac_load` built (1,000,000 items with --items 1000000).
Prints, per row and setting: mean, p50, p99 and max milliseconds a search.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from bench.stac_load import rows
from bench.stac_search import OURS_HOME, SEED
from catalog.stac_api.params import item_search_from_body, item_search_from_query
from catalog.stac_index import sqlite_backend
from catalog.stac_index.sqlite_backend import SqliteBackend


def timings(index: SqliteBackend, searches: list) -> list[float]:
    """Milliseconds of each search, in order."""
    spent = []
    for search in searches:
        query, _ = item_search_from_body(search.post) if search.post is not None \
            else item_search_from_query(search.get)
        started = time.perf_counter()
        index.search(query, rendered=True)
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def summary(spent: list[float]) -> str:
    ordered = sorted(spent)
    return (f"mean {sum(ordered) / len(ordered):.2f} p50 {ordered[len(ordered) // 2]:.1f} "
            f"p99 {ordered[int(len(ordered) * 0.99)]:.1f} max {ordered[-1]:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stac_plans", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=OURS_HOME / "stac-index.sqlite")
    parser.add_argument("--searches", type=int, default=600, help="searches per row")
    args = parser.parse_args(argv)
    if not args.index.exists():
        raise SystemExit(f"{args.index}: no index (run `python -m bench stac_load` first)")
    index = SqliteBackend(args.index)
    chosen = sqlite_backend.MAX_RANGE_CANDIDATES
    for row in rows(random.Random(SEED + 14)):  # the same searches as stac_load's
        searches = row.searches[:args.searches]
        timings(index, searches[:20])  # warm: page cache, the range estimate's sample
        results = []
        for label, bound in (("as chosen", chosen), ("no range plans", -1)):
            sqlite_backend.MAX_RANGE_CANDIDATES = bound
            results.append(f"{label}: {summary(timings(index, searches))}")
        sqlite_backend.MAX_RANGE_CANDIDATES = chosen
        print(f"{row.name} | " + " | ".join(results), flush=True)
    return 0
