"""OGC API Features: our GeoPackage provider against stock pygeoapi, on the same file.

    python -m bench features [--duration 60] [--count 1000000] [--reuse-publish]
                             [--baseline DIR] [--only TEXT]

1. Generates the synthetic parcels (bench/parcels.py) unless already there.
2. Publishes them through the normal pipeline (`taza publish`) into a bench catalog home,
   timing it and reading its peak resident memory (wait4's ru_maxrss).
3. Builds stock pygeoapi 0.21.0 under Debian's /usr/bin/python3 (its SQLiteGPKG provider needs
   mod_spatialite, which the pyenv Python cannot load), in bench/.work/stock-venv, and points it
   at the SAME published GeoPackage.
4. Serves both with gunicorn, same settings (2 workers, gthread, 4 threads, keep-alive 5 s), on
   127.0.0.1, and drives each query with wrk (16 connections, 2 threads, `duration` seconds per
   server, in alternating 10 s turns so background load on the shared machine hits both alike),
   then prints a Markdown table and writes bench/results/features-<date>.md.

Before the load, every query is sent once to both servers to record whether each parameter was
applied (stock pygeoapi answers 200 and ignores what it does not support).

`--baseline DIR` measures another version of our own code instead of stock pygeoapi: DIR holds
an export of the catalog sources (`git archive main | tar -x -C DIR`), served by the same
Python and virtualenv over the same catalog home, so a change is compared with what it replaces
in the same run (the "within 10 %" checks of a refactoring).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import parcels

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "results"
LUA_REPORT = ROOT / "bench" / "wrk_report.lua"  # figures at the end
LUA_PATHS = ROOT / "bench" / "wrk_paths.lua"  # varying paths: a scripted request each time
STOCK_VENV = WORK / "stock-venv"
STOCK_PINS = ("pygeoapi==0.21.0", "gunicorn==23.0.0")
DEBIAN_PACKAGES = {"wrk": "/usr/bin/wrk", "libsqlite3-mod-spatialite": None}
COLLECTION = parcels.DATASET_ID
ITEMS = f"/collections/{COLLECTION}/items"
# Our servers read a large layer's column arrays in the first request that needs them, as
# before TAZA_COLUMN_LOADS (the default reads them in a thread while SQL answers): each row
# then times the arrays from its first second, not SQL until a thread is done.
OURS_SETTINGS = {"TAZA_COLUMN_LOADS": "request"}
CONNECTIONS, WRK_THREADS = 16, 2
SLICE_S = 10  # seconds of load per turn; each server gets `duration` in all
GUNICORN = ["--workers", "2", "--worker-class", "gthread", "--threads", "4", "--timeout", "60",
            "--keep-alive", "5", "--log-level", "warning"]
# ~5 km boxes (0.06 x 0.045 degrees) near towns: wrk_paths.lua moves each box randomly by up
# to 0.02 degrees per request and the towns rotate, so no box is answered from a cache.
TOWNS = {"Bishkek": (74.59, 42.87), "Osh": (72.80, 40.53), "Karakol": (78.39, 42.49),
         "Jalal-Abad": (73.00, 40.93), "Naryn": (75.99, 41.43), "Talas": (72.24, 42.52),
         "Tokmok": (75.30, 42.84), "Balykchy": (76.19, 42.46), "Kara-Balta": (73.85, 42.81),
         "Uzgen": (73.30, 40.77)}


def town_boxes() -> list[str]:
    return [f"{{BOX:{x},{y}}}" for x, y in TOWNS.values()]


@dataclass
class Query:
    name: str
    paths: list[str]  # query strings after ITEMS; '{AREA}' is randomised per request by wrk
    note: str = ""


def queries() -> list[Query]:
    return [
        Query("items?limit=100", ["?limit=100"]),
        Query("bbox (5 km town boxes, limit=100)",
              [f"?limit=100&bbox={box}" for box in town_boxes()],
              f"{len(TOWNS)} towns in rotation, each box moved randomly per request"),
        Query("CQL2 filter (land_use, area_m2)",
              # No filter-lang: cql2-text is the default of both (stock 0.21 rejects the name).
              ["?limit=100&filter="
               + urllib.parse.quote("land_use='pasture' AND area_m2>{AREA}", safe="{}")],
              "area threshold random per request (1000-40000), so counts are not cached"),
        Query("offset=900000", ["?limit=100&offset=900000"]),
        Query("sortby=-area_m2", ["?limit=100&sortby=-area_m2"]),
    ]


# --- set-up -------------------------------------------------------------------------------------


def ensure_debian_packages() -> None:
    missing = [name for name, path in DEBIAN_PACKAGES.items()
               if not (Path(path).exists() if path else _dpkg_installed(name))]
    if not missing:
        return
    print(f"installing Debian packages {missing} (benchmark only)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def _dpkg_installed(name: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name],
                            capture_output=True, text=True)
    return "install ok installed" in result.stdout


def ensure_stock_venv() -> Path:
    python = STOCK_VENV / "bin" / "python"
    stamp = STOCK_VENV / ".pins"
    if not (stamp.exists() and stamp.read_text() == "\n".join(STOCK_PINS)):
        print(f"creating {STOCK_VENV} with {', '.join(STOCK_PINS)}", flush=True)
        shutil.rmtree(STOCK_VENV, ignore_errors=True)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(STOCK_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *STOCK_PINS], check=True)
        stamp.write_text("\n".join(STOCK_PINS))
    return python


@dataclass
class PublishFigures:
    seconds: float
    peak_rss_mb: float
    gpkg: Path
    table: str
    feature_count: int
    output: str


def publish(home: Path, manifest: Path, reuse: bool) -> PublishFigures:
    """`taza publish` into a fresh bench home (or reuse one), timed, with its peak RSS."""
    if reuse and (home / "current.json").exists():
        seconds, peak = float("nan"), float("nan")
        output = "(reused an earlier publish)"
    else:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        env = dict(os.environ, TAZA_HOME=str(home))
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "catalog.cli", "publish", str(manifest)],
                                   env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        # wait4 reports the finished child's own peak RSS (taza publish runs in one process).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        output = process.stdout.read().strip()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"publish failed:\n{output}")
        peak = usage.ru_maxrss / 1024
    record = json.loads(next((home / "datasets" / COLLECTION).glob("*/record.json")).read_text())
    gpkg = home / "datasets" / COLLECTION / str(record["version"]) / f"{COLLECTION}.gpkg"
    return PublishFigures(seconds, peak, gpkg, record["vector"]["table"],
                          record["vector"]["feature_count"], output)


def stock_copy(gpkg: Path) -> Path:
    """A byte-identical copy of the published GeoPackage for stock pygeoapi: SpatiaLite opens
    it read-write (it left a journal and a new mtime on the published file in earlier runs),
    and a published version must never change."""
    copy = WORK / "stock" / gpkg.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    if not copy.exists() or copy.stat().st_mtime < gpkg.stat().st_mtime:
        shutil.copyfile(gpkg, copy)
    return copy


def stock_config(gpkg: Path, table: str, port: int, folder: Path, venv: Path = STOCK_VENV,
                 resource: str = COLLECTION, provider: dict | None = None) -> dict[str, str]:
    """Stock pygeoapi config (SQLiteGPKG provider for the layer, or `provider`) in `folder`;
    returns the server env."""
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "cors": False,
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "OpenStreetMap"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "stock pygeoapi (benchmark)", "description": "bench",
                               "keywords": ["bench"], "keywords_type": "theme",
                               "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                               "url": "https://example.org"},
            "license": {"name": "CC0-1.0", "url": "https://example.org"},
            "provider": {"name": "bench", "url": "https://example.org"},
            "contact": {"name": "bench", "position": "bench", "address": "-", "city": "-",
                        "stateorprovince": "-", "postalcode": "-", "country": "-",
                        "email": "bench@example.org", "url": "https://example.org",
                        "role": "pointOfContact"},
        },
        "resources": {
            resource: {
                "type": "collection",
                "title": "Land parcels, synthetic",
                "description": "synthetic benchmark layer",
                "keywords": ["synthetic"],
                "extents": {"spatial": {"bbox": [69.2, 39.1, 80.3, 43.3],
                                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
                "providers": [provider or {"type": "feature", "name": "SQLiteGPKG",
                                           "data": str(gpkg), "id_field": "fid",
                                           "table": table}],
            }
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "pygeoapi.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    openapi_path = folder / "openapi.yml"
    env = dict(os.environ, PYGEOAPI_CONFIG=str(config_path), PYGEOAPI_OPENAPI=str(openapi_path))
    subprocess.run([str(venv / "bin" / "pygeoapi"), "openapi", "generate",
                    str(config_path), "--output-file", str(openapi_path)],
                   check=True, env=env, capture_output=True)
    return env


# --- servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    base: str  # URL of the OGC API root
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(name: str, command: list[str], env: dict, base: str, log: Path,
          cwd: Path = ROOT) -> Server:
    handle = log.open("a")
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=handle, stderr=handle,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} server exited; see {log}")
        try:
            with urllib.request.urlopen(f"{base}/collections/{COLLECTION}", timeout=5) as answer:
                if answer.status == 200:
                    wait_for_workers(process.pid)
                    return Server(name, base, process, log)
        except OSError:
            time.sleep(0.5)
    stop(Server(name, base, process, log))
    raise SystemExit(f"{name} server did not answer within 120 s; see {log}")


def wait_for_workers(master: int, workers: int = 2, timeout: float = 60) -> None:
    """Return once every gunicorn worker has booted and gone idle.

    The first answer comes from the first worker ready; wrk's 16 keep-alive connections opened
    while the other still imports the application all land on the first one and stay there
    for the whole turn (one core of two: measured 870 instead of 2,550 req/s for ours, whose
    workers take a few seconds to import). Both servers get the same wait."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        children = _children(master)
        busy = [_cpu_ticks(pid) for pid in children]
        if len(children) >= workers and last is not None and \
                sum(busy) - sum(last) <= 1 and len(busy) == len(last):
            return
        last = busy
        time.sleep(0.3)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def stop(server: Server, kill: bool = False) -> None:
    """End the gunicorn we started (its own process group); `kill` drops queued work at once."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


# --- what each server applies -------------------------------------------------------------------


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


def applied(query: Query, server: Server) -> str:
    """Send the query once and check that the parameter was honoured."""
    path = query.paths[0].replace("{AREA}", "5000")
    for x, y in TOWNS.values():
        path = path.replace(f"{{BOX:{x},{y}}}",
                            f"{x - 0.03:.4f},{y - 0.0225:.4f},{x + 0.03:.4f},{y + 0.0225:.4f}")
    status, body = get_json(server.base + ITEMS + path)
    if status != 200:
        return f"HTTP {status}"
    features = body.get("features", [])
    props = [f["properties"] for f in features]
    matched = body.get("numberMatched")
    if "bbox=" in path:
        box = [float(v) for v in path.split("bbox=")[1].split("&")[0].split(",")]
        ok = bool(features) and all(_touches(f["geometry"], box) for f in features)
    elif "filter=" in path:
        ok = bool(props) and all(p["land_use"] == "pasture" and p["area_m2"] > 5000
                                 for p in props)
    elif "sortby=" in path:
        areas = [p["area_m2"] for p in props]
        _, first_page = get_json(server.base + ITEMS + "?limit=1000")
        unsorted_max = max(f["properties"]["area_m2"] for f in first_page["features"])
        ok = bool(areas) and areas == sorted(areas, reverse=True) and areas[0] >= unsorted_max
    elif "offset=" in path:
        ok = bool(features) and str(features[0]["id"]) == "900001"
    else:
        ok = len(features) == 100
    count = f", numberMatched {matched:,}" if isinstance(matched, int) else ", no numberMatched"
    return ("applied" if ok else "**ignored**") + count


def _touches(geometry: dict, box: list[float]) -> bool:
    coords = geometry["coordinates"]
    while isinstance(coords[0][0], list):
        coords = [c for part in coords for c in part]
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    return min(xs) <= box[2] and max(xs) >= box[0] and min(ys) <= box[3] and max(ys) >= box[1]


# --- load ---------------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    query: str
    figures: dict = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.figures["requests"] / (self.figures["duration_us"] / 1e6)

    @property
    def socket_errors(self) -> int:
        f = self.figures
        return f["connect_errors"] + f["read_errors"] + f["write_errors"] + f["timeouts"]

    def add(self, figures: dict) -> None:
        """Merge another wrk run: counts add up, percentiles come from the merged histogram."""
        totals = self.figures
        for key in ("requests", "duration_us", "bytes", "non2xx", "connect_errors",
                    "read_errors", "write_errors", "timeouts"):
            totals[key] = totals.get(key, 0) + figures[key]
        histogram = totals.setdefault("histogram", {})
        for value, count in figures["histogram"]:
            histogram[value] = histogram.get(value, 0) + count
        for p in (50, 90, 99):
            totals[f"p{p}_us"] = percentile(histogram, p)


def percentile(histogram: dict[int, int], p: float) -> int:
    """The smallest latency with at least p % of the requests at or below it (as wrk)."""
    total = sum(histogram.values())
    if not total:
        return 0
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= total * p / 100:
            return value
    return max(histogram)


def run_wrk(server: Server, query: Query, duration: int) -> dict:
    """wrk against one server. A single fixed path goes as wrk's prebuilt request; varying
    paths need a Lua request() per request, which costs wrk CPU on this 2-core machine in
    proportion to the request rate, i.e. it would slow the faster server most."""
    prefix = urllib.parse.urlsplit(server.base).path + ITEMS
    paths = [prefix + p for p in query.paths]
    host = urllib.parse.urlsplit(server.base)
    fixed = len(paths) == 1 and "{" not in paths[0]
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "wrk.lua"
        parts = [LUA_REPORT] if fixed else [LUA_PATHS, LUA_REPORT]
        script.write_text("\n".join(part.read_text() for part in parts))
        (Path(folder) / "paths").write_text("\n".join(paths) + "\n")
        url = f"{host.scheme}://{host.netloc}" + (paths[0] if fixed else "")
        command = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s",
                   "--timeout", "30s", "-s", str(script), url]
        out = subprocess.run(command, env=dict(os.environ, WRK_PATHS=str(Path(folder) / "paths")),
                             capture_output=True, text=True, timeout=duration + 120, check=True)
    lines = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    return {key: value for line in lines for key, value in line.items()}


# --- report -------------------------------------------------------------------------------------


def report(args, figures: PublishFigures, rows: list[tuple[Query, dict, dict]],
           peer: str = "stock") -> str:
    ms = lambda us: f"{us / 1000:.1f}"  # noqa: E731
    lines = [
        f"# Features benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{' '.join(args.command_line)}`  ",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}; shared and noisy, so read the "
        "ratios (both servers measured in this run, in alternating turns).  ",
        f"Layer: {figures.feature_count:,} synthetic parcel polygons (`{COLLECTION}`), the same "
        f"published GeoPackage for both ({figures.gpkg.stat().st_size / 1e6:.0f} MB; stock reads "
        "a byte-identical copy, as SpatiaLite opens it read-write). Ours also reads the feature "
        f"text stored at publish time ({_stored_text_mb(figures.gpkg):.0f} MB, "
        "catalog/gpkg/feature_text.py).  ",
        f"Load: wrk, {CONNECTIONS} connections, {WRK_THREADS} threads, {args.duration} s per row, "
        f"127.0.0.1, timeout 30 s, in turns of {SLICE_S} s alternating between the servers (a "
        "fresh server per turn, killed after it; percentiles from the merged latency "
        "histograms); each query is sent once before the load. Servers: gunicorn, "
        "2 workers, gthread, 4 threads each, keep-alive 5 s.  ",
        "Ours: `taza serve --workers 2` (pygeoapi 0.24.0, Python "
        f"{platform.python_version()}, catalog.features).  ",
        (f"Baseline: `taza serve --workers 2` from {args.baseline}, same Python and catalog "
         "home." if peer == "baseline" else
         "Stock: pygeoapi 0.21.0 `SQLiteGPKG` provider with mod_spatialite, Debian "
         "/usr/bin/python3 (3.11)."),
        "",
        "## Publish (`taza publish`, fresh catalog home)",
        "",
        f"- wall time: {figures.seconds:.1f} s (target < 120 s)",
        f"- peak resident memory: {figures.peak_rss_mb:.0f} MB (target < 1024 MB)",
        f"- output: `{figures.output}`",
        "",
        "## Queries",
        "",
        "| query | server | req/s | p50 ms | p99 ms | non-2xx | socket errors | parameter |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    ratios = []
    for query, ours, stock in rows:
        for name, (result, check) in (("ours", ours), (peer, stock)):
            f = result.figures
            lines.append(f"| {query.name} | {name} | {result.rps:.1f} | {ms(f['p50_us'])} | "
                         f"{ms(f['p99_us'])} | {f['non2xx']} | {result.socket_errors} | {check} |")
        o, s = ours[0], stock[0]
        throughput = o.rps / s.rps if s.rps else float("inf")
        p50 = s.figures["p50_us"] / o.figures["p50_us"] if o.figures["p50_us"] else float("nan")
        ratios.append(f"| {query.name} | {throughput:.2f}x | {p50:.2f}x | {query.note} |")
    lines += ["", f"## Ratios (ours / {peer})", "",
              f"| query | throughput | p50 latency ({peer} / ours) | note |",
              "|---|---:|---:|---|",
              *ratios, ""]
    return "\n".join(lines)


def _stored_text_mb(gpkg: Path) -> float:
    side = gpkg.with_name(gpkg.name.removesuffix(".gpkg") + ".features.sqlite")
    return side.stat().st_size / 1e6 if side.exists() else 0.0


def ensure_parcels(count: int) -> Path:
    """The parcels manifest, generated unless the same count was generated before."""
    manifest = WORK / "parcels" / f"{COLLECTION}.yaml"
    stamp = WORK / "parcels" / ".count"
    if not (manifest.exists() and stamp.exists() and stamp.read_text() == str(count)):
        # In a child process: this one stays small, so the publish child it forks later
        # does not inherit (and report) the generator's memory as its peak.
        subprocess.run([sys.executable, "-m", "bench.parcels", "--count", str(count),
                        "--out", str(manifest.parent)], cwd=ROOT, check=True)
        stamp.write_text(str(count))
    return manifest


def publish_and_report(count: int, reuse: bool) -> PublishFigures:
    manifest = ensure_parcels(count)
    print("publishing through `taza publish` ...", flush=True)
    figures = publish(WORK / "home", manifest, reuse)
    if figures.feature_count != count:  # an earlier run's publish of another size
        print(f"the earlier publish holds {figures.feature_count:,} parcels, not {count:,}: "
              "publishing again", flush=True)
        figures = publish(WORK / "home", manifest, reuse=False)
    print(f"{figures.output}\npublished in {figures.seconds:.1f} s, "
          f"peak RSS {figures.peak_rss_mb:.0f} MB", flush=True)
    return figures


def publish_only(args) -> int:
    publish_and_report(args.count, reuse=False)
    return 0


def run(args) -> int:
    ensure_debian_packages()
    home = WORK / "home"
    figures = publish_and_report(args.count, args.reuse_publish)
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ours_port, peer_port = free_port(), free_port()
    ours_env = dict(os.environ, TAZA_HOME=str(home), **OURS_SETTINGS)
    commands = {
        "ours": ([sys.executable, "-m", "catalog.cli", "serve", "--workers", "2", "--port",
                  str(ours_port)], ours_env, f"http://127.0.0.1:{ours_port}/ogc", ROOT),
    }
    if args.baseline:
        baseline = Path(args.baseline).resolve()
        commands["baseline"] = (
            [sys.executable, "-m", "catalog.cli", "serve", "--workers", "2", "--port",
             str(peer_port)], dict(ours_env, PYTHONPATH=str(baseline)),
            f"http://127.0.0.1:{peer_port}/ogc", baseline)
    else:
        ensure_stock_venv()
        stock_env = stock_config(stock_copy(figures.gpkg), figures.table, peer_port,
                                 WORK / "stock")
        commands["stock"] = ([str(STOCK_VENV / "bin" / "gunicorn"), *GUNICORN, "--bind",
                              f"127.0.0.1:{peer_port}", "pygeoapi.flask_app:APP"], stock_env,
                             f"http://127.0.0.1:{peer_port}", ROOT)
    peer = "baseline" if args.baseline else "stock"
    rows = []
    slices = max(1, round(args.duration / SLICE_S))
    for query in queries():
        if args.only and args.only not in query.name:
            continue
        checks: dict[str, str] = {}
        results = {name: Result(name, query.name) for name in commands}
        print(f"{query.name}:", end=" ", flush=True)
        for number in range(slices):
            # The servers take turns in short slices, so the load that other work puts on this
            # shared machine falls on both alike.
            for name in ("ours", peer) if number % 2 == 0 else (peer, "ours"):
                # A fresh server per slice, killed right after it: requests still queued when
                # wrk stops (stock's deep pages take seconds each) must not eat into the next.
                command, env, base, cwd = commands[name]
                server = start(name, command, env, base, logs / f"{name}.log", cwd)
                try:
                    if name not in checks:
                        checks[name] = applied(query, server)
                    for _ in range(10):  # warm up both workers: metadata, connections
                        get_json(server.base + ITEMS + "?limit=1")
                    results[name].add(run_wrk(server, query, args.duration // slices))
                finally:
                    stop(server, kill=True)
                print(f"{name} {number + 1}/{slices}", end=" ", flush=True)
        print(" ".join(f"| {n} {r.rps:.1f} req/s, p50 {r.figures['p50_us'] / 1000:.1f} ms"
                       for n, r in results.items()), flush=True)
        rows.append((query, (results["ours"], checks["ours"]),
                     (results[peer], checks[peer])))
    text = report(args, figures, rows, peer)
    print("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-baseline" if args.baseline else ""
    out = RESULTS / f"features-{dt.date.today():%Y-%m-%d}{suffix}.md"
    out.write_text(text, encoding="utf-8")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=int, default=60, help="seconds of load per row")
    parser.add_argument("--count", type=int, default=1_000_000, help="synthetic parcels")
    parser.add_argument("--baseline", metavar="DIR",
                        help="compare with our code exported to DIR instead of stock pygeoapi")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only the queries whose name contains TEXT")
    parser.add_argument("--reuse-publish", action="store_true",
                        help="keep an earlier bench publish instead of publishing afresh")
