"""STAC search under load: our SQLite index against stac-fastapi-pgstac on the same items.

    python -m bench stac_load [--items 1000000] [--duration 30] [--rows TEXT]

The items, our index and the pgstac side (Debian PostgreSQL 15 + PostGIS, pypgstac load,
stac-fastapi-pgstac under uvicorn with 2 workers, in bench/.work/pgstac-venv) are those of
bench/stac_search.py; ours is the /stac blueprint under gunicorn (2 workers, gthread, 4 threads)
over the index that publishing writes. Each row is a list of requests drawn in Python, each with
its own random values (bbox, bbox + datetime ranges, CQL2 text and JSON filters, sortby on any
queryable over the whole collection, POST searches, fields), sent by wrk (bench/wrk_lines.lua,
16 connections) in alternating turns. A sample of each row's requests goes to both servers
first: the ids of each page, in order, must agree. Writes bench/results/stac-load-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import features, stac_search
from bench.features import CONNECTIONS, SLICE_S, WRK_THREADS, Result
from bench.stac_search import COLLECTION, KYRGYZSTAN, SEED, START, WORK
from bench.versus import (
    LINES_PER_ROW,
    SAMPLE,
    WARM_UP,
    ms,
    run_wrk,
    stop_on_sigterm,
    write_result,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SORT_KEYS = ("properties.datetime", "properties.eo:cloud_cover")


@dataclass(frozen=True)
class Search:
    """One search: GET parameters, or a POST body."""

    get: dict[str, str] | None = None
    post: dict | None = None

    def line(self, search_path: str) -> str:
        if self.post is not None:
            return f"POST\t{search_path}\t{json.dumps(self.post, separators=(',', ':'))}\n"
        query = urllib.parse.urlencode(self.get, quote_via=urllib.parse.quote)
        return f"GET\t{search_path}?{query}\n"


@dataclass
class Row:
    name: str
    searches: list[Search]
    note: str = ""


def rows(rng: random.Random) -> list[Row]:
    def many(draw) -> list[Search]:
        return [draw() for _ in range(LINES_PER_ROW)]

    base = {"collections": COLLECTION, "limit": "10"}
    return [
        Row("bbox", many(lambda: Search({**base, "bbox": _box(rng)})),
            "random boxes of 0.2 to 1 degree"),
        Row("bbox + datetime range", many(lambda: Search(
            {**base, "bbox": _box(rng), "datetime": _window(rng)})),
            "random boxes, random windows of 1 to 24 months"),
        Row("CQL2 text filter", many(lambda: Search({
            **base, "filter-lang": "cql2-text",
            "filter": f"\"eo:cloud_cover\" < {rng.uniform(0.5, 20):.2f} AND "
                      f"datetime >= TIMESTAMP('{_instant(rng)}')"})),
            "random cloud threshold and start time"),
        Row("CQL2 JSON filter (POST)", many(lambda: Search(post={
            "collections": [COLLECTION], "limit": 10, "filter-lang": "cql2-json",
            "filter": {"op": "and", "args": [
                {"op": "between", "args": [{"property": "eo:cloud_cover"},
                                           *sorted([round(rng.uniform(0, 100), 2),
                                                    round(rng.uniform(0, 100), 2)])]},
                {"op": "s_intersects", "args": [{"property": "geometry"},
                                                _polygon_json(rng)]}]}})),
            "random cloud range and box, POST"),
        Row("sortby over the whole collection", many(lambda: Search({
            **base, "sortby": f"{rng.choice('+-')}{rng.choice(SORT_KEYS)},+id",
            "filter-lang": "cql2-text",
            "filter": f"\"eo:cloud_cover\" >= {rng.uniform(0, 100):.2f}"})),
            "random key (datetime, eo:cloud_cover) and direction, random lower bound on cloud"),
        Row("POST bbox + datetime + CQL2 JSON", many(lambda: Search(post={
            "collections": [COLLECTION], "limit": 10, "bbox": [float(v) for v in
                                                                 _box(rng).split(",")],
            "datetime": _window(rng), "filter-lang": "cql2-json",
            "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"},
                                           round(rng.uniform(5, 95), 2)]}})),
            "random box, window and threshold"),
        Row("fields + bbox", many(lambda: Search({
            **base, "bbox": _box(rng), "fields": "id,properties.datetime,-assets"})),
            "random boxes, fields extension"),
    ]


def _box(rng: random.Random) -> str:
    size = rng.uniform(0.2, 1.0)
    west, south, east, north = KYRGYZSTAN
    x, y = rng.uniform(west, east - size), rng.uniform(south, north - size)
    return f"{x:.4f},{y:.4f},{x + size:.4f},{y + size:.4f}"


def _instant(rng: random.Random) -> str:
    moment = START + dt.timedelta(seconds=rng.randrange(9 * 365 * 86400))
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _window(rng: random.Random) -> str:
    start = START + dt.timedelta(days=rng.randrange(9 * 365))
    end = start + dt.timedelta(days=rng.randrange(30, 730))
    return f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"


def _polygon_json(rng: random.Random) -> dict:
    west, south, east, north = (float(v) for v in _box(rng).split(","))
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}


# --- checks and load ----------------------------------------------------------------------------


def ids(root: str, search_path: str, search: Search) -> tuple[int, list[str], int | None]:
    """(HTTP status, ids of the page, numberMatched) of one search."""
    if search.post is not None:
        request = urllib.request.Request(root + search_path, method="POST",
                                         data=json.dumps(search.post).encode(),
                                         headers={"Content-Type": "application/json"})
    else:
        query = urllib.parse.urlencode(search.get, quote_via=urllib.parse.quote)
        request = urllib.request.Request(f"{root}{search_path}?{query}")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            body = json.loads(response.read())
            return response.status, [f["id"] for f in body["features"]], \
                body.get("numberMatched")
    except urllib.error.HTTPError as err:
        return err.code, [], None


@dataclass
class Side:
    name: str
    root: str
    search_path: str


def warm_up(side: Side, searches: list[Search]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda s: ids(side.root, side.search_path, s), searches))


def run(args) -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    features.ensure_debian_packages()  # wrk: run alone, this row set crashed without it
    stac_search.ensure_pgstac_tools()
    pg_port = stac_search.free_port()
    data = stac_search.start_postgres(pg_port)
    try:
        args.database_url = ours_database(pg_port) if args.ours_on == "pgstac" else None
        print(f"indexing {args.items:,} synthetic items into our {args.ours_on} index ...",
              flush=True)
        index_s = stac_search.index_ours(args.items, args.database_url)
        pg_load_s, _ = stac_search.load_pgstac(pg_port, args.items)
        print(f"ours indexed in {index_s:.1f} s; pypgstac load {pg_load_s:.1f} s", flush=True)
        chosen = [r for r in rows(random.Random(SEED + 14)) if not args.rows or args.rows in r.name]
        measured = [measure(row, pg_port, args.duration, args.database_url) for row in chosen]
    finally:
        stac_search.stop_postgres(data)
    name = "stac-load-pgstac" if args.ours_on == "pgstac" else "stac-load"
    write_result(report(args, measured, index_s, pg_load_s), name)
    return 0


def ours_database(pg_port: int) -> str:
    """A database of its own in the same PostgreSQL for our pgstac backend."""
    import psycopg
    from psycopg import sql

    admin = f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE ours")
    url = f"postgresql://postgres@127.0.0.1:{pg_port}/ours"
    with psycopg.connect(url, autocommit=True) as conn:
        for extension in ("postgis", "btree_gist", "unaccent"):
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}")
                         .format(sql.Identifier(extension)))
    return url


def measure(row: Row, pg_port: int, duration: int,
            database_url: str | None = None) -> tuple[Row, dict, dict, list]:
    folder = WORK / "stac-lines"
    folder.mkdir(parents=True, exist_ok=True)
    sides = [Side("ours", "", "/stac/search"), Side("pgstac", "", "/search")]
    files = {}
    for side in sides:
        files[side.name] = folder / f"{side.name}.lines"
        files[side.name].write_text("".join(s.line(side.search_path) for s in row.searches))
    results = {side.name: Result(side.name, row.name) for side in sides}
    answers: dict[str, list] = {side.name: [] for side in sides}
    slices = max(1, round(duration / SLICE_S))
    print(f"{row.name}:", end=" ", flush=True)
    for number in range(slices):
        for side in sides if number % 2 == 0 else list(reversed(sides)):
            port = stac_search.free_port()
            side.root = f"http://127.0.0.1:{port}"
            process = (stac_search.start_ours(port, database_url) if side.name == "ours"
                       else stac_search.start_pgstac_api(pg_port, port))
            features.wait_for_workers(process.pid)
            try:
                if number == 0:
                    answers[side.name] = [ids(side.root, side.search_path, s)
                                          for s in row.searches[:SAMPLE]]
                warm_up(side, row.searches[-WARM_UP:])
                results[side.name].add(run_wrk(side.root, files[side.name], duration // slices))
            finally:
                stac_search.stop(process)
            print(f"{side.name} {number + 1}/{slices}", end=" ", flush=True)
    problems = []
    for search, mine, theirs in zip(row.searches, answers["ours"], answers["pgstac"],
                                    strict=False):
        if mine[0] != 200 or theirs[0] != 200:
            problems.append(f"HTTP {mine[0]} (ours) / {theirs[0]} (pgstac) for {search}")
        elif mine[1] != theirs[1]:
            problems.append(f"ids differ for {search}: ours {mine[1][:3]}..., "
                            f"pgstac {theirs[1][:3]}...")
        elif None not in (mine[2], theirs[2]) and mine[2] != theirs[2]:
            problems.append(f"numberMatched {mine[2]} (ours) / {theirs[2]} (pgstac) for "
                            f"{search}")
    print(" | ".join(f"{n} {r.rps:.1f} req/s" for n, r in results.items()), flush=True)
    return row, results, answers, problems


def report(args, measured: list, index_s: float, pg_load_s: float) -> str:
    lines = [
        f"# STAC search under load: ours against stac-fastapi-pgstac, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "",
        f"Command: `{' '.join(args.command_line)}`  ",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, shared: read the ratios.  ",
        f"{args.items:,} SYNTHETIC items in `{COLLECTION}` (bench/stac_search.py, seed {SEED}). "
        f"Ours: the {args.ours_on} index publishing writes ({index_s:.1f} s to index), /stac "
        "under "
        "gunicorn (2 workers, gthread, 4 threads). pgstac: "
        f"{', '.join(stac_search.PG_PINS)}, PostgreSQL 15 + PostGIS (shared_buffers 512 MB, "
        f"fsync off), `eo:cloud_cover` a BTREE-indexed queryable, pypgstac load {pg_load_s:.1f} s,"
        " uvicorn 2 workers.  ",
        f"Load: wrk, {CONNECTIONS} connections, {WRK_THREADS} threads, {args.duration} s per "
        f"server and row in {SLICE_S} s turns, a fresh server per turn, 127.0.0.1; every request "
        f"with its own random values ({LINES_PER_ROW:,} per row, the same sequence for both). "
        f"Sample check: the first {SAMPLE} requests of each row to both, ids of each page in "
        "order (and numberMatched where both give it).", "",
        "| row | ours req/s | ours p50 / p99 ms | pgstac req/s | pgstac p50 / p99 ms | "
        "ours / pgstac | errors ours / pgstac | sample disagreements | target 10x | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    details = []
    for row, results, _, problems in measured:
        ours, theirs = results["ours"], results["pgstac"]
        ratio = ours.rps / theirs.rps if theirs.rps else float("inf")
        errors = [r.figures["non2xx"] + r.socket_errors for r in (ours, theirs)]
        met = ratio >= 10 and sum(errors) == 0 and not problems
        lines.append(
            f"| {row.name} | {ours.rps:.1f} | {ms(ours.figures['p50_us'])} / "
            f"{ms(ours.figures['p99_us'])} | {theirs.rps:.1f} | {ms(theirs.figures['p50_us'])} / "
            f"{ms(theirs.figures['p99_us'])} | {ratio:.2f}x | {errors[0]} / {errors[1]} | "
            f"{len(problems)} | {'yes' if met else '**no**'} | {row.note} |")
        details += [f"- {row.name}: {p}"[:400] for p in problems[:3]]
    if details:
        lines += ["", "## Disagreements on the samples", "", *details]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stac_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=30, help="seconds per server and row")
    parser.add_argument("--rows", metavar="TEXT", help="only the rows whose name contains TEXT")
    parser.add_argument("--ours-on", choices=("sqlite", "pgstac"), default="sqlite",
                        help="our index: the embedded SQLite file, or pgstac in the same "
                             "PostgreSQL (TAZA_DATABASE_URL)")
    args = parser.parse_args(argv)
    args.command_line = ["python", "-m", "bench", "stac_load", *(argv or sys.argv[1:])]
    stop_on_sigterm()
    return run(args)
