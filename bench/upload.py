"""Upload and publish a 1 GB GeoPackage through the stewards' API, against `taza publish`.

    python -m bench.upload [--size-mb 1024] [--stream-mb 2048] [--workers 2]

1. Generates a SYNTHETIC GeoPackage of about --size-mb (bench/.work/upload/, reused when
   present): invented 12-sided parcels over Kyrgyzstan with a parcel id, a land use, an area
   and a ~1,800-character `notes` text (seeded pseudo-random words), so 1 GB is reached with
   about half a million features. Nothing in it is real.
2. Starts the real server (`taza serve`, gunicorn, --workers) on a free 127.0.0.1 port over a
   fresh catalog home, creates a steward and a reviewer with `taza users add`.
3. Through the API: manifest, streamed raw upload (PUT, 1 MiB chunks), submit, approve,
   publish; then polls /ogc/collections/<id>/items until the features are queryable.
   Wall time of each step; the server's own check time is in the upload report.
4. While it runs, samples every 0.1 s the memory of the whole server process tree (gunicorn
   master + workers + any child): the peak of the summed PSS, which the 500 MB target is read
   against (a page shared by forked processes is counted once, split between them), the peak
   of the summed VmRSS (which counts a shared page again in every process that maps it), and
   each process's share at that peak.
5. Peer, same file, same run: `taza publish` of a local manifest (the pipeline without HTTP,
   upload or review), with its peak memory (wait4's ru_maxrss), and a plain file copy (`cp`)
   as the transfer floor. Ratios are API / peer.
6. --stream-mb: streams that many MB of zeros as a raw upload named .gpkg (refused after the
   transfer: not a GeoPackage) to show a 2 GB body never sits in memory.

Writes bench/results/upload-<date>.md. Loopback only; every request bounded by a timeout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import fiona
import requests
import yaml

from bench.jobs import finished_job

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work" / "upload"
RESULTS = ROOT / "bench" / "results"
DATASET_ID = "parcels-upload-synthetic"
SEED = 20261128
NOTES_CHARS = 1800
VERTICES = 12
CHUNK = 1 << 20
MEMORY_TARGET_MB = 500
WORDS = ("boundary survey parcel pasture irrigation canal orchard road access easement "
         "cadastre register village district oblast river terrace slope meadow field").split()
LAND_USES = ("cropland", "pasture", "residential", "orchard", "forest")


# -- the synthetic GeoPackage ------------------------------------------------------------------

def synthetic_geopackage(size_mb: int) -> tuple[Path, int]:
    """A deterministic synthetic layer of about size_mb MB; reused when already generated."""
    path = WORK / f"synthetic-parcels-{size_mb}mb.gpkg"
    done = path.with_suffix(".json")
    if path.exists() and done.exists():
        return path, json.loads(done.read_text())["features"]
    WORK.mkdir(parents=True, exist_ok=True)
    per_feature = _bytes_per_feature()
    count = int(size_mb * (1 << 20) / per_feature)
    print(f"generating {count:,} synthetic features (~{size_mb} MB) in {path}", flush=True)
    _write_features(path, count)
    done.write_text(json.dumps({"features": count, "bytes": path.stat().st_size}))
    return path, count


def _bytes_per_feature() -> float:
    probe = WORK / "probe.gpkg"
    probe.unlink(missing_ok=True)
    _write_features(probe, 5000)
    size = probe.stat().st_size / 5000
    probe.unlink()
    return size


def _write_features(path: Path, count: int) -> None:
    rng = random.Random(SEED)
    text = " ".join(rng.choice(WORDS) for _ in range(200_000))
    schema = {"geometry": "Polygon", "properties": {
        "parcel_id": "str:10", "land_use": "str:12", "area_m2": "float", "notes": "str"}}
    angles = [2 * math.pi * i / VERTICES for i in range(VERTICES)]
    unit = [(math.cos(a), math.sin(a)) for a in angles]
    with fiona.open(path, "w", driver="GPKG", layer="parcels", schema=schema,
                    crs="EPSG:4326") as sink:
        batch = []
        for index in range(count):
            x, y = rng.uniform(69.5, 79.5), rng.uniform(39.5, 42.8)
            radius = rng.uniform(0.0005, 0.002)
            ring = [(x + radius * cx, y + radius * cy) for cx, cy in unit]
            start = rng.randrange(0, len(text) - NOTES_CHARS)
            batch.append({
                "geometry": {"type": "Polygon", "coordinates": [ring + [ring[0]]]},
                "properties": {"parcel_id": f"S{index:08d}", "land_use": rng.choice(LAND_USES),
                               "area_m2": round(3.1 * (radius * 111_000) ** 2, 1),
                               "notes": text[start:start + NOTES_CHARS]},
            })
            if len(batch) == 5000:
                sink.writerecords(batch)
                batch = []
        sink.writerecords(batch)


def manifest(dataset_id: str) -> dict:
    return {
        "id": dataset_id, "theme": "land",
        "title": {"en": "Land parcels (synthetic, upload benchmark)"},
        "description": {"en": "Invented parcels generated by bench/upload.py to measure uploads."},
        "keywords": {"en": ["synthetic", "benchmark"]},
        "licence": "CC0-1.0", "attribution": "Synthetic data, bench/upload.py",
        "steward": {"name": "Benchmark", "organisation": "Taza Koom", "email": "b@example.org"},
        "nature": "synthetic",
        "provenance": {"method": f"bench/upload.py, seed {SEED}",
                       "derived_from": [{"title": "none (invented)",
                                         "href": "https://example.org/", "licence": "CC0-1.0"}],
                       "limitations": "Invented: not a single parcel is real."},
        "update_frequency": "notPlanned", "temporal_extent": {"start": "2026-01-01", "end": None},
        "id_field": "parcel_id",
    }


# -- measuring memory --------------------------------------------------------------------------

@dataclass
class MemorySampler:
    """Peak of the summed VmRSS of a process and all its descendants, sampled every 0.1 s, and
    of their summed PSS: forked processes (gunicorn's workers, the reader's zygote and its
    children) share pages that each one's VmRSS counts again; PSS counts a shared page once
    across them."""

    root_pid: int
    peak_kb: int = 0
    peak_pss_kb: int = 0
    phase_peaks: dict[str, int] = field(default_factory=dict)
    phase: str = "idle"
    # (process, VmRSS kB, PSS kB) of every process of the tree when the summed VmRSS peaked
    at_peak: list[tuple[str, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> MemorySampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.root_pid)
            sizes = [(_process_name(pid), _rss_kb(pid), _pss_kb(pid)) for pid in pids]
            total = sum(rss for _, rss, _ in sizes)
            if total > self.peak_kb:
                self.peak_kb, self.at_peak = total, sizes
            self.peak_pss_kb = max(self.peak_pss_kb, sum(pss for _, _, pss in sizes))
            self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0), total)
            time.sleep(0.1)


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def _process_name(pid: int) -> str:
    """The process's command line, shortened: which of the tree's processes holds memory."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "(gone)"
    text = " ".join(word.decode(errors="replace") for word in words if word)
    return f"{pid} {text[-70:]}"


def _rss_kb(pid: int) -> int:
    return _proc_kb(f"/proc/{pid}/status", "VmRSS:")


def _pss_kb(pid: int) -> int:
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def _proc_kb(path: str, field_name: str) -> int:
    """The kB figure of one field of a /proc file; 0 once the process is gone."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- the server and the API --------------------------------------------------------------------

def taza(home: Path, *args: str) -> str:
    env = dict(os.environ, TAZA_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "catalog.cli", *args], env=env, cwd=ROOT,
                          check=True, capture_output=True, text=True, timeout=3600).stdout


def start_server(home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, TAZA_HOME=str(home), TAZA_UPLOAD_MAX_BYTES=str(4 << 30))
    log = (home / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "catalog.cli", "serve", "--port",
                                str(port), "--workers", str(workers)], env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url + "/healthz", timeout=30).status_code == 200:
                return process, url
        except requests.RequestException:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError(f"server did not start: see {home / 'server.log'}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)


class Zeros:
    """A file-like body of `total` zero bytes (requests sends it with its Content-Length)."""

    def __init__(self, total: int):
        self.total, self.sent = total, 0

    def __len__(self) -> int:
        return self.total - self.sent

    def read(self, size: int = CHUNK) -> bytes:
        size = min(size if size > 0 else CHUNK, self.total - self.sent)
        self.sent += size
        return b"\0" * size


def timed(label: str, timings: dict, action):
    started = time.monotonic()
    result = action()
    timings[label] = time.monotonic() - started
    print(f"  {label}: {timings[label]:.1f} s", flush=True)
    return result


def run_api(source: Path, features: int, workers: int, stream_mb: int) -> dict:
    home = WORK / "home-api"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    tokens = {}
    for name, role, org in (("steward", "steward", "bench-org"), ("reviewer", "reviewer", None)):
        taza(home, "users", "add", name, "--role", role, *(["--org", org] if org else []))
        tokens[name] = taza(home, "users", "token", name).strip()  # add prints a link now
    process, url = start_server(home, workers)
    sampler = MemorySampler(process.pid).start()
    time.sleep(1.0)
    idle_kb = sampler.peak_kb
    headers = {"Authorization": f"Bearer {tokens['steward']}"}
    reviewer = {"Authorization": f"Bearer {tokens['reviewer']}"}
    base = f"{url}/api/datasets/{DATASET_ID}"
    timings: dict[str, float] = {}
    try:
        requests.post(f"{url}/api/datasets", json={"id": DATASET_ID}, headers=headers,
                      timeout=60).raise_for_status()
        requests.put(f"{base}/draft/manifest", data=json.dumps(manifest(DATASET_ID)),
                     headers={**headers, "Content-Type": "application/json"},
                     timeout=60).raise_for_status()
        sampler.phase = "upload"
        size = source.stat().st_size
        with source.open("rb") as body:  # streamed by requests, with its Content-Length
            upload = timed("upload (transfer + server check)", timings, lambda: requests.put(
                f"{base}/draft/source", params={"filename": source.name}, data=body,
                headers=headers, timeout=3600))
        assert upload.status_code == 201, upload.text[:2000]
        check_s = upload.json()["upload"]["check_seconds"]
        sampler.phase = "review"
        requests.post(f"{base}/draft/submit", headers=headers, timeout=60).raise_for_status()
        requests.post(f"{base}/draft/approve", headers=reviewer, timeout=60).raise_for_status()
        sampler.phase = "publish"
        published = timed("publish", timings, lambda: finished_job(
            requests.post(f"{base}/draft/publish", headers=headers, timeout=60),
            lambda path: requests.get(url + path, headers=headers, timeout=60)))
        sampler.phase = "queryable"
        timed("until queryable through /ogc", timings,
              lambda: _wait_queryable(url, features))
        stream = {}
        if stream_mb:
            sampler.phase = "stream"
            stream = _stream_zeros(base, headers, stream_mb, timings)
    finally:
        sampler.stop()
        stop(process)
    return {"timings": timings, "check_s": check_s, "peak_kb": sampler.peak_kb,
            "peak_pss_kb": sampler.peak_pss_kb, "at_peak": sampler.at_peak,
            "idle_kb": idle_kb, "phase_peaks": dict(sampler.phase_peaks), "stream": stream,
            "upload_bytes": size, "version": published["result"]["version"]}


def _wait_queryable(url: str, features: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        answer = requests.get(f"{url}/ogc/collections/{DATASET_ID}/items?limit=1", timeout=60)
        if answer.status_code == 200 and answer.json().get("numberMatched") == features:
            return
        time.sleep(0.05)
    raise RuntimeError("not queryable within 300 s")


def _stream_zeros(base: str, headers: dict, stream_mb: int, timings: dict) -> dict:
    total = stream_mb * (1 << 20)
    answer = timed(f"raw upload of {stream_mb} MB of zeros", timings, lambda: requests.put(
        f"{base}/draft/source", params={"filename": "zeros.gpkg"}, data=Zeros(total),
        headers=headers, timeout=3600))
    report = answer.json()
    return {"status": answer.status_code, "size": report.get("upload", {}).get("size"),
            "finding": report["findings"][0]["message"] if report.get("findings") else None}


def run_cli_peer(source: Path) -> dict:
    """`taza publish` of the same file from a local manifest: the pipeline alone."""
    home = WORK / "home-cli"
    shutil.rmtree(home, ignore_errors=True)
    folder = WORK / "cli-manifest"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.link(source, folder / source.name)
    data = manifest(DATASET_ID) | {"source": source.name}
    (folder / f"{DATASET_ID}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = dict(os.environ, TAZA_HOME=str(home))
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "catalog.cli", "publish",
                                str(folder / f"{DATASET_ID}.yaml")], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        raise RuntimeError(f"taza publish failed: {process.stderr.read().decode()[-2000:]}")
    return {"wall": wall, "peak_kb": usage.ru_maxrss}


def copy_floor(source: Path) -> float:
    target = WORK / "copy-floor.gpkg"
    target.unlink(missing_ok=True)
    started = time.monotonic()
    subprocess.run(["cp", str(source), str(target)], check=True)
    os.sync()
    elapsed = time.monotonic() - started
    target.unlink()
    return elapsed


# -- report --------------------------------------------------------------------------------------

def report(args, source: Path, features: int, api: dict, cli: dict, copy_s: float) -> str:
    t = api["timings"]
    upload_s = t["upload (transfer + server check)"]
    transfer_s = upload_s - api["check_s"]
    total_api = upload_s + t["publish"] + t["until queryable through /ogc"]
    mb = api["upload_bytes"] / (1 << 20)
    peak_mb = api["peak_kb"] / 1024
    phases = ", ".join(f"{phase} {kb / 1024:.0f} MB" for phase, kb in api["phase_peaks"].items())
    pss_mb = api["peak_pss_kb"] / 1024
    verdict = "under" if pss_mb < MEMORY_TARGET_MB else "OVER"
    lines = [
        f"# Upload benchmark: {dt.date.today().isoformat()}",
        "",
        f"Command: `python -m bench.upload --size-mb {args.size_mb} --stream-mb "
        f"{args.stream_mb} --workers {args.workers}`. Machine: {platform.platform()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Loopback only.",
        "",
        f"Data: **synthetic** GeoPackage generated by bench/upload.py (seed {SEED}): "
        f"{features:,} invented 12-sided parcels, each with a {NOTES_CHARS}-character `notes` "
        f"text; {api['upload_bytes']:,} bytes ({mb:,.0f} MiB). Manifest `id_field: parcel_id`.",
        "",
        "| step (through the API, server with "
        f"{args.workers} gunicorn workers) | wall time |",
        "|---|---|",
        f"| upload: streamed PUT (server reads 1 MiB chunks), answered after its check | "
        f"{upload_s:.1f} s |",
        f"| of which the transfer (upload minus check) | {transfer_s:.1f} s "
        f"({mb / max(transfer_s, 1e-9):,.0f} MiB/s) |",
        f"| of which the server's check of every feature (`check_seconds`) | "
        f"{api['check_s']:.1f} s |",
        f"| publish (POST .../draft/publish, until its job has succeeded) | "
        f"{t['publish']:.1f} s |",
        f"| from the publish answer until /ogc answers numberMatched = {features:,} | "
        f"{t['until queryable through /ogc']:.2f} s |",
        f"| **total: upload start until queryable through /ogc** | **{total_api:.1f} s** |",
        "",
        "| peer, same file, same run | wall time | ratio API / peer |",
        "|---|---|---|",
        f"| `taza publish` (pipeline alone, local file) | {cli['wall']:.1f} s | "
        f"{total_api / cli['wall']:.2f} |",
        f"| `cp` of the file (+ sync): the transfer floor | {copy_s:.1f} s | "
        f"{transfer_s / max(copy_s, 1e-9):.2f} (transfer / cp) |",
        "",
        "| memory | peak |",
        "|---|---|",
        f"| server process tree (master + workers + children), summed PSS, sampled every "
        f"0.1 s | **{pss_mb:.0f} MB** ({verdict} the {MEMORY_TARGET_MB} MB target) |",
        f"| the same tree's summed VmRSS (a page shared by forked processes counted in each) | "
        f"{peak_mb:.0f} MB |",
        f"| same tree when idle, after start, summed VmRSS | {api['idle_kb'] / 1024:.0f} MB |",
        f"| peaks by phase, summed VmRSS | {phases} |",
        f"| `taza publish` process alone (ru_maxrss) | {cli['peak_kb'] / 1024:.0f} MB |",
        "",
        "| the tree's processes when its summed VmRSS peaked | VmRSS | PSS |",
        "|---|---:|---:|",
        *(f"| `{name}` | {rss / 1024:.0f} MB | {pss / 1024:.0f} MB |"
          for name, rss, pss in sorted(api["at_peak"], key=lambda row: -row[1])),
        "",
    ]
    if api["stream"]:
        lines += [
            f"Raw upload of {args.stream_mb} MiB of zeros named `.gpkg`: HTTP "
            f"{api['stream']['status']}, {api['stream']['size']:,} bytes received and hashed, "
            f"then refused ({api['stream']['finding']}); its time: "
            f"{t[f'raw upload of {args.stream_mb} MB of zeros']:.1f} s; memory peak of that "
            f"phase is in the table above.",
            "",
        ]
    lines += [
        "Notes: wall times on a shared 2-core machine; compare the ratios, not the absolute "
        "figures. The publish step runs the unchanged pipeline (catalog/publish.py): its own "
        "validation pass, conversion to GeoPackage + GeoJSON, STAC; the API adds the streamed "
        "transfer and one checking pass at upload.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--stream-mb", type=int, default=2048,
                        help="MB of zeros to stream as a raw upload (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args(argv)
    source, features = synthetic_geopackage(args.size_mb)
    print(f"synthetic source: {source} ({source.stat().st_size:,} bytes, {features:,} features)")
    print("through the API:", flush=True)
    api = run_api(source, features, args.workers, args.stream_mb)
    print("peer: taza publish", flush=True)
    cli = run_cli_peer(source)
    copy_s = copy_floor(source)
    text = report(args, source, features, api, cli, copy_s)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        target = RESULTS / f"upload-{dt.date.today().isoformat()}.md"
        target.write_text(text)
        print(f"written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
