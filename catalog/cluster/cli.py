"""`taza cluster up|down|status|nginx-config`: the cluster on one machine
(catalog/cluster/local.py)."""

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
from catalog.core.operator_texts import OperatorTexts, SayError, error_line

DEFAULT_FOLDER = settings.PROJECT_ROOT / "var" / "cluster"
DEFAULT_PORT = 5080

# What these commands say, in the operator's language (catalog/core/operator_texts.py).
say = OperatorTexts(Path(__file__).with_name("cli_texts.yml"))


def add_commands(commands: argparse._SubParsersAction,
                 say_error: SayError) -> None:
    """`say_error` says a failure (a process, nginx, PostgreSQL, the object store) in the
    operator's language where it carries a text, else as it is (catalog/cli.py)."""
    cluster = commands.add_parser("cluster", help=say("help.cluster"))
    actions = cluster.add_subparsers(required=True, metavar="ACTION")
    up = actions.add_parser("up", help=say("help.up"))
    up.add_argument("--port", type=int,
                    default=int(os.environ.get("CLUSTER_PORT", DEFAULT_PORT)))
    up.add_argument("--nodes", type=int, choices=range(1, 5), default=2)
    up.add_argument("--no-publish", action="store_true", help=say("help.up.no_publish"))
    up.add_argument("--no-object-store", dest="object_store", action="store_false",
                    help=say("help.up.no_object_store"))
    up.add_argument("--no-database", dest="database", action="store_false",
                    help=say("help.up.no_database"))
    up.add_argument("--shared-home", dest="own_homes", action="store_false", default=None,
                    help=say("help.up.shared_home"))
    up.set_defaults(handler=lambda args: _up(args, say_error))
    down = actions.add_parser("down", help=say("help.down"))
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help=say("help.status"))
    status.set_defaults(handler=_status)
    config = actions.add_parser("nginx-config", help=say("help.nginx_config"))
    config.add_argument("--upstream", action="append", required=True,
                        help=say("help.nginx_config.upstream"))
    config.add_argument("--listen", default="0.0.0.0:80", help=say("help.nginx_config.listen"))
    config.add_argument("--nginx-folder", default="/var/lib/taza-nginx",
                        help=say("help.nginx_config.nginx_folder"))
    config.add_argument("--user", default="nginx", help=say("help.nginx_config.user"))
    config.set_defaults(handler=_nginx_config)
    for action in (up, down, status):
        # argparse %-formats help: a percent sign in the folder's path is written twice.
        action.add_argument("--folder", type=Path, default=DEFAULT_FOLDER,
                            help=say("help.folder", folder=str(DEFAULT_FOLDER).replace("%", "%%")))


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


def _up(args, say_error: SayError) -> int:
    folder = args.folder.resolve()
    cluster = LocalCluster(folder, args.port, object_store=args.object_store,
                           database=args.database, own_homes=_own_homes(folder, args.own_homes))
    try:
        cluster.up(node_count=args.nodes)
    except ClusterRunning as err:  # the running cluster is left alone, not stopped
        print(error_line(say_error(err)), file=sys.stderr)
        return 1
    except (ClusterError, NginxUnavailable, ObjectStoreError, PostgresUnavailable,
            psycopg.Error, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", None) or say_error(err)  # a process's own words
        print(error_line(detail.strip()), file=sys.stderr)
        cluster.down()
        return 1
    if not args.no_publish:
        # The same `taza publish` as on one machine, into the home the nodes serve: they take
        # the new release up without a restart.
        published = subprocess.run(
            [sys.executable, "-m", "catalog.cli", "--home", str(cluster.home), "publish",
             "--all"], env=dict(os.environ, **cluster.environment()), check=False)
        if published.returncode != 0:
            print(error_line(say("error.publish_failed")), file=sys.stderr)
            return 1
    nodes = ", ".join(say("node", name=node.name, url=node.url) for node in cluster.nodes)
    print(say("done.up", url=cluster.url, nodes=nodes))
    return 0


def _nginx_config(args) -> int:
    address, _, port = args.listen.rpartition(":")
    if not address or not port.isdigit():
        print(error_line(say("error.listen", listen=args.listen)), file=sys.stderr)
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
        print(say("done.no_cluster", folder=args.folder))
        return 0
    cluster.down()
    print(say("done.down"))
    return 0


def _status(args) -> int:
    cluster = _existing(args)
    print(json.dumps(cluster.status() if cluster else {"running": False}, indent=2))
    return 0
