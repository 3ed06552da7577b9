"""STAC search: our SQLite index against stac-fastapi-pgstac on the same 100,000 items.

    .venv/bin/python -m bench.stac_search [--items 100000] [--requests 200] [--pages 20]

1. Generates deterministic SYNTHETIC items (labelled `taza:nature: synthetic`, seeded random
   boxes over Kyrgyzstan, datetimes 2015-2024, an `eo:cloud_cover` property) in one collection.
2. Ours: indexes them with `SqliteBackend.apply` (timed: the target is < 60 s for 100,000) and
   serves our STAC blueprint with gunicorn as `taza serve` does (2 workers, gthread, 4 threads).
3. pgstac: Debian PostgreSQL 15 + PostGIS (apt-get installs postgresql-15-postgis-3 when
   missing), a private cluster under bench/.work/stac-pg (initdb as the postgres user when run
   as root) on a private port and socket, pypgstac + stac-fastapi-pgstac from PyPI in
   bench/.work/pgstac-venv, `pypgstac load` of the same items, uvicorn with 2 workers.
4. Sends the same requests to both, one server after the other, from one keep-alive client on
   127.0.0.1: bbox, bbox + datetime, CQL2 property filter, sortby, and limit=100 pages followed
   through `next` links. Reports p50/p99/errors and ratios (ours / pgstac), whether both
   returned the same items, and writes bench/results/stac-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "results"
OURS_HOME = WORK / "stac-home"
PG_DIR = WORK / "stac-pg"
PG_VENV = WORK / "pgstac-venv"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PINS = ("stac-fastapi-pgstac==7.2.0", "pypgstac[psycopg]==0.10.0", "uvicorn==0.54.0")
COLLECTION = "synthetic-benchmark"
SEED = 20240501
KYRGYZSTAN = (69.3, 39.2, 80.2, 43.2)
START = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
SPAN_S = 10 * 365 * 86400


# -- synthetic items -------------------------------------------------------------------------


def synthetic_collection(count: int) -> dict:
    return {
        "type": "Collection", "stac_version": "1.1.0", "id": COLLECTION,
        "title": "Synthetic benchmark items", "license": "CC0-1.0",
        "description": f"{count} SYNTHETIC items for benchmarks: random boxes over Kyrgyzstan, "
                       "random times 2015-2024. Not data.",
        "keywords": ["synthetic", "benchmark"], "taza:nature": "synthetic",
        "taza:theme": "benchmark",
        "extent": {"spatial": {"bbox": [list(KYRGYZSTAN)]},
                   "temporal": {"interval": [[START.isoformat().replace("+00:00", "Z"),
                                              None]]}},
        "links": [],
    }


def synthetic_items(count: int) -> Iterator[dict]:
    """Deterministic items: same seed, same items, on every machine."""
    rng = random.Random(SEED)
    west, south, east, north = KYRGYZSTAN
    for number in range(count):
        width, height = rng.uniform(0.01, 0.2), rng.uniform(0.01, 0.15)
        x, y = rng.uniform(west, east - width), rng.uniform(south, north - height)
        box = [round(x, 6), round(y, 6), round(x + width, 6), round(y + height, 6)]
        moment = START + dt.timedelta(seconds=rng.randrange(SPAN_S))
        item_id = f"synthetic-{number:06d}"
        yield {
            "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [],
            "id": item_id, "collection": COLLECTION, "bbox": box,
            "geometry": {"type": "Polygon", "coordinates": [[
                [box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]],
                [box[0], box[1]]]]},
            "properties": {
                "datetime": moment.isoformat().replace("+00:00", "Z"),
                "eo:cloud_cover": round(rng.uniform(0, 100), 2),
                "title": f"Synthetic item {number}", "taza:nature": "synthetic",
            },
            "assets": {"data": {"href": f"http://127.0.0.1/synthetic/{item_id}.tif",
                                "type": "image/tiff; application=geotiff", "roles": ["data"]}},
            "links": [],
        }


# -- queries ---------------------------------------------------------------------------------


def query_boxes(count: int, size: float = 0.5) -> list[str]:
    rng = random.Random(SEED + 1)
    west, south, east, north = KYRGYZSTAN
    boxes = []
    for _ in range(count):
        x, y = rng.uniform(west, east - size), rng.uniform(south, north - size)
        boxes.append(f"{x:.4f},{y:.4f},{x + size:.4f},{y + size:.4f}")
    return boxes


def query_windows(count: int) -> list[str]:
    rng = random.Random(SEED + 2)
    windows = []
    for _ in range(count):
        start = START + dt.timedelta(days=rng.randrange(9 * 365))
        end = start + dt.timedelta(days=365)
        windows.append(f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}")
    return windows


def query_plans(count: int) -> dict[str, list[dict]]:
    """Query name -> the GET parameters of each request (the same list for both servers)."""
    boxes, windows = query_boxes(count), query_windows(count)
    base = {"collections": COLLECTION, "limit": "10"}
    rng = random.Random(SEED + 3)
    return {
        "bbox": [{**base, "bbox": b} for b in boxes],
        "bbox + datetime": [{**base, "bbox": b, "datetime": w}
                            for b, w in zip(boxes, windows, strict=True)],
        "CQL2 property filter": [
            {**base, "filter-lang": "cql2-text",
             "filter": f"\"eo:cloud_cover\" < {rng.uniform(1, 20):.2f}"} for _ in boxes],
        "CQL2 filter + bbox": [
            {**base, "bbox": b, "filter-lang": "cql2-text",
             "filter": f"\"eo:cloud_cover\" BETWEEN 10 AND {rng.uniform(30, 60):.2f}"}
            for b in boxes],
        "sortby datetime ascending + bbox": [
            {**base, "bbox": b, "sortby": "+properties.datetime"} for b in boxes],
        "sortby eo:cloud_cover + bbox": [
            {**base, "bbox": b, "sortby": "-properties.eo:cloud_cover"} for b in boxes],
    }


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Sample:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_ids: list[list[str]] = field(default_factory=list)

    def p(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_get(session: requests.Session, url: str, params: dict | None,
              sample: Sample) -> dict | None:
    started = time.perf_counter()
    try:
        response = session.get(url, params=params, timeout=60)
        body = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError) as err:
        sample.errors.append(f"{type(err).__name__}: {err}"[:200])
        return None
    sample.latencies_ms.append((time.perf_counter() - started) * 1000)
    if body is None:
        sample.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
    return body


def run_queries(base: str, plans: dict[str, list[dict]], pages: int, walks: int,
                warmup: int = 5) -> dict[str, Sample]:
    session = requests.Session()
    results: dict[str, Sample] = {}
    for name, requests_params in plans.items():
        for params in requests_params[:warmup]:
            session.get(f"{base}/search", params=params, timeout=60)
        sample = results.setdefault(name, Sample())
        for params in requests_params:
            body = timed_get(session, f"{base}/search", params, sample)
            if body is not None and len(sample.first_ids) < 20:
                sample.first_ids.append([f["id"] for f in body["features"]])
    results[f"limit=100, {pages} pages deep (next links)"] = deep_pages(session, base, pages,
                                                                         walks)
    return results


def deep_pages(session: requests.Session, base: str, pages: int, walks: int) -> Sample:
    """Follow `next` links `pages` deep, `walks` times (different datetime windows)."""
    sample = Sample()
    for window in query_windows(walks):
        url, params = f"{base}/search", {"collections": COLLECTION, "limit": "100",
                                         "datetime": window.split("/")[0] + "/.."}
        seen: list[str] = []
        for _ in range(pages):
            body = timed_get(session, url, params, sample)
            if body is None:
                break
            seen += [f["id"] for f in body["features"]]
            link = next((k for k in body.get("links", []) if k["rel"] == "next"), None)
            if link is None:
                break
            url, params = link["href"], None
        sample.first_ids.append(seen)
    return sample


# -- our server ------------------------------------------------------------------------------


def index_ours(count: int, database_url: str | None = None) -> float:
    """A bench catalog home whose STAC index holds the synthetic items; returns seconds. With
    `database_url`, the index is our pgstac backend in that database (TAZA_DATABASE_URL)."""
    from catalog.stac_index.pgstac_backend import PgstacBackend
    from catalog.stac_index.sqlite_backend import SqliteBackend

    shutil.rmtree(OURS_HOME, ignore_errors=True)
    release = OURS_HOME / "releases" / "1"
    (release / "stac").mkdir(parents=True)
    (release / "release.json").write_text(json.dumps({"release": 1, "datasets": {}}))
    (release / "stac" / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "id": "synthetic", "stac_version": "1.1.0", "links": [],
        "description": "SYNTHETIC benchmark catalog"}))
    (OURS_HOME / "current.json").write_text(json.dumps({"release": 1}))
    backend = SqliteBackend(OURS_HOME / "stac-index.sqlite")
    if database_url:
        PgstacBackend.migrate(database_url)
        backend = PgstacBackend(database_url)
    started = time.perf_counter()
    backend.apply(1, [(COLLECTION, 1, synthetic_collection(count), synthetic_items(count))], [])
    return time.perf_counter() - started


def bench_app():
    """WSGI app for gunicorn: only the STAC blueprint, over the bench home."""
    from flask import Flask

    from catalog.stac_api import stac_blueprint
    from catalog.store import CatalogStore

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    app.register_blueprint(stac_blueprint(CatalogStore(os.environ["BENCH_STAC_HOME"]),
                                          os.environ["BENCH_PUBLIC_URL"]))
    return app


def start_ours(port: int, database_url: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, BENCH_STAC_HOME=str(OURS_HOME),
               BENCH_PUBLIC_URL=f"http://127.0.0.1:{port}", TAZA_DATABASE_URL=database_url or "")
    command = [sys.executable, "-m", "gunicorn", "--config",
               str(ROOT / "config" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
               "--workers", "2", "bench.stac_search:bench_app()"]
    return _start(command, env, f"http://127.0.0.1:{port}/stac/conformance", "ours")


# -- pgstac ----------------------------------------------------------------------------------


def run_checked(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def ensure_pgstac_tools() -> None:
    if not (Path("/usr/share/postgresql/15/extension") / "postgis.control").exists():
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run_checked([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                     "postgresql-15", "postgresql-15-postgis-3"], env=env, timeout=1200)
    if not (PG_VENV / "bin" / "uvicorn").exists():
        # Our own interpreter (3.12): a `python3.12` on PATH may be a pyenv shim that fails
        # unless PYENV_VERSION is set.
        run_checked([sys.executable, "-m", "venv", str(PG_VENV)], timeout=300)
        run_checked([str(PG_VENV / "bin" / "pip"), "install", "-q", *PG_PINS], timeout=1200)


def as_postgres(command: list[str]) -> list[str]:
    """Run PostgreSQL's tools as the postgres user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def start_postgres(port: int) -> Path:
    shutil.rmtree(PG_DIR, ignore_errors=True)
    data, sockets = PG_DIR / "data", PG_DIR / "socket"
    sockets.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(PG_DIR, "postgres")
        shutil.chown(sockets, "postgres")
        for parent in list(PG_DIR.parents)[:3]:
            parent.chmod(parent.stat().st_mode | 0o011)  # traversable by postgres
    run_checked(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                             "--auth=trust", "-E", "UTF8"]), timeout=120)
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c shared_buffers=512MB -c work_mem=64MB -c max_connections=60")
    run_checked(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l",
                             str(PG_DIR / "postgres.log"), "-o", options, "-w", "start"]),
                timeout=120)
    return data


def stop_postgres(data: Path) -> None:
    subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                   capture_output=True, timeout=120)


def load_pgstac(port: int, count: int) -> tuple[float, str]:
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    pypgstac = str(PG_VENV / "bin" / "pypgstac")
    run_checked([pypgstac, "migrate", "--dsn", dsn], timeout=600)
    collection_file = PG_DIR / "collection.json"
    collection_file.write_text(json.dumps(synthetic_collection(count)))
    items_file = PG_DIR / "items.ndjson"
    with items_file.open("w") as handle:
        for item in synthetic_items(count):
            handle.write(json.dumps(item) + "\n")
    run_checked([pypgstac, "load", "collections", str(collection_file), "--dsn", dsn],
                timeout=600)
    # pgstac's own index for the filtered and sorted property, so it runs at its best.
    psql = [str(PG_BIN / "psql"), dsn, "-v", "ON_ERROR_STOP=1", "-c",
            "SET search_path TO pgstac, public; INSERT INTO queryables (name, definition, "
            "property_wrapper, property_index_type) VALUES ('eo:cloud_cover', "
            "'{\"type\": \"number\"}', 'to_float', 'BTREE') ON CONFLICT DO NOTHING;"]
    run_checked(psql, timeout=120)
    started = time.perf_counter()
    run_checked([pypgstac, "load", "items", str(items_file), "--dsn", dsn, "--method", "insert"],
                timeout=3600)
    seconds = time.perf_counter() - started
    run_checked([str(PG_BIN / "psql"), dsn, "-c", "ANALYZE;"], timeout=600)
    return seconds, dsn


def start_pgstac_api(pg_port: int, port: int) -> subprocess.Popen:
    env = dict(os.environ, PGUSER="postgres", PGPASSWORD="unused", PGHOST="127.0.0.1",
               PGPORT=str(pg_port), PGDATABASE="postgres", ENABLE_TRANSACTIONS_EXTENSIONS="false")
    command = [str(PG_VENV / "bin" / "uvicorn"), "stac_fastapi.pgstac.app:create_app",
               "--factory", "--host",
               "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning"]
    return _start(command, env, f"http://127.0.0.1:{port}/conformance", "pgstac")


# -- processes and report ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(command: list[str], env: dict, ready_url: str, name: str) -> subprocess.Popen:
    log = (WORK / f"stac-{name}.log").open("w")
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {(WORK / f'stac-{name}.log').read_text()[-3000:]}")
        try:
            if requests.get(ready_url, timeout=5).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop(process)
    raise RuntimeError(f"{name} did not answer {ready_url} within 90 s")


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def with_cleanup(steps: list[Callable[[], None]]) -> None:
    for step in steps:
        try:
            step()
        except Exception as err:  # cleanup must go on
            print(f"cleanup: {err}", file=sys.stderr)


def report(args, ours: dict[str, Sample], theirs: dict[str, Sample] | None,
           index_s: float, pg_load_s: float | None, pg_failure: str | None) -> str:
    lines = [
        f"# STAC search: SQLite index vs stac-fastapi-pgstac ({dt.date.today()})", "",
        f"`{' '.join(args.command_line)}` on {platform.node()} ({os.cpu_count()} cores, "
        f"{platform.python_version()}). {args.items:,} SYNTHETIC items in `{COLLECTION}` "
        f"(seed {SEED}), {args.requests} requests per query after 5 warm-up requests, one "
        "keep-alive client on 127.0.0.1, servers one after the other. Ours: the /stac "
        "blueprint under gunicorn (2 workers, gthread, 4 threads). pgstac: "
        f"{', '.join(PG_PINS)}, PostgreSQL 15 + PostGIS, uvicorn 2 workers, "
        "`eo:cloud_cover` declared as a BTREE-indexed queryable.", "",
        f"Indexing {args.items:,} items into our SQLite index: **{index_s:.1f} s** "
        "(target < 60 s)" + (f"; `pypgstac load` of the same items: {pg_load_s:.1f} s."
                             if pg_load_s else "."), "",
    ]
    if theirs is None:
        lines += [f"pgstac side did not run: {pg_failure}", ""]
    lines += ["| query | ours p50 ms | ours p99 ms | ours errors | pgstac p50 ms | pgstac p99 ms "
              "| pgstac errors | p50 ratio | p99 ratio | same items |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, mine in ours.items():
        other = theirs.get(name) if theirs else None
        row = [name, f"{mine.p(0.5):.1f}", f"{mine.p(0.99):.1f}", str(len(mine.errors))]
        if other:
            row += [f"{other.p(0.5):.1f}", f"{other.p(0.99):.1f}", str(len(other.errors)),
                    f"{mine.p(0.5) / other.p(0.5):.2f}", f"{mine.p(0.99) / other.p(0.99):.2f}",
                    "yes" if mine.first_ids == other.first_ids else "NO"]
        else:
            row += ["-"] * 6
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Ratios are ours / pgstac: below 1 means ours is faster. 'same items' compares "
              "the ids (in order) of the first 20 responses of each query, and every id of each "
              "deep walk.", ""]
    errors = [(n, e) for side in (ours, theirs or {}) for n, s in side.items() for e in s.errors]
    for name, error in errors[:10]:
        lines.append(f"- error in {name}: {error}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stac_search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per query")
    parser.add_argument("--pages", type=int, default=20, help="next links followed per walk")
    parser.add_argument("--walks", type=int, default=10, help="deep walks (limit=100)")
    args = parser.parse_args(argv)
    args.command_line = [".venv/bin/python", "-m", "bench.stac_search", *(argv or sys.argv[1:])]
    WORK.mkdir(parents=True, exist_ok=True)
    plans = query_plans(args.requests)

    print(f"indexing {args.items:,} synthetic items into our SQLite index ...", flush=True)
    index_s = index_ours(args.items)
    print(f"  {index_s:.1f} s", flush=True)
    port = free_port()
    server = start_ours(port)
    try:
        ours = run_queries(f"http://127.0.0.1:{port}/stac", plans, args.pages, args.walks)
    finally:
        stop(server)

    theirs, pg_load_s, failure, data, api = None, None, None, None, None
    try:
        print("pgstac: tools, cluster, load ...", flush=True)
        ensure_pgstac_tools()
        pg_port = free_port()
        data = start_postgres(pg_port)
        pg_load_s, _ = load_pgstac(pg_port, args.items)
        print(f"  pypgstac load: {pg_load_s:.1f} s", flush=True)
        api_port = free_port()
        api = start_pgstac_api(pg_port, api_port)
        theirs = run_queries(f"http://127.0.0.1:{api_port}", plans, args.pages, args.walks)
    except Exception as err:  # report exactly what failed instead of a made-up comparison
        failure = f"{type(err).__name__}: {err}"
        print(f"pgstac side failed: {failure}", file=sys.stderr)
    finally:
        with_cleanup([lambda: stop(api), lambda: data and stop_postgres(data)])

    text = report(args, ours, theirs, index_s, pg_load_s, failure)
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"stac-{dt.date.today()}.md"
    target.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {target.relative_to(ROOT)}")
    return 0 if theirs is not None else 1


if __name__ == "__main__":
    sys.exit(main())
