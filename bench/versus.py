"""OGC API Features under load: ours against tipg and pygeoapi's PostgreSQL provider on PostGIS
(the same rows, the same run), and stock pygeoapi on the GeoPackage where it applies the query.

    python -m bench versus [--count 1000000] [--duration 30] [--rows TEXT] [--no-stock]

1. Generates and publishes the synthetic parcels (bench/parcels.py, `taza publish`, timed).
2. Loads the published rows once into a private PostgreSQL 15 + PostGIS 3.3
   (catalog/cluster/postgres.py, bench/.work/pg) with ogr2ogr, keeping the feature ids; then
   indexes as a DBA would for these queries (GiST on the geometry from ogr2ogr, a B-tree on every
   filtered or sorted column, one on (land_use, area_m2), the most common pair) and VACUUM
   ANALYZE. A stamp records what was loaded, so later runs skip this.
3. Peers in their own venvs under bench/.work: tipg (uvicorn[standard], 2 workers) and pygeoapi
   0.21.0's PostgreSQL provider (gunicorn, the same settings as ours); stock pygeoapi 0.21.0's
   SQLiteGPKG provider (bench/features.py) only on the rows it applies (bbox, offsets).
4. Every row is a list of requests drawn in Python, each with its own random values (bbox at
   town, district and region sizes; attribute filters over several columns and thresholds;
   filter + sortby on random keys and directions; random deep offsets; S_INTERSECTS with random
   polygons; distinct vector tiles of zooms 11 to 14, ours with its tile cache off), rendered
   for each server's URLs and sent by wrk (bench/wrk_lines.lua, 16 connections, 2 threads) in
   alternating 10 s turns, a fresh server per turn.
5. Before the load, a sample of each row's requests goes to every server: HTTP status,
   numberMatched and the parcel ids of the page must agree with ours; disagreements are counted
   as errors of the row and shown. Tiles: the status, and each server's features per tile
   (reported, not compared: servers clip, buffer and thin tiles in their own ways).
6. Writes bench/results/features-versus-<date>.md: req/s, p50/p99, errors, ratios, targets
   (at least 2x tipg, p99 no higher than tipg's p50), peers' versions and settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import mapbox_vector_tile
import psycopg

from bench import features
from bench.features import (
    COLLECTION,
    CONNECTIONS,
    GUNICORN,
    LUA_REPORT,
    ROOT,
    SLICE_S,
    TOWNS,
    WORK,
    WRK_THREADS,
    Result,
    free_port,
)
from catalog.cluster.postgres import PrivatePostgres

RESULTS = ROOT / "bench" / "results"
LUA_LINES = ROOT / "bench" / "wrk_lines.lua"
PG_FOLDER = WORK / "pg"
PG_DATABASE = "parcels"
PG_TABLE = "parcels"
TIPG_VENV = WORK / "tipg-venv"
TIPG_PINS = ("tipg==1.6.1", "uvicorn[standard]==0.55.0")
PGPG_VENV = WORK / "pgpg-venv"  # pygeoapi with its PostgreSQL provider
PGPG_PINS = ("pygeoapi==0.21.0", "gunicorn==23.0.0", "psycopg2-binary==2.9.13",
             "SQLAlchemy==2.1.9", "GeoAlchemy2==0.20.0")
SEED = 20261203
LINES_PER_ROW = 40_000  # more than a server answers in a turn: no request repeats in a turn
SAMPLE = 12  # requests per row checked on every server
# Requests of the row (from the end of its list, which the load does not reach) sent before
# each turn, 4 at a time so every worker gets some: a fresh server's first queries of a kind
# read what later ones reuse (our columns and R-tree boxes, PostgreSQL's buffers and pools).
WARM_UP = 16
# Ours as in bench.features, with the tile cache off: every tile is rendered, as tipg's are.
OURS_SETTINGS = {**features.OURS_SETTINGS, "TAZA_TILE_CACHE_MAX_BYTES": "0"}
OURS_TILES = f"/ogc/collections/{COLLECTION}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"
# Filtered and sorted columns, with the ranges thresholds are drawn from.
NUMBERS = {"area_m2": (1000.0, 40000.0), "mean_slope_deg": (0.0, 30.0)}
SORT_KEYS = ("area_m2", "mean_slope_deg", "parcel_id")
COUNTRY = (69.3, 39.2, 80.2, 43.2)
BOX_SIZES = {"town": (0.06, 0.045), "district": (0.4, 0.3), "region": (1.6, 1.2)}


# --- the requests of each row -------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """How one server names things: its items path and geometry property."""

    name: str
    items: str  # path of the collection's items
    geometry: str  # the geometry property as CQL2 names it
    intersects: str = "S_INTERSECTS"  # pygeoapi 0.21 reads GET filters as ECQL: INTERSECTS
    tiles: str = ""  # path of a WebMercatorQuad vector tile, {z} {x} {y}; "" when it has none


@dataclass
class Row:
    name: str
    # query parameters; in values, "{GEOM}" is the geometry's name, "{INTERSECTS}" the predicate
    requests: list[dict[str, str]]
    stock: bool = False  # stock pygeoapi applies these parameters (it ignores filters, sortby)
    note: str = ""
    tiles: bool = False  # requests are vector tiles ({TILE: "z/x/y"}), not items queries


def rows(count: int, values: dict[str, list[str]], rng: random.Random,
         extent: tuple[float, float, float, float] = COUNTRY) -> list[Row]:
    """The rows, LINES_PER_ROW requests each, every one with its own random values."""
    def many(draw: Callable[[], dict[str, str]]) -> list[dict[str, str]]:
        return [draw() for _ in range(LINES_PER_ROW)]

    return [
        *(Row(f"bbox, {size} size", many(lambda s=size: {"limit": "100", "bbox": _box(rng, s)}),
              stock=True, note=f"{w:g} x {h:g} degree boxes at a random place "
              + ("near a town" if size == "town" else "in the country"))
          for size, (w, h) in BOX_SIZES.items()),
        Row("CQL2 attribute filter", many(lambda: {"limit": "100",
                                                   "filter": _filter(rng, values)}),
            note="two or three columns, random values and thresholds"),
        Row("CQL2 filter + sortby", many(lambda: {
            "limit": "100", "filter": _filter(rng, values),
            "sortby": rng.choice(("", "-")) + rng.choice(SORT_KEYS)}),
            note=f"random filter, sort key among {', '.join(SORT_KEYS)}, random direction"),
        Row("deep offset", many(lambda: {"limit": "100",
                                         "offset": str(rng.randrange(count // 2, count - 100))}),
            stock=True, note="random offset in the second half of the layer"),
        Row("S_INTERSECTS random polygon", many(lambda: {
            "limit": "100", "filter": f"{{INTERSECTS}}({{GEOM}},{_polygon(rng)})"}),
            note="a random quadrilateral of about 10 km near a town"),
        Row("vector tiles, zoom 11 to 14", many(_tiles(rng, extent)), tiles=True,
            note="distinct WebMercatorQuad tiles, 70 % near towns; servers without vector "
            "tiles sit out; the count column is features per sample tile; tiles are drawn "
            "inside the layer's extent (ours answers 404 outside its tileMatrixSetLimits, "
            "as OGC API - Tiles says, tipg an empty 200)"),
    ]


TILE = "tile"  # the key of a tile request's "z/x/y"
TILE_ZOOMS = (11, 12, 13, 14)  # ours serves vector tiles to zoom 14; clients overzoom


def _tiles(rng: random.Random, extent: tuple[float, float, float, float] = COUNTRY
           ) -> Callable[[], dict[str, str]]:
    """Draws of distinct tiles around places inside `extent` (the layer's): no tile repeats
    within the row, so no cache of any server (ours is turned off besides) answers one twice."""
    seen: set[tuple[int, int, int]] = set()
    west, south, east, north = extent

    def draw() -> dict[str, str]:
        while True:
            z = rng.choice(TILE_ZOOMS)
            if rng.random() < 0.7:
                lon, lat = rng.choice(list(TOWNS.values()))
                lon, lat = lon + rng.uniform(-0.25, 0.25), lat + rng.uniform(-0.2, 0.2)
            else:
                lon, lat = rng.uniform(west, east), rng.uniform(south, north)
            if not (west <= lon <= east and south <= lat <= north):
                continue
            n = 2**z
            x = int((lon + 180) / 360 * n)
            y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
            if (z, x, y) not in seen:
                seen.add((z, x, y))
                return {TILE: f"{z}/{x}/{y}"}
    return draw


def _box(rng: random.Random, size: str) -> str:
    width, height = BOX_SIZES[size]
    if size == "town":
        x, y = rng.choice(list(TOWNS.values()))
        x, y = x + rng.uniform(-0.02, 0.02), y + rng.uniform(-0.02, 0.02)
    else:
        west, south, east, north = COUNTRY
        x = rng.uniform(west + width / 2, east - width / 2)
        y = rng.uniform(south + height / 2, north - height / 2)
    return f"{x - width / 2:.5f},{y - height / 2:.5f},{x + width / 2:.5f},{y + height / 2:.5f}"


def _filter(rng: random.Random, values: dict[str, list[str]]) -> str:
    """Two or three random conditions over text and number columns, joined by AND."""
    def text(column: str) -> str:
        return f"{column}='{rng.choice(values[column])}'"

    def number(column: str) -> str:
        low, high = NUMBERS[column]
        return f"{column}{rng.choice(('<', '>'))}{rng.uniform(low, high):.2f}"

    shapes = [
        lambda: [text("land_use"), number("area_m2")],
        lambda: [text("land_use"), number("mean_slope_deg")],
        lambda: [text("region"), number("area_m2")],
        lambda: [text("region"), text("land_use"), number("mean_slope_deg")],
        lambda: [number("area_m2"), number("mean_slope_deg")],
    ]
    return " AND ".join(rng.choice(shapes)())


def _polygon(rng: random.Random) -> str:
    x, y = rng.choice(list(TOWNS.values()))
    x, y = x + rng.uniform(-0.1, 0.1), y + rng.uniform(-0.1, 0.1)
    corners = [(x - rng.uniform(0.02, 0.07), y - rng.uniform(0.02, 0.05)),
               (x + rng.uniform(0.02, 0.07), y - rng.uniform(0.02, 0.05)),
               (x + rng.uniform(0.02, 0.07), y + rng.uniform(0.02, 0.05)),
               (x - rng.uniform(0.02, 0.07), y + rng.uniform(0.02, 0.05))]
    ring = ",".join(f"{cx:.5f} {cy:.5f}" for cx, cy in [*corners, corners[0]])
    return f"POLYGON(({ring}))"


def render(peer: Peer, params: dict[str, str]) -> str:
    """The request path for one server."""
    if TILE in params:
        z, x, y = params[TILE].split("/")
        return peer.tiles.format(z=z, x=x, y=y)
    filled = {k: v.replace("{GEOM}", peer.geometry).replace("{INTERSECTS}", peer.intersects)
              for k, v in params.items() if v != ""}
    return peer.items + "?" + urllib.parse.urlencode(filled, quote_via=urllib.parse.quote)


def distinct_values(gpkg: Path, table: str) -> dict[str, list[str]]:
    conn = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        return {column: [row[0] for row in conn.execute(
                    f'SELECT DISTINCT "{column}" FROM "{table}" ORDER BY 1')]  # noqa: S608 - fixed names
                for column in ("land_use", "region")}
    finally:
        conn.close()


def layer_extent(gpkg: Path, table: str) -> tuple[float, float, float, float]:
    """The layer's bounds as its GeoPackage records them (west, south, east, north)."""
    conn = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents "
                            "WHERE table_name = ?", (table,)).fetchone()
    finally:
        conn.close()


def geometry_column(gpkg: Path, table: str) -> str:
    conn = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                            (table,)).fetchone()[0]
    finally:
        conn.close()


# --- PostGIS and the peers ----------------------------------------------------------------------


def load_postgis(gpkg: Path, table: str) -> tuple[PrivatePostgres, str, str]:
    """Start the private cluster and load the published rows once; (cluster, URL, notes)."""
    cluster = PrivatePostgres(PG_FOLDER, free_port())
    if (PG_FOLDER / "cluster.json").exists():
        cluster = PrivatePostgres(PG_FOLDER, PrivatePostgres.existing(PG_FOLDER).port)
    cluster.start(durable=False)
    url = cluster.create_database(PG_DATABASE, extensions=("postgis",))
    stamp = PG_FOLDER / "loaded"
    source = f"{gpkg}:{gpkg.stat().st_size}:{gpkg.stat().st_mtime_ns}"
    if stamp.exists() and stamp.read_text() == source:
        return cluster, url, "(loaded by an earlier run)"
    started = time.monotonic()
    env = dict(os.environ, PGPASSWORD=cluster.password, PG_USE_COPY="YES")
    subprocess.run(
        ["ogr2ogr", "-overwrite", "-f", "PostgreSQL",
         f"PG:host=127.0.0.1 port={cluster.port} dbname={PG_DATABASE} user=taza",
         str(gpkg), table, "-nln", PG_TABLE, "-preserve_fid", "-lco", "GEOMETRY_NAME=geom",
         "-lco", "FID=id", "-lco", "SPATIAL_INDEX=GIST", "-nlt", "PROMOTE_TO_MULTI"],
        check=True, env=env, capture_output=True, timeout=3600)
    statements = [
        "CREATE INDEX ON parcels (land_use)", "CREATE INDEX ON parcels (region)",
        "CREATE INDEX ON parcels (area_m2)", "CREATE INDEX ON parcels (mean_slope_deg)",
        "CREATE UNIQUE INDEX ON parcels (parcel_id)",
        "CREATE INDEX ON parcels (land_use, area_m2)",
        "VACUUM ANALYZE parcels",
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    stamp.write_text(source)
    notes = (f"ogr2ogr + indexes + VACUUM ANALYZE in {time.monotonic() - started:.0f} s: "
             + "; ".join(statements))
    return cluster, url, notes


def ensure_venv(folder: Path, pins: tuple[str, ...], python: str) -> Path:
    stamp = folder / ".pins"
    if not (stamp.exists() and stamp.read_text() == "\n".join(pins)):
        print(f"creating {folder} with {', '.join(pins)}", flush=True)
        subprocess.run([python, "-m", "venv", "--clear", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q",
                        "--disable-pip-version-check", *pins], check=True)
        stamp.write_text("\n".join(pins))
    return folder / "bin"


def pgpg_config(cluster: PrivatePostgres, port: int, geometry: str) -> dict[str, str]:
    """pygeoapi 0.21.0 with its PostgreSQL provider on the loaded table; returns its env."""
    provider = {"type": "feature", "name": "PostgreSQL", "id_field": "id", "table": PG_TABLE,
                "geom_field": geometry,
                "data": {"host": "127.0.0.1", "port": cluster.port, "dbname": PG_DATABASE,
                         "user": "taza", "password": cluster.password,
                         "search_path": ["public"]}}
    return features.stock_config(Path("/dev/null"), PG_TABLE, port, WORK / "pgpg", PGPG_VENV,
                                 PG_TABLE, provider)


@dataclass
class Service:
    """How to start one server for a turn."""

    peer: Peer
    command: list[str]
    env: dict[str, str]
    root: str  # URL of the API root, without the path of `items`
    ready: str  # a path that answers 200 once the server serves the layer
    settings: str = ""
    workers: int = 2  # processes to wait for before the load
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, params: dict[str, str]) -> str:
        return self.root + render(self.peer, params)


def services(args, figures, cluster: PrivatePostgres, url: str,
             geometry: str) -> list[Service]:
    ours_port, tipg_port, pgpg_port, stock_port = (free_port() for _ in range(4))
    home = WORK / "home"
    result = [Service(
        Peer("ours", f"/ogc/collections/{COLLECTION}/items", geometry, tiles=OURS_TILES),
        [sys.executable, "-m", "catalog.cli", "serve", "--workers", "2", "--port",
         str(ours_port)], dict(os.environ, TAZA_HOME=str(home), **OURS_SETTINGS),
        f"http://127.0.0.1:{ours_port}",
        f"/ogc/collections/{COLLECTION}",
        "`taza serve --workers 2` (gunicorn gthread, 4 threads each), the published GeoPackage")]
    result += [serving_variant(variant, geometry, home) for variant in args.serve]
    if args.ours_postgis:
        result.append(ours_on_postgis(cluster, geometry, home, figures.gpkg))
    tipg_bin = ensure_venv(TIPG_VENV, TIPG_PINS, sys.executable)
    result.append(Service(
        Peer("tipg", f"/collections/public.{PG_TABLE}/items", "geom",
             tiles=f"/collections/public.{PG_TABLE}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"),
        [str(tipg_bin / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port",
         str(tipg_port), "--workers", "2", "--log-level", "warning"],
        dict(os.environ, DATABASE_URL=url, TIPG_DB_SCHEMAS='["public"]'),
        f"http://127.0.0.1:{tipg_port}", f"/collections/public.{PG_TABLE}",
        f"{', '.join(TIPG_PINS)}, `uvicorn tipg.main:app --workers 2`, default pool"))
    ensure_venv(PGPG_VENV, PGPG_PINS, "/usr/bin/python3")
    result.append(Service(
        Peer("pygeoapi-pg", f"/collections/{PG_TABLE}/items", "geom", "INTERSECTS"),
        [str(PGPG_VENV / "bin" / "gunicorn"), *GUNICORN, "--bind", f"127.0.0.1:{pgpg_port}",
         "pygeoapi.flask_app:APP"], pgpg_config(cluster, pgpg_port, "geom"),
        f"http://127.0.0.1:{pgpg_port}", f"/collections/{PG_TABLE}",
        f"{', '.join(PGPG_PINS)}, PostgreSQL provider, gunicorn as ours"))
    if args.stock:
        features.ensure_stock_venv()
        env = features.stock_config(features.stock_copy(figures.gpkg), figures.table,
                                    stock_port, WORK / "stock")
        result.append(Service(
            Peer("stock", f"/collections/{COLLECTION}/items", geometry),
            [str(features.STOCK_VENV / "bin" / "gunicorn"), *GUNICORN, "--bind",
             f"127.0.0.1:{stock_port}", "pygeoapi.flask_app:APP"], env,
            f"http://127.0.0.1:{stock_port}", f"/collections/{COLLECTION}",
            f"{', '.join(features.STOCK_PINS)}, SQLiteGPKG provider on a copy of the GeoPackage"))
    return result


@dataclass(frozen=True)
class Variant:
    """Ours under other gunicorn settings (`--serve NAME:WORKERS:GUNICORN ARGS`)."""

    name: str
    workers: int
    gunicorn: str  # passed as GUNICORN_CMD_ARGS: over config/gunicorn.conf.py, under the CLI


def parse_variant(text: str) -> Variant:
    name, workers, gunicorn = (text.split(":", 2) + ["", ""])[:3]
    if not name.isidentifier() or not workers.isdigit() or int(workers) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME:WORKERS:GUNICORN ARGS, got {text!r}")
    return Variant(name, int(workers), gunicorn)


def serving_variant(variant: Variant, geometry: str, home: Path) -> Service:
    port = free_port()
    return Service(
        Peer(f"ours-{variant.name}", f"/ogc/collections/{COLLECTION}/items", geometry,
             tiles=OURS_TILES),
        [sys.executable, "-m", "catalog.cli", "serve", "--workers", str(variant.workers),
         "--port", str(port)],
        dict(os.environ, TAZA_HOME=str(home), GUNICORN_CMD_ARGS=variant.gunicorn,
             **OURS_SETTINGS),
        f"http://127.0.0.1:{port}", f"/ogc/collections/{COLLECTION}",
        f"`taza serve --workers {variant.workers}` with GUNICORN_CMD_ARGS="
        f"`{variant.gunicorn}` (over config/gunicorn.conf.py)", workers=variant.workers)


OURS_DATABASE = "taza_ours"


def ours_on_postgis(cluster: PrivatePostgres, geometry: str, home: Path,
                    gpkg: Path) -> Service:
    """Ours on the PostgreSQL profile: the published home moved into a database of its own in
    the peers' PostgreSQL with `taza migrate` (once per published GeoPackage, like the peers'
    load), served with TAZA_DATABASE_URL: features from PostGIS through our FeatureStore."""
    stamp = PG_FOLDER / "ours-migrated"
    source = f"{gpkg}:{gpkg.stat().st_size}:{gpkg.stat().st_mtime_ns}"
    if not (stamp.exists() and stamp.read_text() == source):
        cluster.drop_database(OURS_DATABASE)
    url = cluster.create_database(OURS_DATABASE)
    if not (stamp.exists() and stamp.read_text() == source):
        print("ours-postgis: `taza migrate` of the published home ...", flush=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "catalog.cli", "migrate", "--to", url],
                       env=dict(os.environ, TAZA_HOME=str(home)), cwd=ROOT, check=True)
        print(f"migrated in {time.monotonic() - started:.0f} s", flush=True)
        stamp.write_text(source)
    port = free_port()
    return Service(
        Peer("ours-postgis", f"/ogc/collections/{COLLECTION}/items", geometry,
             tiles=OURS_TILES),
        [sys.executable, "-m", "catalog.cli", "serve", "--workers", "2", "--port", str(port)],
        dict(os.environ, TAZA_HOME=str(home), TAZA_DATABASE_URL=url,
             **OURS_SETTINGS),
        f"http://127.0.0.1:{port}", f"/ogc/collections/{COLLECTION}",
        "`taza serve --workers 2` with TAZA_DATABASE_URL (the PostgreSQL profile): the same "
        "rows in PostGIS, in the peers' PostgreSQL, loaded by `taza migrate`")


def start(service: Service, log: Path) -> None:
    handle = log.open("a")
    service.process = subprocess.Popen(service.command, env=service.env, cwd=ROOT, stdout=handle,
                                       stderr=handle, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise SystemExit(f"{service.peer.name} exited; see {log}")
        try:
            with urllib.request.urlopen(service.root + service.ready, timeout=5) as answer:
                if answer.status == 200:
                    features.wait_for_workers(service.process.pid, service.workers)
                    return
        except OSError:
            time.sleep(0.5)
    stop(service)
    raise SystemExit(f"{service.peer.name} did not answer within 120 s; see {log}")


def stop(service: Service) -> None:
    if service.process is not None:
        features.stop(features.Server(service.peer.name, service.root, service.process, Path()),
                      kill=True)
        service.process = None


# --- checks and load ----------------------------------------------------------------------------


def warm_up(urls: list[str], fetch: Callable | None = None) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fetch or answer, urls))


def answer(url: str, sort_key: str | None = None
           ) -> tuple[int, int | None, list[tuple[str, object]]]:
    """(HTTP status, numberMatched, (parcel id, value of the sort key) of each feature of the
    page in order; the value is None without a sort key)."""
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            body = json.loads(response.read())
            return (response.status, body.get("numberMatched"),
                    [(f["properties"]["parcel_id"],
                      f["properties"].get(sort_key) if sort_key else None)
                     for f in body.get("features", [])])
    except urllib.error.HTTPError as err:
        return err.code, None, []


def answer_tile(url: str, _sort_key: str | None = None
                ) -> tuple[int, int | None, list[tuple[str, object]]]:
    """(HTTP status, features in the vector tile, []), as `answer` for items."""
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            body = response.read()
            layers = mapbox_vector_tile.decode(body) if body else {}
            return response.status, sum(len(layer["features"]) for layer in layers.values()), []
    except urllib.error.HTTPError as err:
        return err.code, None, []


def sort_key_of(params: dict) -> str | None:
    """The property a request sorts by (`sortby=-area_m2` -> area_m2), or None."""
    return params.get("sortby", "").lstrip("+-") or None


def same_but_ties(page: list[tuple[str, object]], mine: list[tuple[str, object]]) -> bool:
    """Whether two pages sorted by one key differ only in the order of features with equal
    values of the key: the same sequence of values, and the same ids under each value except
    the last (a run of equal values may go on past the end of the page, and which of its
    features a page ends with is then free). The sortby of OGC API Features leaves the order
    of ties open; ours breaks them by the feature id, the peers by the plan of the moment."""
    if [value for _, value in page] != [value for _, value in mine]:
        return False
    if not mine or mine[0][1] is None:
        return False
    last = mine[-1][1]
    return all({i for i, v in page if v == value} == {i for i, v in mine if v == value}
               for value in {v for _, v in mine} if value != last)


def check(row: Row, reference: dict[str, dict], peer: Service) -> tuple[list[str], int]:
    """Problems with the peer's answers to the row's sample, against ours, and how many of its
    pages differed from ours only in the order of ties of the sort key (not a problem)."""
    problems, tie_orders = [], 0
    for number, params in enumerate(row.requests[:SAMPLE]):
        status, matched, page = answer(peer.url(params), sort_key_of(params))
        mine = reference[str(number)]
        if status != 200:
            problems.append(f"HTTP {status} for {render(peer.peer, params)}")
        elif matched is not None and matched != mine["matched"]:
            problems.append(f"numberMatched {matched} (ours {mine['matched']}) for "
                            f"{render(peer.peer, params)}")
        elif page != mine["page"]:
            if same_but_ties(page, mine["page"]):
                tie_orders += 1
                continue
            same = len({i for i, _ in page} & {i for i, _ in mine["page"]})
            problems.append(f"page ids differ ({same} of {len(mine['page'])} shared) for "
                            f"{render(peer.peer, params)}")
    return problems, tie_orders


def tile_sample(row: Row, service: Service) -> tuple[list[str], list[int]]:
    """A server's answers to the row's sample tiles: problems (not 200 or 204) and the features
    of each tile. Feature counts are reported, not compared: servers clip, buffer and thin
    tiles in their own ways (ours keeps at most catalog.features.mvt.FEATURE_CAP)."""
    problems, counts = [], []
    for params in row.requests[:SAMPLE]:
        status, count, _ = answer_tile(service.url(params))
        if status not in (200, 204):
            problems.append(f"HTTP {status} for {render(service.peer, params)}")
        counts.append(count or 0)
    return problems, counts


def run_wrk(root: str, lines: Path, duration: int) -> dict:
    """wrk sending the requests of `lines` (bench/wrk_lines.lua) to the server at `root`."""
    script = lines.with_suffix(".lua")
    script.write_text(LUA_LINES.read_text() + "\n" + LUA_REPORT.read_text())
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout",
               "30s", "-s", str(script), root]
    env = dict(os.environ, WRK_LINES=str(lines), WRK_THREADS=str(WRK_THREADS))
    out = subprocess.run(command, env=env, capture_output=True, text=True,
                         timeout=duration + 120, check=True)
    parsed = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    return {key: value for line in parsed for key, value in line.items()}


@dataclass
class Measured:
    row: Row
    results: dict[str, Result]
    problems: dict[str, list[str]]
    matched: list[int]  # ours, on the sample
    # Per peer: sample pages that differed from ours only in the order of ties of the sort key.
    tie_orders: dict[str, int] = field(default_factory=dict)
    # Per server, of a tiles row: the features of each sample tile.
    tile_features: dict[str, list[int]] = field(default_factory=dict)


def measure(row: Row, servers: list[Service], duration: int, logs: Path) -> Measured:
    folder = WORK / "lines"
    folder.mkdir(parents=True, exist_ok=True)
    taking_part = [s for s in servers if (row.stock or s.peer.name != "stock")
                   and (s.peer.tiles or not row.tiles)]
    fetch = answer_tile if row.tiles else answer
    files = {}
    for service in taking_part:
        files[service.peer.name] = folder / f"{service.peer.name}.lines"
        files[service.peer.name].write_text("".join(
            f"GET\t{render(service.peer, params)}\n" for params in row.requests))
    results = {s.peer.name: Result(s.peer.name, row.name) for s in taking_part}
    problems: dict[str, list[str]] = {s.peer.name: [] for s in taking_part}
    tie_orders: dict[str, int] = {}
    tile_features: dict[str, list[int]] = {}
    reference: dict[str, dict] = {}
    slices = max(1, round(duration / SLICE_S))
    print(f"{row.name}:", end=" ", flush=True)
    for number in range(slices):
        order = taking_part if number % 2 == 0 else list(reversed(taking_part))
        for service in order:
            start(service, logs / f"{service.peer.name}.log")
            try:
                name = service.peer.name
                if number == 0 and row.tiles:  # tiles: status and features, per server
                    problems[name], tile_features[name] = tile_sample(row, service)
                elif number == 0 and name == "ours":  # ours runs first: the reference
                    for i, params in enumerate(row.requests[:SAMPLE]):
                        status, matched, page = answer(service.url(params),
                                                       sort_key_of(params))
                        if status != 200:
                            problems[name].append(f"HTTP {status} for "
                                                  f"{render(service.peer, params)}")
                        reference[str(i)] = {"matched": matched, "page": page}
                elif number == 0:
                    problems[name], tie_orders[name] = check(row, reference, service)
                warm_up([service.url(params) for params in row.requests[-WARM_UP:]], fetch)
                results[name].add(run_wrk(service.root, files[name], duration // slices))
            finally:
                stop(service)
            print(f"{service.peer.name} {number + 1}/{slices}", end=" ", flush=True)
    print(" | ".join(f"{n} {r.rps:.1f} req/s" for n, r in results.items()), flush=True)
    matched = [r["matched"] for r in reference.values() if r["matched"] is not None]
    return Measured(row, results, problems, tile_features.get("ours", matched), tie_orders,
                    tile_features)


# --- report -------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Installed versions of the peers' main packages, from their venvs."""
    found = {}
    for venv, names in ((TIPG_VENV, ("tipg", "uvicorn", "asyncpg")),
                        (PGPG_VENV, ("pygeoapi", "SQLAlchemy", "psycopg2-binary", "pygeofilter"))):
        if not (venv / "bin" / "pip").exists():
            continue
        listed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=json",
                                 "--disable-pip-version-check"], capture_output=True, text=True)
        for package in json.loads(listed.stdout or "[]"):
            if package["name"].lower() in {n.lower() for n in names}:
                found[package["name"]] = package["version"]
    with psycopg.connect(PrivatePostgres.existing(PG_FOLDER).url(PG_DATABASE)) as conn:
        found["PostgreSQL"] = conn.execute("SHOW server_version").fetchone()[0]
        found["PostGIS"] = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
    return found


def ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.1f}"


def report(args, figures, measured: list[Measured], servers: list[Service],
           load_notes: str, peer_versions: dict[str, str]) -> str:
    lines = [
        f"# Features under load: ours against tipg and pygeoapi on PostGIS, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "",
        f"Command: `{' '.join(args.command_line)}`  ",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, shared: read the ratios.  ",
        f"Layer: {figures.feature_count:,} SYNTHETIC parcels (`{COLLECTION}`, bench/parcels.py);"
        " ours serves the published GeoPackage, tipg and pygeoapi-pg the same rows in PostGIS.  ",
        f"PostGIS load: {load_notes}.  ",
        f"Load: wrk, {CONNECTIONS} connections, {WRK_THREADS} threads, {args.duration} s per "
        f"server and row in {SLICE_S} s turns (a fresh server per turn), 127.0.0.1. Every request"
        f" of a row carries its own random values ({LINES_PER_ROW:,} drawn per row, seed {SEED},"
        " the same sequence for every server). Errors: non-2xx and socket errors under load, "
        f"plus disagreements with ours on a sample of {SAMPLE} requests per row (status, "
        "numberMatched, the ids of the page in order).", "",
        "Servers:", "",
        *(f"- {s.peer.name}: {s.settings}" for s in servers),
        f"- versions: {', '.join(f'{k} {v}' for k, v in sorted(peer_versions.items()))}", "",
        f"Publish (`taza publish`): {figures.seconds:.1f} s, peak RSS "
        f"{figures.peak_rss_mb:.0f} MB.", "",
        "| row | server | req/s | p50 ms | p99 ms | errors under load | sample disagreements |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        for name, result in m.results.items():
            f = result.figures
            errors = f["non2xx"] + result.socket_errors
            lines.append(f"| {m.row.name} | {name} | {result.rps:.1f} | {ms(f['p50_us'])} | "
                         f"{ms(f['p99_us'])} | {errors} | {len(m.problems[name])} |")
    lines += ["", "## Ratios and targets (issue 14: at least 2x tipg, p99 no higher than "
              "tipg's p50, zero errors)", "",
              "| row | ours / tipg | ours / pygeoapi-pg | ours / stock | ours p99 vs tipg p50 "
              "| target met | numberMatched of the sample (ours) | note |",
              "|---|---:|---:|---:|---|---|---|---|"]
    for m in measured:
        ours = m.results["ours"]
        tipg = m.results["tipg"]
        latency_ok = ours.figures["p99_us"] <= tipg.figures["p50_us"]
        # Our errors under load and every disagreement on the samples; a peer's own timeouts
        # (stock pygeoapi at 1 req/s) are in its row of the table, not against our target.
        errors = ours.figures["non2xx"] + ours.socket_errors + \
            sum(len(p) for p in m.problems.values())
        met = tipg.rps and ours.rps >= 2 * tipg.rps and latency_ok and errors == 0
        counts = f"{min(m.matched):,} to {max(m.matched):,}" if m.matched else "-"
        lines.append(f"| {m.row.name} | {_ratio(m, 'tipg')} | {_ratio(m, 'pygeoapi-pg')} | "
                     f"{_ratio(m, 'stock')} | {ms(ours.figures['p99_us'])} vs "
                     f"{ms(tipg.figures['p50_us'])} ms | {'yes' if met else '**no**'} | "
                     f"{counts} | {m.row.note} |")
    lines += serving_table(measured)
    problems = [(m.row.name, name, p) for m in measured for name, ps in m.problems.items()
                for p in ps]
    if problems:
        lines += ["", "## Disagreements on the samples (first 20)", ""]
        lines += [f"- {row} / {name}: {p}" for row, name, p in problems[:20]]
    lines += tile_features_table(measured)
    ties = [(m.row.name, name, count) for m in measured for name, count in m.tie_orders.items()
            if count]
    if ties:
        lines += ["", "## Pages that differ from ours only in the order of ties (not errors)",
                  "", "The same ids under the same sequence of sort-key values; OGC API "
                  "Features leaves the order of equal keys open (ours breaks ties by the "
                  "feature id, so pages are stable).", ""]
        lines += [f"- {row} / {name}: {count} of {SAMPLE}" for row, name, count in ties]
    return "\n".join(lines) + "\n"


def tile_features_table(measured: list[Measured]) -> list[str]:
    """What each server put in the sample tiles of the tiles rows: how much work a tile was."""
    rows = [(m.row.name, name, counts) for m in measured
            for name, counts in m.tile_features.items()]
    if not rows:
        return []
    return ["", f"## Features in the {SAMPLE} sample tiles (decoded MVT, every layer)", "",
            "| row | server | features per tile, in sample order | total |", "|---|---|---|---:|",
            *(f"| {row} | {name} | {', '.join(f'{c:,}' for c in counts)} | {sum(counts):,} |"
              for row, name, counts in rows)]


def serving_table(measured: list[Measured]) -> list[str]:
    """Ours under each gunicorn setting (`--serve`) and on PostGIS (`--ours-postgis`) beside
    tipg, row by row."""
    if not any(name.startswith("ours-") for m in measured for name in m.results):
        return []
    lines = ["", "## Ours under other serving settings or on PostGIS (same turns as tipg)", "",
             "| row | ours as | req/s | p50 ms | p99 ms | p99 / p50 | ours / tipg "
             "| p99 vs tipg p50 ms |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for m in measured:
        tipg = m.results["tipg"]
        for name, result in m.results.items():
            if name != "ours" and not name.startswith("ours-"):
                continue
            f = result.figures
            spread = f["p99_us"] / f["p50_us"] if f["p50_us"] else 0.0
            ratio = _over(result.rps, tipg.rps)
            lines.append(f"| {m.row.name} | {name} | {result.rps:.1f} | {ms(f['p50_us'])} | "
                         f"{ms(f['p99_us'])} | {spread:.1f} | {ratio} | "
                         f"{ms(f['p99_us'])} vs {ms(tipg.figures['p50_us'])} |")
    return lines


def ensure_peer_packages() -> None:
    """PostgreSQL + PostGIS and ogr2ogr from Debian (the peers' side), installed when missing."""
    missing = [name for name in ("postgresql-15", "postgresql-15-postgis-3", "gdal-bin")
               if not features._dpkg_installed(name)]  # noqa: SLF001 - our own helper
    if missing:
        print(f"installing Debian packages {missing} (benchmark only)", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True, env=env)


NO_ANSWER = "peer answered none"  # a peer that completed no request in the row's time


def _ratio(measured: Measured, peer: str) -> str:
    """Ours over `peer`; "-" when the peer did not run the row, NO_ANSWER when it ran and
    answered nothing (a ratio of 0.00x or infinity would misread)."""
    ours, other = measured.results["ours"], measured.results.get(peer)
    return "-" if other is None else _over(ours.rps, other.rps)


def _over(ours_rps: float, peer_rps: float) -> str:
    return f"{ours_rps / peer_rps:.2f}x" if peer_rps else NO_ANSWER


def run(args) -> int:
    features.ensure_debian_packages()
    ensure_peer_packages()
    figures = features.publish_and_report(args.count, args.reuse_publish)
    geometry = geometry_column(figures.gpkg, figures.table)
    values = distinct_values(figures.gpkg, figures.table)
    print("PostGIS: loading the published rows (once) ...", flush=True)
    cluster, url, load_notes = load_postgis(figures.gpkg, figures.table)
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        servers = services(args, figures, cluster, url, geometry)
        chosen = [r for r in rows(figures.feature_count, values, random.Random(SEED),
                                  layer_extent(figures.gpkg, figures.table))
                  if not args.rows or args.rows in r.name]
        measured = [measure(row, servers, args.duration, logs) for row in chosen]
        text = report(args, figures, measured, servers, load_notes, versions())
    finally:
        cluster.stop()
    write_result(text, "features-versus")
    return 0


def write_result(text: str, name: str) -> None:
    """Print the report and write it to bench/results/<name>-<date>.md."""
    print("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{dt.date.today():%Y-%m-%d}.md"
    out.write_text(text, encoding="utf-8")
    print(f"written to {out.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench versus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000, help="synthetic parcels")
    parser.add_argument("--duration", type=int, default=30, help="seconds per server and row")
    parser.add_argument("--rows", metavar="TEXT", help="only the rows whose name contains TEXT")
    parser.add_argument("--no-stock", dest="stock", action="store_false",
                        help="leave out stock pygeoapi on the GeoPackage")
    parser.add_argument("--serve", type=parse_variant, action="append", default=[],
                        metavar="NAME:WORKERS:GUNICORN ARGS",
                        help="also run ours as `ours-NAME` under other gunicorn settings, e.g. "
                        "'t8:2:--threads 8' or 'sync4:4:--worker-class sync' (repeatable)")
    parser.add_argument("--reuse-publish", action="store_true",
                        help="keep an earlier bench publish instead of publishing afresh")
    parser.add_argument("--ours-postgis", action="store_true",
                        help="also run ours on the PostgreSQL profile as `ours-postgis`: the "
                        "home moved with `taza migrate` into its own database of the same "
                        "PostgreSQL as the peers (issue 13: our FeatureStore on PostGIS)")
    args = parser.parse_args(argv)
    args.command_line = ["python", "-m", "bench", "versus", *(argv or [])]
    stop_on_sigterm()
    return run(args)


def stop_on_sigterm() -> None:
    """SIGTERM (and SIGINT, which shells ignore in background jobs) end the run through its
    `finally` blocks: servers and the PostgreSQL cluster are stopped, not left behind."""
    def leave(number: int, _frame) -> None:
        raise SystemExit(128 + number)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, leave)
