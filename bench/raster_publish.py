"""Publish a 4-gigapixel raster through the stewards' API and `taza publish`: memory stays flat.

    python -m bench raster_publish [--size 65536] [--workers 1]

1. Generates a SYNTHETIC single-band GeoTIFF of --size x --size pixels (default 65,536², 4.29
   gigapixels, uint8, tiled 512, DEFLATE; bench/.work/raster/, reused when present): a smooth
   invented relief plus seeded noise, with a nodata square. Nothing in it is real.
2. Starts the real server (`taza serve`, gunicorn, --workers) on a free 127.0.0.1 port over a
   fresh catalog home; through the API: manifest, streamed upload (checked by the isolated
   reader), submit, approve, publish (validate and convert, each in its own reader process).
3. Samples every 0.1 s the resident memory of every process of the server tree and keeps
   the peak of each role: gunicorn workers, and the isolated reader processes (each reader's
   VmHWM, its own high-water mark, read while it runs). Reports each worker's VmHWM at the end.
4. Peer, same file, same run: `taza publish` of a local manifest, its peak from wait4's
   ru_maxrss (the largest of the command and the readers it waited for).

Writes bench/results/raster-publish-<date>.md. The target: under 1 GB for the server and for
each reader process. Loopback only; every request bounded by a timeout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rasterio
import requests
import yaml
from rasterio.transform import from_bounds
from rasterio.windows import Window

from bench.jobs import finished_job

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work" / "raster"
RESULTS = ROOT / "bench" / "results"
DATASET_ID = "relief-synthetic"
SEED = 20261203
TARGET_MB = 1024
STRIPE = 4096  # rows generated at a time


def synthetic_raster(size: int) -> Path:
    """A deterministic size x size uint8 GeoTIFF; reused when already generated."""
    path = WORK / f"relief-{size}.tif"
    if path.exists() and path.with_suffix(".done").exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"generating {size:,} x {size:,} synthetic pixels in {path}", flush=True)
    rng = np.random.default_rng(SEED)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint8",
               "crs": "EPSG:4326", "nodata": 0, "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "DEFLATE", "zlevel": 1, "BIGTIFF": "YES",
               "transform": from_bounds(69.2, 39.1, 80.3, 43.3, size, size)}
    columns = np.arange(size, dtype=np.float32) / size
    with rasterio.open(path, "w", **profile) as sink:
        for top in range(0, size, STRIPE):
            rows = min(STRIPE, size - top)
            y = (np.arange(top, top + rows, dtype=np.float32) / size)[:, None]
            relief = 128 + 90 * np.sin(6.0 * columns[None, :]) * np.cos(4.0 * y)
            noise = rng.integers(0, 8, (rows, size), dtype=np.uint8)
            block = np.clip(relief, 1, 247).astype(np.uint8) + noise
            if top < size // 8:  # a nodata square in the north-west
                block[:, : size // 8] = 0
            sink.write(block, 1, window=Window(0, top, size, rows))
    path.with_suffix(".done").write_text("ok")
    return path


class TreeSampler:
    """Peak resident memory of the server's workers and reader processes."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.peak = {"worker": 0, "reader": 0, "master": 0}
        self.readers_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for pid, role in self._tree():
                key = "VmHWM" if role == "reader" else "VmRSS"
                self.peak[role] = max(self.peak[role], _status_kb(pid, key))

    def _tree(self) -> list[tuple[int, str]]:
        found = [(self.master, "master")]
        for worker in _children(self.master):
            found.append((worker, "worker"))
            for reader in _children(worker):
                self.readers_seen.add(reader)
                found.append((reader, "reader"))
        return found

    def worker_high_water(self) -> int:
        return max((_status_kb(w, "VmHWM") for w in _children(self.master)), default=0)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def manifest(dataset_id: str) -> dict:
    data = yaml.safe_load((ROOT / "datasets" / "slope.yaml").read_text(encoding="utf-8"))
    data.update(id=dataset_id, nature="synthetic", raster={"band_name": "relief", "unit": "m"})
    data["title"] = {lang: f"Synthetic relief for a benchmark ({lang})"
                     for lang in ("en", "ru", "ky")}
    data["title"]["en"] = "Synthetic relief for a benchmark"
    data["provenance"]["limitations"] = "Invented values: a benchmark of the pipeline only."
    data.pop("source", None)
    return data


def run_api(raster: Path, workers: int, timings: dict) -> tuple[TreeSampler, int]:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_server, stop_server
    from tests.stewards_support import add_accounts

    home = Path(tempfile.mkdtemp(prefix="bench-raster-"))
    tokens = add_accounts(home)
    # The synthetic file is about 2 GB: the upload limit must let it in (default 2 GiB).
    limit = max(2 << 30, raster.stat().st_size + (1 << 20))
    server = start_server(home, workers=workers, env={"TAZA_UPLOAD_MAX_BYTES": str(limit)})
    try:
        with TreeSampler(server.process.pid) as sampler:
            def call(method, path, user, **kwargs):
                return requests.request(method, server.url + path, timeout=7200,
                                        headers={"Authorization": f"Bearer {tokens[user]}",
                                                 **kwargs.pop("headers", {})}, **kwargs)

            assert call("POST", "/api/datasets", "alice", json={"id": DATASET_ID}).ok
            assert call("PUT", f"/api/datasets/{DATASET_ID}/draft/manifest", "alice",
                        data=json.dumps(manifest(DATASET_ID), default=str),
                        headers={"Content-Type": "application/json"}).ok
            started = time.monotonic()
            with raster.open("rb") as handle:
                answer = call("PUT", f"/api/datasets/{DATASET_ID}/draft/source", "alice",
                              params={"filename": raster.name}, data=handle)
            timings["upload and check (API)"] = time.monotonic() - started
            assert answer.status_code == 201, answer.text[:2000]
            for step, user in (("submit", "alice"), ("approve", "rita")):
                assert call("POST", f"/api/datasets/{DATASET_ID}/draft/{step}", user).ok
            started = time.monotonic()
            answer = call("POST", f"/api/datasets/{DATASET_ID}/draft/publish", "alice")
            finished_job(answer, lambda path: call("GET", path, "alice"))
            timings["publish (API)"] = time.monotonic() - started  # until its job succeeded
            high_water = sampler.worker_high_water()
        record = json.loads((home / "datasets" / DATASET_ID / "1" / "record.json").read_text())
        timings["statistics"] = record["rasters"][0]["bands"][0]["statistics"]
        return sampler, high_water
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


# Started from a fresh interpreter: a child forked from this process would inherit, in its
# ru_maxrss, this process's resident size at fork time (generating the raster takes GBs).
LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(process.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_cli(raster: Path, timings: dict) -> int:
    """`taza publish` of a local manifest; its peak RSS in kB (wait4's ru_maxrss: the largest
    of the command and the reader processes it waited for)."""
    home = Path(tempfile.mkdtemp(prefix="bench-raster-cli-"))
    folder = Path(tempfile.mkdtemp(prefix="bench-raster-manifest-"))
    try:
        data = manifest(DATASET_ID)
        data["source"] = str(raster)
        path = folder / f"{DATASET_ID}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        env = dict(os.environ, TAZA_HOME=str(home))
        started = time.monotonic()
        launched = subprocess.run(
            [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "catalog.cli", "publish",
             str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
        timings["taza publish (local file)"] = time.monotonic() - started
        status, peak = launched.stdout.split()[-2:]
        assert status == "0", launched.stderr[-2000:]
        return int(peak)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench raster_publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=65_536)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--skip-cli", action="store_true", help="only the API run")
    args = parser.parse_args(argv)
    raster = synthetic_raster(args.size)
    timings: dict = {}
    sampler, worker_hwm = run_api(raster, args.workers, timings)
    cli_peak = None if args.skip_cli else run_cli(raster, timings)
    report = _report(args, raster, timings, sampler, worker_hwm, cli_peak)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"raster-publish-{dt.date.today().isoformat()}.md"
    out.write_text(report, encoding="utf-8")
    print(report)
    print(f"written to {out}")
    return 0


def _report(args, raster: Path, timings: dict, sampler: TreeSampler, worker_hwm: int,
            cli_peak: int | None) -> str:
    mb = lambda kb: f"{kb / 1024:,.0f} MB"  # noqa: E731
    pixels = args.size * args.size
    peak = max(sampler.peak["worker"], worker_hwm)
    lines = [
        f"# Raster publish benchmark: {dt.date.today().isoformat()}", "",
        f"Command: `python -m bench raster_publish --size {args.size} --workers "
        f"{args.workers}`. Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Loopback only.", "",
        f"Data: **synthetic** uint8 GeoTIFF, {args.size:,} x {args.size:,} = {pixels:,} "
        f"pixels, tiled 512, DEFLATE, {raster.stat().st_size:,} bytes (bench/raster_publish.py,"
        f" seed {SEED}).", "",
        "| step | wall time |", "|---|---|",
        *[f"| {k} | {v:,.1f} s |" for k, v in timings.items() if isinstance(v, float)], "",
        f"| memory (target: under {TARGET_MB} MB each) | peak |", "|---|---|",
        f"| gunicorn worker (VmRSS sampled every 0.1 s; VmHWM at the end) | "
        f"**{mb(peak)}** (VmHWM {mb(worker_hwm)}) |",
        f"| isolated reader processes ({len(sampler.readers_seen)} seen; their VmHWM) | "
        f"**{mb(sampler.peak['reader'])}** |",
        f"| gunicorn master | {mb(sampler.peak['master'])} |",
    ]
    if cli_peak is not None:
        lines.append(f"| `taza publish` and its readers (wait4 ru_maxrss) | **{mb(cli_peak)}** |")
    lines += ["", f"Band statistics written to record.json: `{json.dumps(timings['statistics'])}`",
              "", "Wall times on a shared 2-core machine; compare memory, not times."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
