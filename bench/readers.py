"""Isolated reader starts: children forked from the zygote against fresh interpreters.

    python -m bench.readers [--uploads 40] [--rounds 2]

1. Stages --uploads small GeoJSON uploads in this process (catalog.sources.reader.stage_upload,
   what the stewards' API runs for every upload), each with new random features so nothing is
   cached, with TAZA_READER_ZYGOTE=on and =off, alternating the order in each round. Reports
   the median and 90th percentile of one staging's wall time.
2. `taza publish --all` of the sample catalog into a fresh home with each setting, alternating
   (one zygote and 32 forks, against 32 interpreters): wall time.

The peer is the same code with the zygote off, the way every reader started before it.
Writes bench/results/readers-<date>.md. Loopback only: no network at all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("on", "off")


def random_geojson(path: Path, rng: random.Random) -> Path:
    """A dozen invented points over Kyrgyzstan (SYNTHETIC), new values every call."""
    features = [{"type": "Feature", "properties": {"n": i, "value": rng.random()},
                 "geometry": {"type": "Point", "coordinates": [rng.uniform(69.3, 80.2),
                                                               rng.uniform(39.2, 43.2)]}}
                for i in range(12)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def stage_times(setting: str, uploads: int, work: Path, rng: random.Random) -> list[float]:
    from catalog.sources.reader import stage_upload
    from catalog.sources.uploads import UploadLimits, UploadOptions

    os.environ["TAZA_READER_ZYGOTE"] = setting
    seconds = []
    for n in range(uploads):
        folder = work / f"{setting}-{n}"
        (folder / "original").mkdir(parents=True)
        original = random_geojson(folder / "original" / "points.geojson", rng)
        started = time.perf_counter()
        staged = stage_upload(original, folder / "stage", UploadOptions(), UploadLimits())
        seconds.append(time.perf_counter() - started)
        if staged.source is None:
            raise SystemExit(f"staging failed: {staged.findings}")
    return seconds


def publish_all_seconds(setting: str, work: Path) -> float:
    home = work / f"home-{setting}-{time.monotonic_ns()}"
    env = dict(os.environ, TAZA_HOME=str(home), TAZA_READER_ZYGOTE=setting,
               TAZA_DATABASE_URL="")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "catalog.cli", "publish", "--all"], cwd=ROOT,
                   env=env, check=True, capture_output=True, timeout=1800)
    seconds = time.perf_counter() - started
    shutil.rmtree(home, ignore_errors=True)
    return seconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=40, help="stagings per setting, round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    rng = random.Random()
    stages: dict[str, list[float]] = {s: [] for s in SETTINGS}
    publishes: dict[str, list[float]] = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as scratch:
        work = Path(scratch)
        for round_ in range(args.rounds):
            order = SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]
            for setting in order:
                stages[setting] += stage_times(setting, args.uploads,
                                               work / f"r{round_}", rng)
                publishes[setting].append(publish_all_seconds(setting, work))
                print(f"round {round_ + 1}, zygote {setting}: staged {args.uploads}, "
                      f"publish --all {publishes[setting][-1]:.1f} s", flush=True)
    report = render(stages, publishes, args)
    out = ROOT / "bench" / "results" / f"readers-{dt.date.today()}.md"
    out.write_text(report)
    print(report)
    return 0


def render(stages: dict[str, list[float]], publishes: dict[str, list[float]], args) -> str:
    median = {s: statistics.median(stages[s]) for s in SETTINGS}
    p90 = {s: percentile(stages[s], 0.9) for s in SETTINGS}
    publish = {s: statistics.median(publishes[s]) for s in SETTINGS}
    lines = [
        f"# Reader starts: zygote against fresh interpreters ({dt.date.today()})", "",
        f"`python -m bench.readers --uploads {args.uploads} --rounds {args.rounds}` on "
        f"{platform.node()} ({os.cpu_count()} cores), the settings alternating each round.",
        "The first staging with the zygote on includes starting the zygote.", "",
        "| measure | zygote on | zygote off (fresh) | off / on |",
        "|---|---:|---:|---:|",
        f"| one staging, median ({len(stages['on'])} each) | {median['on'] * 1000:.0f} ms | "
        f"{median['off'] * 1000:.0f} ms | {median['off'] / median['on']:.1f}x |",
        f"| one staging, 90th percentile | {p90['on'] * 1000:.0f} ms | "
        f"{p90['off'] * 1000:.0f} ms | {p90['off'] / p90['on']:.1f}x |",
        f"| `taza publish --all`, median of {len(publishes['on'])} | {publish['on']:.1f} s | "
        f"{publish['off']:.1f} s | {publish['off'] / publish['on']:.2f}x |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
