"""A private single-node Ceph RADOS Gateway: a real S3 server for tests and `make cluster`.

Everything lives under one folder (config, monitor and OSD data, logs, pid files), the daemons
listen on 127.0.0.1 only, on ports below 32768 (the kernel hands out ephemeral ports above),
and `stop` ends exactly the processes whose pids it wrote. Authentication inside the cluster is
off (one process tree on loopback); the S3 side checks the access key and secret as any S3
server does. Data sits in RAM (Ceph's memstore) unless `objectstore="bluestore"` is asked for.

    python -m catalog.cluster.objectstore start FOLDER [--port P]   # prints the AWS_* settings
    python -m catalog.cluster.objectstore stop FOLDER
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from catalog.cluster.processes import alive, stop_process

STATE_FILE = "objectstore.json"  # ports, keys, kind: kept while the folder is
PIDS_FILE = "pids.json"  # the running daemons: removed when they are stopped
PORT_RANGE = (20000, 32000)  # below the kernel's ephemeral ports, which start at 32768
START_TIMEOUT = 120  # seconds; a cold start from an empty folder takes a few here
DAEMONS = ("mon", "osd", "rgw")  # start order; stopped in reverse
USER = "taza"


class ObjectStoreError(RuntimeError):
    """The object store did not start (the message names the daemon and its log)."""


@dataclass(frozen=True)
class ObjectStore:
    folder: Path
    port: int
    mon_port: int
    access_key: str
    secret_key: str
    objectstore: str = "memstore"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The AWS_* settings a client (boto3, GDAL, the catalog) reaches this store with."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "default"}

    def pids(self) -> dict[str, int]:
        try:
            return json.loads((self.folder / PIDS_FILE).read_text())
        except FileNotFoundError:
            return {}

    def running(self) -> bool:
        return any(alive(pid) for pid in self.pids().values())


def start(folder: str | Path, port: int | None = None,
          objectstore: str = "memstore") -> ObjectStore:
    """Start mon, osd and radosgw in a folder and create an S3 user. A bluestore folder a
    previous `start` created is started again with its data, ports and keys; a memstore one
    (its data went with its processes) is created anew."""
    folder = Path(folder).resolve()
    try:
        existing = load(folder)
    except FileNotFoundError:
        existing = None
    if existing is not None and existing.running():
        raise ObjectStoreError(f"{folder} already runs an object store: stop it first")
    if existing is not None and existing.objectstore == "bluestore":
        _start_daemons(existing, created=False)
        return existing
    for sub in ("mon", "osd", "rgw", "log", "run"):
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir(parents=True)
    port = port or _free_port()
    store = ObjectStore(folder, port, _free_port(exclude={port}), "", "", objectstore)
    (folder / "ceph.conf").write_text(_ceph_conf(folder, store.port, store.mon_port,
                                                 objectstore))
    _start_daemons(store, created=True)
    try:
        access_key, secret_key = _create_user(folder, folder / "ceph.conf", USER)
    except BaseException:
        stop(folder)
        raise
    store = dataclasses.replace(store, access_key=access_key, secret_key=secret_key)
    state = dataclasses.asdict(store) | {"folder": str(folder)}
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2))
    return store


def _start_daemons(store: ObjectStore, created: bool) -> None:
    """mon, then osd, then radosgw; `created`: make the monitor's and the OSD's stores first."""
    folder, config = store.folder, str(store.folder / "ceph.conf")
    pids: dict[str, int] = {}
    try:
        if created:
            _create_monitor(folder, Path(config), store.mon_port)
        pids["mon"] = _daemon(folder, "mon", ["ceph-mon", "-c", config, "-i", "a", "-f"])
        if created:
            osd_uuid = str(uuid.uuid4())
            (folder / "osd" / "ceph-0").mkdir(exist_ok=True)  # mkfs writes in, not creates, it
            _run(folder, ["ceph", "-c", config, "--connect-timeout", "30", "osd", "create",
                          osd_uuid])
            _run(folder, ["ceph-osd", "-c", config, "-i", "0", "--mkfs", "--osd-uuid",
                          osd_uuid])
        pids["osd"] = _daemon(folder, "osd", ["ceph-osd", "-c", config, "-i", "0", "-f"])
        pids["rgw"] = _daemon(folder, "rgw", ["radosgw", "-c", config, "-n", "client.rgw.a",
                                              "-f"])
        (folder / PIDS_FILE).write_text(json.dumps(pids))
        _wait_for_http(store.port, folder)
    except BaseException:
        _kill(pids)
        (folder / PIDS_FILE).unlink(missing_ok=True)
        raise


def create_bucket(store: ObjectStore, bucket: str) -> None:
    """Create the bucket unless it exists (the store's own user owns it)."""
    import boto3  # the harness needs boto3 only here

    client = boto3.client("s3", endpoint_url=store.endpoint, region_name="default",
                          aws_access_key_id=store.access_key,
                          aws_secret_access_key=store.secret_key)
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=bucket)


def create_user(store: ObjectStore, uid: str) -> tuple[str, str]:
    """Another S3 user (for tests of what a bucket policy lets a user do); its keys."""
    return _create_user(store.folder, store.folder / "ceph.conf", uid)


def _create_user(folder: Path, config: Path, uid: str) -> tuple[str, str]:
    access_key, secret_key = secrets.token_hex(10).upper(), secrets.token_hex(20)
    _run(folder, ["radosgw-admin", "-c", str(config), "user", "create", f"--uid={uid}",
                  f"--display-name={uid}", f"--access-key={access_key}",
                  f"--secret-key={secret_key}"])
    return access_key, secret_key


def load(folder: str | Path) -> ObjectStore:
    """The store a previous `start` created in the folder (running or not)."""
    state = json.loads((Path(folder) / STATE_FILE).read_text())
    return ObjectStore(Path(state["folder"]), state["port"], state["mon_port"],
                       state["access_key"], state["secret_key"],
                       state.get("objectstore", "memstore"))


def stop(folder: str | Path) -> None:
    """Stop the daemons the folder's store runs (by PID, radosgw first); its data stays."""
    path = Path(folder) / PIDS_FILE
    if path.exists():
        _kill(json.loads(path.read_text()))
        path.unlink()


def _ceph_conf(folder: Path, port: int, mon_port: int, objectstore: str) -> str:
    # Why each line is there: docs/deployment.md, "The test object store".
    return f"""[global]
fsid = {uuid.uuid4()}
mon host = [v2:127.0.0.1:{mon_port}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms mon client mode = crc secure
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = {objectstore}
memstore device bytes = 1073741824
bluestore block size = 10737418240
mon allow pool size one = true
mon data avail crit = 0
paxos propose interval = 0.1
run dir = {folder}/run
admin socket = {folder}/run/$name.asok
log file = {folder}/log/$name.log
mon data = {folder}/mon/$cluster-$id
osd data = {folder}/osd/$cluster-$id
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{port}
rgw data = {folder}/rgw
"""


def _create_monitor(folder: Path, config: Path, mon_port: int) -> None:
    monmap = folder / "monmap"
    _run(folder, ["monmaptool", "--create", "--clobber", "--fsid", _fsid(config), "--addv",
                  "a", f"[v2:127.0.0.1:{mon_port}]", str(monmap)])
    _run(folder, ["ceph-mon", "-c", str(config), "--mkfs", "-i", "a", "--monmap", str(monmap)])


def _fsid(config: Path) -> str:
    line = next(x for x in config.read_text().splitlines() if x.startswith("fsid"))
    return line.split("=", 1)[1].strip()


def _run(folder: Path, command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT,
                            cwd=folder, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ObjectStoreError(f"{command[0]} {' '.join(command[1:3])} failed: "
                               f"{(result.stderr or result.stdout).strip()[-500:]}")


def _daemon(folder: Path, name: str, command: list[str]) -> int:
    log = (folder / "log" / f"{name}.out").open("ab")
    process = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return process.pid


def _wait_for_http(port: int, folder: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # radosgw answers (403 for an anonymous listing): it is up
        except OSError:
            time.sleep(0.2)
    raise ObjectStoreError(f"radosgw did not answer on port {port} within {START_TIMEOUT} s; "
                           f"see {folder}/log")


def _kill(pids: dict[str, int]) -> None:
    for name in reversed(DAEMONS):
        if name in pids:
            stop_process(pids[name], grace=10)


def _free_port(exclude: set[int] = frozenset()) -> int:
    for candidate in range(*PORT_RANGE):
        port = PORT_RANGE[0] + (candidate * 7919 + os.getpid()) % (PORT_RANGE[1] - PORT_RANGE[0])
        if port in exclude:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ObjectStoreError(f"no free port in {PORT_RANGE}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog.cluster.objectstore",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    starting = sub.add_parser("start", help="start a store in FOLDER and print its settings")
    starting.add_argument("folder")
    starting.add_argument("--port", type=int, help="the S3 port (default: a free one < 32768)")
    starting.add_argument("--objectstore", choices=("memstore", "bluestore"),
                          default="memstore")
    stopping = sub.add_parser("stop", help="stop the store started in FOLDER")
    stopping.add_argument("folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            began = time.monotonic()
            store = start(args.folder, args.port, args.objectstore)
            for key, value in store.environment().items():
                print(f"export {key}={value}")
            print(f"# started in {time.monotonic() - began:.1f} s", file=sys.stderr)
        else:
            stop(args.folder)
    except ObjectStoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
