"""Benchmarks: `python -m bench [features|parcels|publish] ...` (default: features).

- features: publish the synthetic parcels, then load-test our OGC API Features against stock
  pygeoapi on the same GeoPackage; writes bench/results/features-<date>.md.
- parcels: only generate the synthetic parcel layer (bench/.work/parcels).
- publish: generate (if needed) and publish it, report wall time and peak memory.
- versus: features under load against tipg and pygeoapi's PostgreSQL provider on PostGIS, and
  stock pygeoapi, every request with its own random values (bench/versus.py).
- stac_load: STAC search under load against stac-fastapi-pgstac (bench/stac_load.py).
- all: versus, then stac_load (what `make bench` runs; BENCH_ARGS passes --count/--items etc.).
- stac: STAC search, one client at a time, against stac-fastapi-pgstac (bench/stac_search.py).
- stac_plans: stac_load's rows searched in process against our index, with and without range
  plans (bench/stac_plans.py).
- tiles: vector tiles against the equivalent GeoJSON items requests (bench/tiles.py).
- processes: the OGC API processes, whole country, against in-process and shapely peers.
- upload: a 1 GB GeoPackage through the stewards' API (bench/upload.py).
- raster_publish: a 4-gigapixel raster through the API and `taza publish`: peak memory of the
  server and of the isolated reader processes (bench/raster_publish.py).
- cluster: two app nodes against one behind nginx (bench/cluster.py).
- readers: isolated reader starts, forked from the zygote against fresh interpreters
  (bench/readers.py).
Each of stac, tiles, processes, upload and raster_publish takes its own options (--help).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bench import features


def run_all(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench all")
    parser.add_argument("--count", type=int, default=1_000_000, help="synthetic parcels")
    parser.add_argument("--items", type=int, default=1_000_000, help="synthetic STAC items")
    parser.add_argument("--duration", type=int, default=30, help="seconds per server and row")
    args = parser.parse_args(argv)
    duration = ["--duration", str(args.duration)]
    failed = importlib.import_module("bench.versus").main(["--count", str(args.count),
                                                           *duration])
    return failed or importlib.import_module("bench.stac_load").main(
        ["--items", str(args.items), *duration])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv.insert(0, "features")
    standalone = {"stac": "bench.stac_search", "tiles": "bench.tiles",
                  "processes": "bench.processes", "upload": "bench.upload",
                  "raster_publish": "bench.raster_publish", "versus": "bench.versus",
                  "stac_load": "bench.stac_load", "cluster": "bench.cluster",
                  "stac_plans": "bench.stac_plans", "readers": "bench.readers"}
    if argv[0] == "all":  # both comparisons of issue 14, each with its own options
        return run_all(argv[1:])
    if argv[0] in standalone:  # benchmarks with their own options (--help)
        return importlib.import_module(standalone[argv[0]]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    features.add_arguments(commands.add_parser("features", help="features load test"))
    generate = commands.add_parser("parcels", help="generate the synthetic parcels")
    generate.add_argument("--count", type=int, default=1_000_000)
    publish = commands.add_parser("publish", help="time `taza publish` of the parcels")
    publish.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    args.command_line = ["python", "-m", "bench", *argv]
    if args.command == "features":
        return features.run(args)
    if args.command == "parcels":
        features.ensure_parcels(args.count)
        return 0
    return features.publish_only(args)


if __name__ == "__main__":
    sys.exit(main())
