"""The cluster on one machine (catalog/cluster): two app nodes and a job worker behind nginx, on
the PostgreSQL profile.

One cluster per module, over a copy of the session's published samples moved into a database
of the session's private PostgreSQL (`taza migrate`): the nodes learn the live release, the
stewards' state and the features from it (they still share the home for the versions' files).
Load goes to 127.0.0.1 only and is bounded in count.
"""

from __future__ import annotations

import http.client
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
import yaml

from catalog.cluster import objectstore
from catalog.cluster.local import LocalCluster
from catalog.cluster.nginx import Proxy, ProxySettings
from catalog.cluster.processes import alive
from tests.conftest import ROOT, SAMPLE_IDS, copy_dataset, free_port, taza

DATABASE = "cluster"
# The source of its `taza migrate` is an embedded copy of published_home (files, not rows);
# the cluster itself runs on PostgreSQL (and a bucket) on either test profile.
pytestmark = pytest.mark.embedded_only(
    "migrates an embedded copy of published_home (its release files and SQLite state) into "
    "the cluster's PostgreSQL; the cluster is on the PostgreSQL profile in both test profiles")


@pytest.fixture(scope="module")
def cluster(published_home: Path, tmp_path_factory, private_postgres) -> Iterator[LocalCluster]:
    folder = tmp_path_factory.mktemp("cluster")
    # Not the session server's runtime files (its pycsw socket cannot be copied).
    shutil.copytree(published_home, folder / "home", ignore=shutil.ignore_patterns("run", "cache"))
    private_postgres.drop_database(DATABASE)
    url = private_postgres.create_database(DATABASE)
    taza("migrate", "--to", url, home=folder / "home")  # state, audit, releases, layers
    running = LocalCluster(folder, free_port(), database_url=url)
    # While the database is down a feature request fails after 2 s, not 10.
    running.up(node_count=2, environment={"TAZA_DATABASE_WAIT_SECONDS": "2"})
    yield running
    running.down()
    private_postgres.drop_database(DATABASE)


@pytest.fixture()
def cluster_env(cluster: LocalCluster, monkeypatch) -> dict[str, str]:
    """The settings of the cluster's publishers (`taza` commands)."""
    for name, value in cluster.environment().items():
        monkeypatch.setenv(name, value)
    return cluster.environment()


def nodes_answering(url: str, tries: int = 40) -> set[str]:
    return {requests.get(f"{url}/healthz", timeout=10).json()["node"] for _ in range(tries)}


def test_nginx_spreads_requests_over_both_nodes(cluster: LocalCluster) -> None:
    assert nodes_answering(cluster.url) == {"node-a", "node-b"}
    health = requests.get(f"{cluster.url}/healthz", timeout=10).json()
    assert health["backend"] == "postgresql"
    assert health["datasets"] == len(SAMPLE_IDS)
    assert cluster.status()["worker"]


def test_each_node_keeps_its_own_cache(cluster: LocalCluster) -> None:
    for node in cluster.nodes:
        tile = requests.get(f"{node.url}/tiles/elevation/1/relief/6/44/23.png", timeout=30)
        assert tile.status_code == 200
    for node in cluster.nodes:
        assert (node.folder / "cache" / "tiles.sqlite").exists()
    assert not (cluster.home / "cache" / "tiles.sqlite").exists()


def test_a_publish_reaches_the_other_node_within_two_seconds(
        cluster: LocalCluster, cluster_env: dict, tmp_path: Path) -> None:
    before = [requests.get(f"{node.url}/healthz", timeout=10).json()["release"]
              for node in cluster.nodes]
    assert before[0] == before[1]
    sources = tmp_path / "changed"
    manifest = copy_dataset("airports", sources)
    airports = json.loads((sources / "sources" / "airports.geojson").read_text())
    airports["features"] = airports["features"][:5]
    (sources / "sources" / "airports.geojson").write_text(json.dumps(airports))
    taza("publish", str(manifest), home=cluster.home)
    # Each worker looks for a new release at most once a second, on its next request.
    time.sleep(2.0)
    for node in cluster.nodes:
        health = requests.get(f"{node.url}/healthz", timeout=10).json()
        assert health["release"] == before[0] + 1, node.name
        items = requests.get(f"{node.url}/ogc/collections/airports/items",
                             params={"limit": 100}, timeout=10).json()
        assert items["numberMatched"] == 5, node.name

    # A rollback through node A's API is served by node B within 2 s.
    taza("users", "add", "cluster-admin", "--role", "admin", home=cluster.home)
    token = taza("users", "token", "cluster-admin", home=cluster.home).stdout.strip()
    node_a, node_b = cluster.nodes
    rolled = requests.post(f"{node_a.url}/api/datasets/airports/rollback", json={"version": 1},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert rolled.status_code == 200, rolled.text
    release = rolled.json()["release"]
    deadline = time.monotonic() + 2.0
    while _release(node_b) != release and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _release(node_b) == release
    items = requests.get(f"{node_b.url}/ogc/collections/airports/items",
                         params={"limit": 100}, timeout=10).json()
    assert items["numberMatched"] == 17


def _release(node) -> int:
    """The release the node serves (/healthz reads the database's pointer now)."""
    return requests.get(f"{node.url}/healthz", timeout=10).json()["release"]


def test_a_database_restart_loses_no_published_data(cluster: LocalCluster,
                                                    private_postgres) -> None:
    def answers() -> list:
        return [(_release(node), requests.get(
                    f"{node.url}/ogc/collections/settlements/items",
                    params={"limit": 20, "sortby": "name"}, timeout=30).json()["features"])
                for node in cluster.nodes]

    before = answers()
    private_postgres.stop()
    try:
        assert requests.get(f"{cluster.url}/ogc/collections/settlements/items",
                            timeout=30).status_code >= 500  # an answer, not a hang
    finally:
        private_postgres.start(durable=False)
    _wait_for(lambda: answers() == before, timeout=60)


def _read(url: str, index: int) -> int | str:
    # A new value in every request: no cache answers for the node.
    path = random.choice([
        f"/ogc/collections/settlements/items?limit={index % 50 + 1}",
        f"/stac/search?limit={index % 20 + 1}",
        f"/ogc/collections/airports/items?offset={index % 10}&limit=3",
        "/healthz",
    ])
    try:
        # The whole body is read: a body cut short raises (urllib3 holds it to Content-Length),
        # so a truncated answer can never pass for a 200.
        return requests.get(url + path, timeout=30).status_code
    except requests.RequestException as error:
        return f"{path}: {type(error).__name__}"


BROKEN_TRANSFER = ("ChunkedEncodingError", "ConnectionError")


def test_a_node_killed_under_load_costs_no_failed_read(cluster: LocalCluster) -> None:
    """Every request the dead node had not begun to answer is retried by nginx and succeeds.

    nginx retries a request on the other node only while nothing of the answer has reached the
    client (proxy_next_upstream). An answer the node was writing at the instant of SIGKILL is
    cut short and no proxy can retry it: only requests in flight at the kill may fail, and only
    as a broken transfer (never a 5xx, never a short body taken for a whole one).
    """
    victim = cluster.nodes[0]
    reads: list[tuple[float, float, int | str]] = []  # (started, ended, status or failure)
    kill_window: list[float] = []
    killed = threading.Event()

    def load(worker: int) -> None:
        for index in range(worker, 400, 4):
            started = time.monotonic()
            outcome = _read(cluster.url, index)
            reads.append((started, time.monotonic(), outcome))
            if len(reads) >= 100 and not killed.is_set():
                killed.set()
                kill_window.append(time.monotonic())
                cluster.stop_node(victim, kill=True)
                kill_window.append(time.monotonic())

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(load, range(4)))
    assert killed.is_set() and not victim.running()
    assert len(reads) == 100 * 4
    kill_began, kill_ended = kill_window
    in_flight = [outcome for started, ended, outcome in reads
                 if started < kill_ended and ended > kill_began and outcome != 200]
    others = [outcome for started, ended, outcome in reads
              if not (started < kill_ended and ended > kill_began) and outcome != 200]
    assert others == []
    assert all(isinstance(outcome, str) and outcome.endswith(BROKEN_TRANSFER)
               for outcome in in_flight), in_flight
    assert len(in_flight) <= 3  # the other three load threads' requests at most
    assert nodes_answering(cluster.url, 10) == {"node-b"}
    cluster.start_node(victim)
    _wait_for(lambda: nodes_answering(cluster.url, 20) == {"node-a", "node-b"})
    # Restarted with every node's settings: the same database, not the embedded profile.
    assert requests.get(f"{victim.url}/healthz", timeout=10).json()["backend"] == "postgresql"


def _wait_for(check, timeout: float = 180) -> None:
    """Poll `check` (a node restarting on a busy 2-core machine may take a minute)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError("condition not met in time")


def _trickle(port: int, stop: threading.Event) -> None:
    """A client that sends its request a byte at a time, a byte a second (slowloris)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            if stop.wait(1.0):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return


def test_a_hundred_trickling_clients_do_not_starve_the_others(cluster: LocalCluster) -> None:
    stop = threading.Event()
    tricklers = [threading.Thread(target=_trickle, args=(cluster.port, stop), daemon=True)
                 for _ in range(100)]
    for thread in tricklers:
        thread.start()
    try:
        time.sleep(2)  # every trickler connected and sending
        # Each node has 2 workers x 4 threads: without nginx in front, 100 slow clients would
        # hold every thread and these reads would time out.
        statuses = [requests.get(f"{cluster.url}/ogc/collections/settlements/items",
                                 params={"limit": n}, timeout=10).status_code
                    for n in range(1, 31)]
    finally:
        stop.set()
    assert statuses == [200] * 30


def test_the_client_address_is_the_one_nginx_saw(cluster: LocalCluster) -> None:
    """Sign-in throttling counts failures per client address: behind nginx that must be the
    client's own (here 127.0.0.2), never 127.0.0.1 for everyone, nor a header the client wrote."""
    connection = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10,
                                            source_address=("127.0.0.2", 0))
    connection.request("POST", "/api/session",
                       body=json.dumps({"name": "nobody-here", "password": "wrong-password-1"}),
                       headers={"Content-Type": "application/json",
                                "X-Forwarded-For": "203.0.113.9"})
    answer = connection.getresponse()
    assert answer.status in (401, 403), answer.read()
    with psycopg.connect(cluster.environment()["TAZA_DATABASE_URL"]) as db:
        addresses = {row[0] for row in db.execute(
            "SELECT subject FROM taza_state.signin_failures WHERE scope = 'address'")}
    assert "127.0.0.2" in addresses
    assert "203.0.113.9" not in addresses


@pytest.fixture(scope="module")
def strict_proxy(cluster: LocalCluster, tmp_path_factory) -> Iterator[Proxy]:
    """A second nginx in front of the same nodes with tiny limits."""
    proxy = Proxy(tmp_path_factory.mktemp("strict-nginx"), free_port(),
                  tuple(node.address for node in cluster.nodes),
                  ProxySettings(requests_per_second=2, burst=2, max_body_bytes=4096))
    proxy.start()
    yield proxy
    proxy.stop()


def test_too_many_requests_get_429_with_a_json_body(strict_proxy: Proxy) -> None:
    answers = [requests.get(f"{strict_proxy.url}/healthz", timeout=10) for _ in range(20)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].headers["Content-Type"] == "application/json"
    assert limited[0].json()["code"] == "TooManyRequests"


def test_a_body_over_the_limit_gets_413_with_a_json_body(strict_proxy: Proxy) -> None:
    time.sleep(1.5)  # out of the previous test's rate limit
    answer = requests.post(f"{strict_proxy.url}/stac/search", data=b"{" + b" " * 10_000 + b"}",
                           headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 413
    assert answer.json()["code"] == "PayloadTooLarge"


def test_taza_cluster_up_publish_through_nginx_and_down_leave_nothing_running() -> None:
    # Under /tmp and open to others: the private PostgreSQL runs as the postgres user.
    scratch = Path(tempfile.mkdtemp(prefix="taza-cluster-"))
    scratch.chmod(0o755)
    try:
        _up_publish_and_down(scratch / "cli-cluster")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _up_publish_and_down(folder: Path) -> None:
    """`taza cluster up` as `make cluster` runs it (PostgreSQL, Ceph RGW bucket, worker, two
    nodes, nginx), a sample published through nginx by the stewards' API (the job runs on the
    cluster's queue), then `taza cluster down`: no process, no listening port is left."""
    port = free_port()
    command = [sys.executable, "-m", "catalog.cli", "cluster"]
    up = subprocess.run([*command, "up", "--folder", str(folder), "--port", str(port),
                         "--no-publish"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stderr
    assert f"http://127.0.0.1:{port}" in up.stdout
    started = LocalCluster.existing(folder)
    pids: list[int | None] = [node.pid() for node in started.nodes] + [
        started.proxy.pid(), started.worker_pid()]
    ports = [port, *(node.port for node in started.nodes)]
    try:
        assert all(pid and alive(pid) for pid in pids)
        assert started.status()["database"] and started.postgres.running()
        store = objectstore.load(started.object_store_folder)
        pids += list(store.pids().values())
        ports += [started.postgres.port, store.port, store.mon_port]
        health = requests.get(f"{started.url}/healthz", timeout=10).json()
        assert health["release"] is None and health["backend"] == "postgresql"
        again = subprocess.run([*command, "up", "--folder", str(folder), "--port", str(port),
                                "--no-publish"], cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 1 and "already runs" in again.stderr
        assert all(pid and alive(pid) for pid in pids), "a refused `up` stopped the cluster"
        assert started.status()["object_store"] and started.postgres.running()

        _publish_airports_through(started)
        for node in started.nodes:  # both nodes serve it, from the database and the bucket
            assert requests.get(f"{node.url}/healthz", timeout=10).json()["release"] == 1
            items = requests.get(f"{node.url}/ogc/collections/airports/items",
                                 params={"limit": 100}, timeout=30).json()
            assert items["numberMatched"] == 17, node.name
        asset = requests.get(f"{started.url}/assets/airports/latest/airports.geojson",
                             timeout=30)
        assert asset.status_code == 200 and len(asset.json()["features"]) == 17
        assert _bucket_keys(started, "airports/1/")  # the file is in the cluster's bucket
    finally:
        down = subprocess.run([*command, "down", "--folder", str(folder)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if pid and alive(pid)] == []
    assert not started.postgres.running()
    for pattern in [str(folder), *(f"127.0.0.1:{node.port}" for node in started.nodes)]:
        left = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        assert left.stdout.strip() == "", pattern
    assert [p for p in ports if _listening(p)] == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


def _publish_airports_through(cluster: LocalCluster) -> None:
    """The sample `airports` through nginx: a steward drafts it (manifest, upload), a reviewer
    approves, the steward publishes; the job's answer is followed to success."""
    accounts = {"ops-steward": ("steward", "taza-koom"), "ops-reviewer": ("reviewer", None)}
    env = cluster.environment()
    tokens = {}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name, (role, organisation) in accounts.items():
            taza("users", "add", name, "--role", role,
                 *(["--org", organisation] if organisation else []), home=cluster.home)
            tokens[name] = taza("users", "token", name, home=cluster.home).stdout.strip()

    def call(method: str, path: str, user: str = "ops-steward", headers: dict | None = None,
             **kwargs) -> requests.Response:
        return requests.request(method, f"{cluster.url}{path}", timeout=120, **kwargs,
                                headers={"Authorization": f"Bearer {tokens[user]}",
                                         **(headers or {})})

    assert call("POST", "/api/datasets", json={"id": "airports"}).status_code == 201
    manifest = yaml.safe_load((ROOT / "datasets" / "airports.yaml").read_text(encoding="utf-8"))
    manifest.pop("source")
    answer = call("PUT", "/api/datasets/airports/draft/manifest",
                  data=yaml.safe_dump(manifest, allow_unicode=True).encode(),
                  headers={"Content-Type": "application/yaml"})
    assert answer.status_code == 200, answer.text
    with (ROOT / "datasets" / "sources" / "airports.geojson").open("rb") as source:
        answer = call("PUT", "/api/datasets/airports/draft/source", data=source,
                      params={"filename": "airports.geojson"})
    assert answer.status_code == 201, answer.text
    for step, user in (("submit", "ops-steward"), ("approve", "ops-reviewer")):
        answer = call("POST", f"/api/datasets/airports/draft/{step}", user)
        assert answer.status_code == 200, f"{step}: {answer.text}"
    answer = call("POST", "/api/datasets/airports/draft/publish")
    assert answer.status_code == 202, answer.text
    job_path = answer.headers["Location"]
    job = {}

    def finished() -> bool:
        job.update(call("GET", job_path).json())
        return job["state"] in ("succeeded", "failed")

    _wait_for(finished, timeout=180)
    assert job["state"] == "succeeded", job
    assert job["result"]["version"] == 1
    # Each node's workers look for a new release once a second.
    _wait_for(lambda: all(requests.get(f"{node.url}/healthz", timeout=10).json()["release"]
                          == job["result"]["release"] for node in cluster.nodes), timeout=10)


def _bucket_keys(cluster: LocalCluster, prefix: str) -> list[str]:
    import boto3

    env = cluster.environment()
    bucket, _, root = env["TAZA_ASSETS_URL"].removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                          region_name=env["AWS_DEFAULT_REGION"])
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{root}/{prefix}".lstrip("/"))
    return [item["Key"] for item in listing.get("Contents", [])]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
