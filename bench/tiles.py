"""Map tile latency on the 1,000,000-parcel synthetic layer: MVT tiles against the GeoJSON a
client would otherwise fetch for the same area, on the same server, in the same run.

    python -m bench.tiles [--count 1000000] [--per-zoom 12]

1. Reuses (or generates and publishes) the bench's synthetic parcels (bench.features).
2. Starts `taza serve` (gunicorn, 2 workers) on a free 127.0.0.1 port, with an empty tile cache.
3. For zooms 6 to 14, requests `--per-zoom` tiles around the densest places (Bishkek, Osh):
   each tile cold (rendered from the GeoPackage), then warm (from the tile cache); and, as the
   peer, `items?bbox=<the tile>&limit=4000&f=json` (the same feature cap) for the same tile.
4. Writes bench/results/tiles-<date>.md with medians, p95, sizes and the ratios.

Requests are sequential (latency, not throughput), bounded by tile count and a time limit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass

from bench import features
from catalog.features import mvt as vector_tiles
from catalog.portal.tiles import TileBounds

PLACES = {"Bishkek": (74.59, 42.87), "Osh": (72.80, 40.53)}
ZOOMS = (6, 8, 10, 12, 14)
TIME_LIMIT_S = 600


@dataclass
class Sample:
    seconds: float
    size: int


def tile_at(z: int, lon: float, lat: float) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def tiles_for(z: int, per_zoom: int) -> list[TileBounds]:
    """`per_zoom` distinct tiles around the places, spiralling out from their centres."""
    chosen: list[TileBounds] = []
    radius = 0
    while len(chosen) < per_zoom and radius < 8:
        for lon, lat in PLACES.values():
            cx, cy = tile_at(z, lon, lat)
            for dx in range(-radius, radius + 1):
                for dy in range(-radius, radius + 1):
                    if max(abs(dx), abs(dy)) != radius:
                        continue
                    tile = TileBounds.checked(z, cx + dx, cy + dy)
                    if tile not in chosen and len(chosen) < per_zoom:
                        chosen.append(tile)
        radius += 1
    return chosen


def fetch(url: str) -> Sample:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        body = answer.read()
        if answer.status != 200:
            raise SystemExit(f"{url}: HTTP {answer.status}")
    return Sample(time.perf_counter() - started, len(body))


def summary(samples: list[Sample]) -> tuple[float, float, float]:
    times = sorted(s.seconds * 1000 for s in samples)
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    return statistics.median(times), p95, statistics.median(s.size for s in samples) / 1024


def measure(base: str, version: int, per_zoom: int, deadline: float) -> list[tuple]:
    rows = []
    for z in ZOOMS:
        cold, warm, peer = [], [], []
        for tile in tiles_for(z, per_zoom):
            if time.monotonic() > deadline:
                raise SystemExit("time limit reached")
            url = f"{base}/tiles/{features.COLLECTION}/{version}/{z}/{tile.x}/{tile.y}.mvt"
            cold.append(fetch(url))
            warm.append(fetch(url))
            west, south, east, north = tile.lonlat
            peer.append(fetch(f"{base}/ogc/collections/{features.COLLECTION}/items?f=json"
                              f"&limit={vector_tiles.FEATURE_CAP}"
                              f"&bbox={west:.6f},{south:.6f},{east:.6f},{north:.6f}"))
        rows.append((z, summary(cold), summary(warm), summary(peer)))
        print(f"z{z}: cold {rows[-1][1][0]:.0f} ms, warm {rows[-1][2][0]:.1f} ms, "
              f"GeoJSON {rows[-1][3][0]:.0f} ms", flush=True)
    return rows


def report(rows: list[tuple], count: int, per_zoom: int) -> str:
    lines = [
        f"# Tiles on {count:,} synthetic parcels ({dt.date.today().isoformat()})",
        "",
        f"`python -m bench.tiles --count {count} --per-zoom {per_zoom}`: sequential requests to "
        "`taza serve` (2 gunicorn workers) on 127.0.0.1; the same tiles at each zoom around "
        f"{', '.join(PLACES)}. Feature cap {vector_tiles.FEATURE_CAP} per tile (thinned beyond).",
        "Peer: `items?bbox=<tile>&limit=<cap>&f=json` from our OGC API Features on the same "
        "server. Times: median / p95 in ms; sizes: median KiB.",
        "",
        "| zoom | MVT cold | MVT warm (cache) | GeoJSON items | GeoJSON ÷ MVT cold | "
        "GeoJSON ÷ MVT warm | MVT KiB | GeoJSON KiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for z, cold, warm, peer in rows:
        lines.append(f"| {z} | {cold[0]:.0f} / {cold[1]:.0f} | {warm[0]:.1f} / {warm[1]:.1f} | "
                     f"{peer[0]:.0f} / {peer[1]:.0f} | {peer[0] / cold[0]:.2f} | "
                     f"{peer[0] / warm[0]:.0f} | "
                     f"{cold[2]:.0f} | {peer[2]:.0f} |")
    lines += ["", "The machine is shared and noisy: read the ratios, not the absolute times.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tiles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--per-zoom", type=int, default=12)
    args = parser.parse_args(argv)
    figures = features.publish_and_report(args.count, reuse=True)
    home = features.WORK / "home"
    shutil.rmtree(home / "cache", ignore_errors=True)  # cold tiles really are cold
    version = int(figures.gpkg.parent.name)
    port = features.free_port()
    base = f"http://127.0.0.1:{port}"
    logs = features.WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    server = features.start("ours", [sys.executable, "-m", "catalog.cli", "serve", "--workers",
                                     "2", "--port", str(port)],
                            dict(os.environ, TAZA_HOME=str(home)), f"{base}/ogc",
                            logs / "tiles-server.log")
    try:
        rows = measure(base, version, args.per_zoom, time.monotonic() + TIME_LIMIT_S)
    finally:
        features.stop(server)
    text = report(rows, args.count, args.per_zoom)
    features.RESULTS.mkdir(parents=True, exist_ok=True)
    out = features.RESULTS / f"tiles-{dt.date.today().isoformat()}.md"
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
