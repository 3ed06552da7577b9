"""OGC API - Processes: whole-country timings through the API, against the same computation
in-process and a straightforward numpy/shapely peer.

    .venv/bin/python -m bench.processes [--runs 15]

1. Publishes the six sample datasets into bench/.work/processes-home (fresh) and serves them
   as `taza serve` does (gunicorn, 2 workers x 4 threads) on a free 127.0.0.1 port.
2. For each case, sync execution (POST /ogc/processes/<id>/execution): the first request
   (cold: a worker reads and caches the layers), 4 warm-ups, then --runs timed requests, one at
   a time from one client. Reports the client latency (HTTP round trip on loopback) and the
   server-side time from the job record pygeoapi keeps for every execution (started ->
   finished: inputs, computation, JSON encoding; not the HTTP write).
3. Peers, in this process: the same processor called directly (no HTTP, no pygeoapi), and for
   zonal statistics the straightforward approach (shapely point-in-polygon on every cell
   centre, then numpy).
4. Peak memory (VmHWM) of the server workers. Writes bench/results/processes-<date>.md.

Targets (issue 7): zonal statistics of the DEM over the whole country < 1 s, coverage
statistics for all regions < 1 s, site screening over the whole country < 5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import requests
import shapely

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "results"
HOME = WORK / "processes-home"
WARMUPS = 4


@dataclass
class Case:
    name: str
    process: str
    inputs: dict
    target_s: float
    cold_s: float = 0.0
    client_s: list[float] = field(default_factory=list)
    server_s: list[float] = field(default_factory=list)
    direct_s: list[float] = field(default_factory=list)
    peer_s: list[float] = field(default_factory=list)
    peer_name: str = ""
    size_bytes: int = 0


CASES = [
    Case("zonal statistics, DEM, whole country", "zonal-statistics", {"raster": "elevation"},
         1.0),
    Case("coverage statistics, country + all 9 regions", "coverage-statistics", {}, 1.0),
    Case("site screening, whole country, defaults", "site-screening", {}, 5.0),
    Case("site screening, whole country, 4G + settlement >= 10,000 within 20 km + airport "
         "within 100 km", "site-screening",
         {"coverage": "4G", "max_slope_deg": 5, "max_settlement_distance_km": 20,
          "min_settlement_population": 10000, "max_airport_distance_km": 100}, 5.0),
    Case("site screening, whole country, slope <= 30, every candidate (limit 500)",
         "site-screening", {"max_slope_deg": 30, "min_area_km2": 0, "limit": 500}, 5.0),
]


# -- server ----------------------------------------------------------------------------------

def publish(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = dict(os.environ, TAZA_HOME=str(home))
    subprocess.run([sys.executable, "-m", "catalog.cli", "publish", "--all"], cwd=ROOT,
                   env=env, check=True, capture_output=True, timeout=600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, TAZA_HOME=str(home))
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/healthz", timeout=10).status_code == 200:
                    return process, url
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("the server did not start; see " + str(home / "server.log"))
    except BaseException:
        stop_server(process)  # never leave a server behind
        raise


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def worker_peak_mb(process: subprocess.Popen) -> list[float]:
    """VmHWM of the gunicorn workers (children of the master in the process group)."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(process.pid) and "VmHWM" in fields:
            peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
    return sorted(peaks)


# -- measuring --------------------------------------------------------------------------------

def execute(url: str, case: Case) -> tuple[float, float]:
    """(client latency, server-side time from the job record) of one sync execution."""
    started = time.perf_counter()
    response = requests.post(f"{url}/ogc/processes/{case.process}/execution",
                             json={"inputs": case.inputs}, timeout=120)
    client = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{case.name}: HTTP {response.status_code}: {response.text[:300]}")
    case.size_bytes = len(response.content)
    job = requests.get(response.headers["Location"], timeout=30).json()
    return client, _seconds(job["finished"]) - _seconds(job["started"])


def _seconds(stamp: str) -> float:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def measure_api(url: str, case: Case, runs: int) -> None:
    case.cold_s = execute(url, case)[0]
    for _ in range(WARMUPS):
        execute(url, case)
    for _ in range(runs):
        client, server = execute(url, case)
        case.client_s.append(client)
        case.server_s.append(server)


def measure_direct(home: Path, case: Case, runs: int) -> None:
    """The same processor, called in this process (no HTTP, no pygeoapi)."""
    from catalog.processes import PROCESSORS, process_resources
    from catalog.store import CatalogStore

    definition = process_resources(CatalogStore(home))[case.process]["processor"]
    module, name = PROCESSORS[case.process].rsplit(".", 1)
    processor_class = getattr(importlib.import_module(module), name)
    for attempt in range(runs + 1):
        processor = processor_class(definition)
        started = time.perf_counter()
        processor.execute(case.inputs)
        if attempt:  # the first call loads the caches
            case.direct_s.append(time.perf_counter() - started)


def measure_naive_zonal(home: Path, case: Case, runs: int) -> None:
    """Point-in-polygon on every cell centre with shapely, then numpy statistics."""
    from catalog.processes import layer_paths
    from catalog.processes.layers import boundary
    from catalog.store import CatalogStore

    paths = layer_paths(CatalogStore(home))
    country = boundary(paths["boundary"])
    case.peer_name = "shapely point-in-polygon per cell"
    for _ in range(max(runs // 3, 3)):
        started = time.perf_counter()
        with rasterio.open(paths["elevation"]) as source:
            values = source.read(1)
            cols, rows = np.meshgrid(np.arange(source.width), np.arange(source.height))
            lon, lat = rasterio.transform.xy(source.transform, rows.ravel(), cols.ravel())
            nodata = source.nodata
        inside = shapely.contains_xy(country, np.asarray(lon), np.asarray(lat))
        selected = values.ravel()[inside & (values.ravel() != nodata)].astype(np.float64)
        _ = (selected.size, selected.min(), selected.max(), selected.mean(), selected.std(),
             np.histogram(selected, bins=20))
        case.peer_s.append(time.perf_counter() - started)


# -- report ----------------------------------------------------------------------------------

def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(cases: list[Case], peaks: list[float], runs: int, args_line: str,
           load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    today = dt.date.today().isoformat()
    lines = [
        f"# OGC API - Processes benchmark, {today}",
        "",
        f"`{args_line}` on {platform.node()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}), sample catalog (DEM 2672 x 1002 cells, "
        "1,235,478 inside the country).",
        f"Server: `taza serve`, gunicorn 2 workers x 4 threads, on 127.0.0.1. Sync execution, "
        f"one request at a time; {WARMUPS} warm-ups, then {runs} timed runs (p50 / p90).",
        "Server time: the job record's started -> finished (inputs, computation, JSON "
        "encoding). Client: the HTTP round trip on loopback. Direct: the same processor "
        "called in the benchmark process (no HTTP, no pygeoapi).",
        "",
        "| case | target | server p50 | server p90 | client p50 | client p90 | first (cold) "
        "| direct p50 | client / direct | response |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        ok = "met" if p(case.server_s, 50) < case.target_s else "MISSED"
        lines.append(
            f"| {case.name} | < {case.target_s:g} s ({ok}) | {p(case.server_s, 50):.3f} s "
            f"| {p(case.server_s, 90):.3f} s | {p(case.client_s, 50):.3f} s "
            f"| {p(case.client_s, 90):.3f} s | {case.cold_s:.3f} s "
            f"| {p(case.direct_s, 50):.3f} s "
            f"| {p(case.client_s, 50) / p(case.direct_s, 50):.2f} "
            f"| {case.size_bytes / 1024:.0f} KiB |")
    lines += ["", "Peers:", ""]
    for case in cases:
        if case.peer_s:
            lines.append(
                f"- {case.name}: {case.peer_name} takes {p(case.peer_s, 50):.3f} s (p50), "
                f"{p(case.peer_s, 50) / p(case.server_s, 50):.1f} x the server time through "
                "the API (the server rasterises the boundary instead).")
    lines += [
        "",
        f"Peak resident memory of the two workers after the runs: "
        f"{', '.join(f'{m:.0f} MB' for m in peaks)}.",
        "",
        "Cold: the first request a worker serves reads the COGs and GeoPackages and derives "
        "the grids it caches per published version (coverage raster, projected cell centres, "
        "region outlines); later requests reuse them. Whole-country coverage statistics are "
        "cached per release after the first request, so their warm time is lookup and JSON.",
        "The machine is shared and noisy: compare ratios within this run. Load average "
        f"(1/5/15 min) at the start: {'/'.join(f'{v:.1f}' for v in load[0])}, at the end: "
        f"{'/'.join(f'{v:.1f}' for v in load[1])} (2 cores).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.processes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    print("publishing the sample datasets ...", flush=True)
    publish(HOME)
    process, url = start_server(HOME)
    try:
        for case in CASES:
            print(f"{case.name} ...", flush=True)
            measure_api(url, case, args.runs)
        peaks = worker_peak_mb(process)
    finally:
        stop_server(process)
    for case in CASES:
        measure_direct(HOME, case, args.runs)
    measure_naive_zonal(HOME, CASES[0], args.runs)
    text = report(CASES, peaks, args.runs, "python -m bench.processes " + " ".join(
        argv if argv is not None else sys.argv[1:]), (load_before, os.getloadavg()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"processes-{dt.date.today().isoformat()}.md"
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
