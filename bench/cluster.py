"""Two app nodes against one, behind the same nginx (issue 13: at least 1.8x on page and bbox).

    python -m bench cluster [--count 1000000] [--duration 30] [--database]

Publishes the synthetic parcels (bench/features.py), then runs the cluster of catalog/cluster
twice over that home: one node, then two, each node with ONE gunicorn worker (4 threads), so
that on this 2-core machine a node is sized to a core and the second node has a core to use.
wrk (16 connections) sends the page and bbox queries through nginx, every bbox moved per
request. Writes bench/results/cluster-<date>.md. nginx and wrk share the two cores with the
nodes: the ratio is a lower bound of what two machines give.

`--database`: the PostgreSQL profile, as `make cluster` runs it: a private PostgreSQL under
bench/.work/cluster-pg, the home moved into it with `taza migrate` (the parcels in PostGIS, the
release records and the stewards' state in `taza_state`), the nodes and a worker on
TAZA_DATABASE_URL. Writes bench/results/cluster-postgresql-<date>.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import features
from catalog.cluster.local import LocalCluster
from catalog.cluster.nginx import ProxySettings
from catalog.cluster.postgres import PrivatePostgres

QUERIES = [features.Query("items?limit=100", ["?limit=100"]),
           features.Query("bbox (5 km town boxes, limit=100)",
                          [f"?limit=100&bbox={box}" for box in features.town_boxes()],
                          "each box moved randomly per request")]
TARGET = 1.8
UNLIMITED = ProxySettings(requests_per_second=1_000_000, burst=1_000_000,
                          connections_per_client=4096)


PG_FOLDER = features.WORK / "cluster-pg"
PG_DATABASE = "cluster_bench"


def measure(home: Path, nodes: int, duration: int,
            database_url: str | None = None) -> dict[str, dict]:
    folder = features.WORK / f"cluster-{nodes}"
    shutil.rmtree(folder, ignore_errors=True)
    # One client address sends all the load: nginx's per-address limits would answer it 429.
    cluster = LocalCluster(folder, features.free_port(), workers=1, catalog_home=home,
                           proxy_settings=UNLIMITED, database_url=database_url)
    cluster.up(node_count=nodes)
    try:
        server = features.Server(f"{nodes} node(s)", f"{cluster.url}/ogc", None, folder)
        for query in QUERIES:  # warm each node's connection pools and page cache
            features.run_wrk(server, query, 3)
        return {query.name: _with_cpu(lambda q=query: features.run_wrk(server, q, duration))
                for query in QUERIES}
    finally:
        cluster.down()


# -- where the machine's CPU goes ------------------------------------------------------------

GROUPS = ("nodes", "postgresql", "nginx", "wrk", "other")


def _with_cpu(run) -> dict:
    """wrk's figures, with the CPU each group of processes spent per request meanwhile (ms)
    and the share of the machine's time the hypervisor took (steal)."""
    before, steal_before, children_before = cpu_by_group(), _machine_times(), _children_cpu()
    figures = run()
    after, steal_after = cpu_by_group(), _machine_times()
    # wrk has exited by now, its seconds gone from /proc: they are this process's children's.
    after["wrk"] += _children_cpu() - children_before
    requests = max(figures["requests"], 1)
    figures["cpu_ms"] = {group: (after[group] - before[group]) * 1000 / requests
                         for group in GROUPS}
    total = steal_after[2] - steal_before[2]
    figures["steal"] = (steal_after[0] - steal_before[0]) / total if total else 0.0
    figures["idle"] = (steal_after[1] - steal_before[1]) / total if total else 0.0
    return figures


def cpu_by_group() -> dict[str, float]:
    """CPU seconds (user + system) of every process on the machine, by what it is: the app
    nodes (gunicorn's catalog.app processes), PostgreSQL, nginx, wrk, everything else but
    this process. A process that ends during a run takes its seconds with it: none should."""
    totals = dict.fromkeys(GROUPS, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        totals[_group(name, command)] += seconds
    return totals


def _group(name: str, command: str) -> str:
    if "catalog.app" in command:
        return "nodes"
    if name.startswith("postgres") or command.startswith("postgres"):
        return "postgresql"
    if name.startswith("nginx"):
        return "nginx"
    return "wrk" if name == "wrk" else "other"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_times() -> tuple[int, int, int]:
    """(steal, idle, all) jiffies of the machine's CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[7], values[3] + values[4], sum(values[:8])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per row")
    parser.add_argument("--database", action="store_true",
                        help="the PostgreSQL profile (PostGIS features, records in the database)")
    args = parser.parse_args(argv)
    features.ensure_debian_packages()
    subprocess.run(["scripts/install-system-deps", "cluster"], cwd=features.ROOT, check=True)
    features.publish_and_report(args.count, reuse=True)
    home = features.WORK / "home"
    postgres = _database(home) if args.database else None
    try:
        url = postgres.url(PG_DATABASE) if postgres else None
        one = measure(home, 1, args.duration, url)
        two = measure(home, 2, args.duration, url)
    finally:
        if postgres is not None:
            postgres.stop()
    text = report(args, one, two)
    features.RESULTS.mkdir(exist_ok=True)
    profile = "postgresql-" if args.database else ""
    out = features.RESULTS / f"cluster-{profile}{time.strftime('%Y-%m-%d')}.md"
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return 0


def _database(home: Path) -> PrivatePostgres:
    """The private PostgreSQL, the home moved into a fresh database of it (`taza migrate`)."""
    PG_FOLDER.mkdir(parents=True, exist_ok=True)
    PG_FOLDER.chmod(0o755)  # run as root, the server runs as the postgres user
    port = PrivatePostgres.existing(PG_FOLDER).port if (PG_FOLDER / "cluster.json").exists() \
        else features.free_port()
    postgres = PrivatePostgres(PG_FOLDER, port)
    postgres.start(durable=False)
    postgres.drop_database(PG_DATABASE)
    url = postgres.create_database(PG_DATABASE)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "catalog.cli", "migrate", "--to", url],
                   env=dict(os.environ, TAZA_HOME=str(home)), cwd=features.ROOT, check=True)
    print(f"migrated into PostgreSQL in {time.monotonic() - started:.0f} s", flush=True)
    return postgres


def _rps(figures: dict) -> float:
    return figures["requests"] / (figures["duration_us"] / 1e6)


def report(args, one: dict[str, dict], two: dict[str, dict]) -> str:
    profile = "PostgreSQL profile (PostGIS features, records in the database)" \
        if args.database else "embedded profile (GeoPackage)"
    lines = [f"# Two nodes against one behind nginx, {time.strftime('%Y-%m-%d %H:%M UTC')}", "",
             f"`python -m bench cluster --count {args.count} --duration {args.duration}"
             f"{' --database' if args.database else ''}`: "
             f"{args.count:,} synthetic parcels; {profile}; "
             f"each node 1 gunicorn worker x 4 threads; nginx "
             f"and wrk (16 connections) on the same 2 cores. Target: two nodes >= {TARGET}x.", "",
             "| query | 1 node req/s (p50) | 2 nodes req/s (p50) | ratio | target met | "
             "non-2xx 1/2 |", "|---|---|---|---|---|---|"]
    for query in QUERIES:
        a, b = one[query.name], two[query.name]
        ratio = _rps(b) / _rps(a)
        lines.append(f"| {query.name} | {_rps(a):,.0f} ({a['p50_us'] / 1000:.1f} ms) | "
                     f"{_rps(b):,.0f} ({b['p50_us'] / 1000:.1f} ms) | {ratio:.2f}x | "
                     f"{'yes' if ratio >= TARGET else 'no'} | {a['non2xx']}/{b['non2xx']} |")
    lines += ["", "CPU per request (ms, user + system, from /proc and wrk's rusage during each "
              "run), and the machine's idle and steal (its hypervisor's) shares:", "",
              "| query | nodes | " + " | ".join(GROUPS[1:]) + " | idle | steal |",
              "|---|" + "---|" * (len(GROUPS) + 2)]
    for query in QUERIES:
        for count, figures in (("1 node", one[query.name]), ("2 nodes", two[query.name])):
            cpu = figures["cpu_ms"]
            lines.append(f"| {query.name}, {count} | "
                         + " | ".join(f"{cpu[group]:.2f}" for group in GROUPS)
                         + f" | {figures['idle']:.0%} | {figures['steal']:.0%} |")
    lines += ["", "What the two cores allow: at the CPU the machine spends per request with two "
              "nodes (S2, every group above), two nodes serve at most 2 cores / S2; against one "
              "node's measured rate R1 the ratio cannot pass 2 / (S2 x R1):", "",
              "| query | S2 (ms) | bound from the CPU measured | ratio measured |",
              "|---|---|---|---|"]
    for query in QUERIES:
        spent = sum(two[query.name]["cpu_ms"].values())
        bound = 2000 / (spent * _rps(one[query.name])) if spent else 0.0
        lines.append(f"| {query.name} | {spent:.2f} | {bound:.2f}x | "
                     f"{_rps(two[query.name]) / _rps(one[query.name]):.2f}x |")
    return "\n".join(lines) + "\n"
