"""A cluster on one machine (`make cluster`, `taza cluster up|down|status`): app nodes behind nginx.

    <folder>/home/        the catalog home of the publishers (`taza publish`), and the one
                          every node serves unless nodes have homes of their own
    <folder>/nodes/<n>/   one app node: its own cache (TAZA_CACHE_DIR), log and PID file, and
                          with the database and the object store its own home (home/)
    <folder>/nginx/       nginx's configuration, logs, temp files and PID file
    <folder>/objectstore/ the S3 server the published files go to, when asked for (Ceph's
                          RADOS Gateway, catalog/cluster/objectstore.py; data on disk)
    <folder>/postgres/    the private PostgreSQL 15 + PostGIS of the PostgreSQL profile, when
                          asked for (catalog/cluster/postgres.py; data on disk)
    <folder>/worker/      `taza worker` (the job queue's worker: procrastinate on PostgreSQL)
    <folder>/cluster.json what runs where (ports), for `down` and `status`

On the PostgreSQL profile every node, the worker and the publishers get TAZA_DATABASE_URL: the
stores, the stewards' state, the jobs and the release records are in that database. With the
object store too, nothing needed to serve or publish is in a home (versions' records and static
STAC trees in the database, files and drafts' uploads in the bucket): each node and the worker
then get a home of their own (`<folder>/nodes/<n>/home/`, `<folder>/worker/home/`), used as
cache and scratch only, as on separate machines. They share only the audit key file (a secret
every node is given), each keeping its own head file.

Each node is `taza serve` (gunicorn, its own workers) in a process group of its own, on a loopback
port of its own; nginx on `port` is the only address clients use. Everything started is recorded
by PID in the folder, so `down` stops exactly that and leaves nothing running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from catalog.cluster import objectstore
from catalog.cluster.nginx import Proxy, ProxySettings
from catalog.cluster.postgres import PrivatePostgres
from catalog.cluster.processes import alive, stop_process

STATE_FILE = "cluster.json"
ASSETS_BUCKET = "taza"
ASSETS_URL = f"s3://{ASSETS_BUCKET}/catalog"
NODE_NAMES = ("node-a", "node-b", "node-c", "node-d")
DATABASE = "taza"


class ClusterError(RuntimeError):
    """The cluster could not start (the message says which part and where its log is)."""


class ClusterRunning(ClusterError):
    """A cluster already runs from that folder: nothing was started (nor may be stopped)."""


@dataclass(frozen=True)
class Node:
    name: str
    port: int
    folder: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid_file(self) -> Path:
        return self.folder / "node.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "node.log"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and alive(pid)


@dataclass
class LocalCluster:
    folder: Path
    port: int
    nodes: list[Node] = field(default_factory=list)
    proxy_settings: ProxySettings = ProxySettings()
    workers: int = 2
    catalog_home: Path | None = None  # another catalog home to serve (a benchmark's)
    object_store: bool = False  # published files in a bucket of our own S3 server
    database: bool = False  # the PostgreSQL profile, on a private PostgreSQL of our own
    database_url: str | None = None  # the PostgreSQL profile on a database run by others
    extra_environment: dict[str, str] = field(default_factory=dict)  # for nodes and worker
    own_homes: bool = False  # homes of their own (the database + object store profile only)
    objectstore_kind: str = "bluestore"  # memstore for tests (objects in RAM)

    @property
    def home(self) -> Path:
        return self.catalog_home or self.folder / "home"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proxy(self) -> Proxy:
        return Proxy(self.folder / "nginx", self.port, tuple(n.address for n in self.nodes),
                     self.proxy_settings)

    @classmethod
    def existing(cls, folder: Path) -> LocalCluster:
        state = json.loads((folder / STATE_FILE).read_text())
        home = state.get("home")
        return cls(folder, state["port"],
                   [Node(n["name"], n["port"], folder / "nodes" / n["name"])
                    for n in state["nodes"]], workers=state.get("workers", 2),
                   catalog_home=Path(home) if home else None,
                   object_store=state.get("object_store", False),
                   database=state.get("database", False),
                   own_homes=state.get("own_homes", False))

    @property
    def separate_homes(self) -> bool:
        """Whether each node and the worker have a home of their own (nothing shared on disk)."""
        return bool(self.own_homes) and self.object_store and (
            self.database or self.database_url is not None)

    def node_home(self, node: Node) -> Path:
        return node.folder / "home" if self.separate_homes else self.home

    @property
    def worker_home(self) -> Path:
        return self.worker_pid_file.parent / "home" if self.separate_homes else self.home

    def _home_environment(self, home: Path) -> dict[str, str]:
        """A process's home; with homes of their own, the shared audit key and a head file
        of its own."""
        environment = {"TAZA_HOME": str(home)}
        if self.separate_homes:
            environment |= {
                "TAZA_AUDIT_KEY_FILE": str(self.home / "keys" / "audit.key"),
                "TAZA_AUDIT_HEAD_FILE": str(home / "keys" / "audit.head")}
        return environment

    @property
    def object_store_folder(self) -> Path:
        return self.folder / "objectstore"

    @property
    def postgres(self) -> PrivatePostgres:
        return PrivatePostgres.existing(self.folder / "postgres")

    @property
    def worker_pid_file(self) -> Path:
        return self.folder / "worker" / "worker.pid"

    def environment(self) -> dict[str, str]:
        """What nodes, the worker and publishers need beyond the home: the bucket and its
        AWS_* keys, the database."""
        environment = {}
        if self.object_store:
            store = objectstore.load(self.object_store_folder)
            environment |= store.environment() | {"TAZA_ASSETS_URL": ASSETS_URL}
        url = self.database_url or (self.postgres.url(DATABASE) if self.database else None)
        if url:
            environment["TAZA_DATABASE_URL"] = url
        if self.separate_homes:  # publishers sign the audit log with the nodes' key
            environment["TAZA_AUDIT_KEY_FILE"] = str(self.home / "keys" / "audit.key")
        return environment

    def up(self, node_count: int = 2, environment: dict[str, str] | None = None) -> None:
        """Start `node_count` app nodes and nginx; returns when all answer /healthz."""
        if (self.folder / STATE_FILE).exists() and LocalCluster.existing(self.folder).running():
            raise ClusterRunning(f"a cluster already runs from {self.folder} "
                               "(taza cluster down first)")
        self.home.mkdir(parents=True, exist_ok=True)
        if self.object_store:
            # bluestore: the bucket outlives `down`, as the home its versions point into does.
            store = objectstore.start(self.object_store_folder,
                                      objectstore=self.objectstore_kind)
            objectstore.create_bucket(store, ASSETS_BUCKET)
        if self.database and not self.database_url:
            self._start_postgres()
        self.extra_environment = dict(environment or {})
        environment = self.environment() | self.extra_environment
        self.nodes = [Node(name, _free_port(), self.folder / "nodes" / name)
                      for name in NODE_NAMES[:node_count]]
        self._save()
        for node in self.nodes:
            self.start_node(node, environment)
        if "TAZA_DATABASE_URL" in environment:
            self._start_worker(environment)
        for node in self.nodes:
            _wait_until_healthy(node.url, node.log_file, node)
        if "TAZA_DATABASE_URL" in environment:
            # pgstac's schema is installed by the first process that searches; workers of
            # several nodes doing it at once collide on CREATE ROLE (one answers 500), so one
            # node does it before clients come.
            _wait_until_healthy(self.nodes[0].url, self.nodes[0].log_file, self.nodes[0],
                                path="/stac/search?limit=1")
        self.proxy.folder.mkdir(parents=True, exist_ok=True)
        self.proxy.start()
        _wait_until_healthy(self.url, self.proxy.folder / "error.log")

    def start_node(self, node: Node, environment: dict[str, str] | None = None) -> None:
        """Start (or restart) one node: `taza serve` in a process group of its own, with the
        settings `up` gave every node (a restarted node must not fall back to another
        profile)."""
        (node.folder / "cache").mkdir(parents=True, exist_ok=True)
        self.node_home(node).mkdir(parents=True, exist_ok=True)
        environment = environment or self.environment() | self.extra_environment
        env = dict(os.environ, **environment)
        env |= self._home_environment(self.node_home(node)) | {
            "TAZA_NODE": node.name, "TAZA_CACHE_DIR": str(node.folder / "cache"),
            "TAZA_TRUSTED_PROXIES": "1"}
        with node.log_file.open("a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "catalog.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(node.port), "--workers", str(self.workers),
                 "--public-url", self.url],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        node.pid_file.write_text(str(process.pid))

    def _start_postgres(self) -> None:
        """The private PostgreSQL (durable: its data outlives `down`, as the home's does),
        on the port it had before, or a free one."""
        folder = self.folder / "postgres"
        try:
            postgres = PrivatePostgres.existing(folder)
        except FileNotFoundError:
            postgres = PrivatePostgres(folder, _free_port())
        postgres.start(durable=True)
        postgres.create_database(DATABASE)

    def _start_worker(self, environment: dict[str, str]) -> None:
        """`taza worker`: runs the queued jobs (publishes through /api) beside the nodes'."""
        self.worker_pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.worker_home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **environment)
        env |= self._home_environment(self.worker_home) | {"TAZA_NODE": "worker"}
        with (self.worker_pid_file.parent / "worker.log").open("a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "catalog.cli", "worker"], env=env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.worker_pid_file.write_text(str(process.pid))

    def worker_pid(self) -> int | None:
        try:
            return int(self.worker_pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def stop_node(self, node: Node, *, kill: bool = False) -> None:
        """Stop one node's process group (`kill`: SIGKILL at once, as a crash would)."""
        pid = node.pid()
        if pid is not None:
            stop_process(pid, signal.SIGKILL if kill else signal.SIGTERM, group=True)
        node.pid_file.unlink(missing_ok=True)

    def running(self) -> bool:
        return (any(node.running() for node in self.nodes) or self.proxy.pid() is not None
                or self._object_store_running() or self._worker_running()
                or self._postgres_running())

    def _worker_running(self) -> bool:
        pid = self.worker_pid()
        return pid is not None and alive(pid)

    def _postgres_running(self) -> bool:
        try:
            return self.database and self.postgres.running()
        except FileNotFoundError:
            return False

    def _object_store_running(self) -> bool:
        try:
            return objectstore.load(self.object_store_folder).running()
        except FileNotFoundError:
            return False

    def down(self) -> None:
        """Stop nginx, then every node; leaves the folder's data (the catalog home) in place."""
        self.proxy.stop()
        for node in self.nodes:
            self.stop_node(node)
        pid = self.worker_pid()
        if pid is not None:
            stop_process(pid, signal.SIGTERM, group=True)
            self.worker_pid_file.unlink(missing_ok=True)
        objectstore.stop(self.object_store_folder)
        if self._postgres_running():
            self.postgres.stop()

    def status(self) -> dict:
        return {"url": self.url, "nginx": self.proxy.pid() is not None,
                "object_store": self._object_store_running(),
                "database": self._postgres_running() or self.database_url is not None,
                "worker": self._worker_running(),
                "nodes": {node.name: {"url": node.url, "running": node.running()}
                          for node in self.nodes}}

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / STATE_FILE).write_text(json.dumps(
            {"port": self.port, "workers": self.workers, "home": str(self.home),
             "object_store": self.object_store, "database": self.database,
             "own_homes": self.separate_homes,
             "nodes": [{"name": n.name, "port": n.port} for n in self.nodes]}, indent=2))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(url: str, log: Path, node: Node | None = None,
                        timeout: float = 90, path: str = "/healthz") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node is not None and not node.running():
            raise ClusterError(f"{node.name} exited while starting; see {log}")
        try:
            with urlopen(f"{url}{path}", timeout=30) as answer:  # noqa: S310 (loopback URL)
                if answer.status == 200:
                    return
        except (URLError, OSError):
            pass
        time.sleep(0.2)
    raise ClusterError(f"{url} did not answer {path} within {timeout:.0f} s; see {log}")
