"""`taza cluster up|down|status`: the cluster on one machine (catalog/cluster/local.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from catalog import settings
from catalog.cluster.local import STATE_FILE, ClusterError, ClusterRunning, LocalCluster
from catalog.cluster.nginx import NginxUnavailable, Proxy
from catalog.cluster.objectstore import ObjectStoreError
from catalog.cluster.postgres import PostgresUnavailable

DEFAULT_FOLDER = settings.PROJECT_ROOT / "var" / "cluster"
DEFAULT_PORT = 5080


def add_commands(commands: argparse._SubParsersAction) -> None:
    cluster = commands.add_parser("cluster", help="app nodes behind nginx on this machine")
    actions = cluster.add_subparsers(required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start the nodes and nginx, publish the samples")
    up.add_argument("--port", type=int,
                    default=int(os.environ.get("CLUSTER_PORT", DEFAULT_PORT)))
    up.add_argument("--nodes", type=int, choices=range(1, 5), default=2)
    up.add_argument("--no-publish", action="store_true",
                    help="do not publish the sample datasets")
    up.add_argument("--no-object-store", dest="object_store", action="store_false",
                    help="keep published files in the home instead of an S3 bucket")
    up.add_argument("--no-database", dest="database", action="store_false",
                    help="the embedded profile: no PostgreSQL, no worker (SQLite, files)")
    up.add_argument("--shared-home", dest="own_homes", action="store_false", default=None,
                    help="one catalog home for every node and the worker (the default with "
                         "the database and the object store: a home of their own each)")
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop everything `up` started")
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help="what runs, as JSON")
    status.set_defaults(handler=_status)
    config = actions.add_parser(
        "nginx-config", help="print the nginx configuration for nodes elsewhere (containers)")
    config.add_argument("--upstream", action="append", required=True,
                        help="an app node's HOST:PORT (repeat for each node)")
    config.add_argument("--listen", default="0.0.0.0:80", help="ADDRESS:PORT nginx listens on")
    config.add_argument("--nginx-folder", default="/var/lib/taza-nginx",
                        help="nginx's folder for logs, temp files and PID inside its machine")
    config.add_argument("--user", default="nginx", help="the user nginx's workers run as")
    config.set_defaults(handler=_nginx_config)
    for action in (up, down, status):
        action.add_argument("--folder", type=Path, default=DEFAULT_FOLDER,
                            help=f"the cluster's folder (default {DEFAULT_FOLDER})")


def _own_homes(folder: Path, asked: bool | None) -> bool:
    """Homes of their own unless asked otherwise, or unless the folder's cluster ran with one
    shared home before (its versions' records may be only in that home: `taza migrate` them
    first)."""
    if asked is not None:
        return asked
    try:
        return bool(json.loads((folder / STATE_FILE).read_text()).get("own_homes", False))
    except FileNotFoundError:
        return not (folder / "home" / "datasets").exists()


def _up(args) -> int:
    folder = args.folder.resolve()
    cluster = LocalCluster(folder, args.port, object_store=args.object_store,
                           database=args.database, own_homes=_own_homes(folder, args.own_homes))
    try:
        cluster.up(node_count=args.nodes)
    except ClusterRunning as err:  # the running cluster is left alone, not stopped
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ClusterError, NginxUnavailable, ObjectStoreError, PostgresUnavailable,
            psycopg.Error, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", None) or str(err)
        print(f"error: {detail.strip()}", file=sys.stderr)
        cluster.down()
        return 1
    if not args.no_publish:
        # The same `taza publish` as on one machine, into the home the nodes serve: they take
        # the new release up without a restart.
        published = subprocess.run(
            [sys.executable, "-m", "catalog.cli", "--home", str(cluster.home), "publish",
             "--all"], env=dict(os.environ, **cluster.environment()), check=False)
        if published.returncode != 0:
            print("error: publishing the samples failed; the cluster runs (taza cluster down "
                  "to stop it)", file=sys.stderr)
            return 1
    names = ", ".join(f"{node.name} on {node.url}" for node in cluster.nodes)
    print(f"cluster: {cluster.url} (nginx in front of {names}); stop with `make cluster-stop`")
    return 0


def _nginx_config(args) -> int:
    address, _, port = args.listen.rpartition(":")
    if not address or not port.isdigit():
        print(f"error: --listen: ADDRESS:PORT, got {args.listen!r}", file=sys.stderr)
        return 2
    proxy = Proxy(Path(args.nginx_folder), int(port), tuple(args.upstream), listen=address)
    print(proxy.config_text(run_as=args.user, daemonize=False), end="")
    return 0


def _existing(args) -> LocalCluster | None:
    try:
        return LocalCluster.existing(args.folder.resolve())
    except FileNotFoundError:
        return None


def _down(args) -> int:
    cluster = _existing(args)
    if cluster is None:
        print(f"no cluster in {args.folder}")
        return 0
    cluster.down()
    print("cluster stopped")
    return 0


def _status(args) -> int:
    cluster = _existing(args)
    print(json.dumps(cluster.status() if cluster else {"running": False}, indent=2))
    return 0
