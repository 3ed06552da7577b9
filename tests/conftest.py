"""Shared fixtures: a catalog home with the sample datasets published, and the real server
(`taza serve`, gunicorn) on a free 127.0.0.1 port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from catalog.cluster.postgres import PrivatePostgres

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "datasets"
SOURCES = DATASETS / "sources"
SAMPLE_IDS = ("airports", "climate-zones", "elevation", "kyrgyzstan-boundary",
              "kyrgyzstan-border-osm", "lakes", "land-cover", "mobile-coverage", "oblasts",
              "precipitation-normals", "rivers", "settlements", "slope", "temperature-normals",
              "towns-simplemaps", "urbanisation")
# Datasets of several items (manifest `items`): a time series of twelve months each.
SERIES_IDS = ("precipitation-normals", "temperature-normals")
ITEM_IDS = tuple(sorted({*SAMPLE_IDS} - {*SERIES_IDS}
                        | {f"{series}-{month:02d}" for series in SERIES_IDS
                           for month in range(1, 13)}))
VECTOR_IDS = ("airports", "kyrgyzstan-boundary", "kyrgyzstan-border-osm", "lakes",
              "mobile-coverage", "oblasts", "rivers", "settlements", "towns-simplemaps")
RASTER_IDS = ("climate-zones", "elevation", "land-cover", "precipitation-normals", "slope",
              "temperature-normals", "urbanisation")
CLASS_RASTER_IDS = ("climate-zones", "land-cover", "urbanisation")
# Rasters of quantities (zonal statistics take them; class rasters hold codes).
NUMERIC_RASTER_IDS = tuple(i for i in RASTER_IDS if i not in CLASS_RASTER_IDS)


def taza(*args: str, home: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `taza` command line in a subprocess (publish --all of the sample catalog,
    with 24 monthly items each read apart, took up to 230 s on the shared 2-core machine)."""
    env = dict(os.environ, TAZA_HOME=str(home))
    result = subprocess.run([sys.executable, "-m", "catalog.cli", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"taza {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)


def start_server(home: Path, workers: int = 2, env: dict | None = None,
                 log_name: str = "server.log", args: tuple[str, ...] = (),
                 wrapper: tuple[str, ...] = ()) -> Server:
    """`taza serve` on a free port; `wrapper` is a command the server runs under (its last
    argument is followed by the server's command line)."""
    port = free_port()
    # A fixed node name: /healthz reports it, and the golden answers must not hold the host's.
    env = {"TAZA_NODE": "test-node", **os.environ, "TAZA_HOME": str(home), **(env or {})}
    log = (home / log_name).open("w")
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "catalog.cli", "serve", "--port", str(port),
         "--workers", str(workers), *args],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", home, process)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{(home / log_name).read_text()}")
        try:
            if server.get("/healthz").status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout):
            pass  # a busy machine: a read timeout must not leave the server running
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError("server did not answer /healthz within 120 s")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def published_catalog(tmp_path_factory) -> Path:
    """Every sample dataset published once (`taza publish --all`), into a home that no server
    serves and no test changes: the original the published homes below are copies of."""
    home = tmp_path_factory.mktemp("published-catalog")
    taza("publish", "--all", home=home)
    return home


def copy_home(home: Path, target: Path) -> Path:
    """A copy of a catalog home, without the node's run folder, its caches and logs. The
    layout under a home is relative, so the copy is a catalog of its own (17 MB for the
    samples: a fraction of a second, where publishing them again takes a minute)."""
    shutil.copytree(home, target, ignore=shutil.ignore_patterns("cache", "run", "*.log"))
    return target


@pytest.fixture(scope="session")
def published_home(published_catalog: Path, tmp_path_factory) -> Path:
    """A catalog home with every sample dataset published once (the session's `server`
    serves it; tests must not publish into it)."""
    return copy_home(published_catalog, tmp_path_factory.mktemp("catalog-home") / "home")


@pytest.fixture()
def published_copy(published_catalog: Path, tmp_path: Path) -> Path:
    """A home of this test's own with every sample dataset published, to change at will."""
    return copy_home(published_catalog, tmp_path / "published")


@pytest.fixture(scope="session")
def server(published_home: Path) -> Iterator[Server]:
    """The real server over the sample catalog. Tests must not publish into it."""
    running = start_server(published_home)
    yield running
    stop_server(running)


@dataclass
class Answer:
    """A Flask test-client answer seen through the names of a `requests.Response`, so a test
    reads answers from the app in process and from a real server alike."""
    status_code: int
    headers: Mapping[str, str]  # case-insensitive, as requests' are
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self) -> object:
        return json.loads(self.content)


class InProcess:
    """The whole app (`create_app`) in the test's own process through Flask's test client, for
    tests where a real server adds nothing (answers compared with recorded ones). Tests of
    workers, sockets, headers a proxy sees and real clients keep using `server`."""

    def __init__(self, home: Path, url: str = "http://localhost"):
        from catalog.app import create_app  # the app under test; imported only when used

        self.url, self.home = url, home
        self.app = create_app(str(home), url)
        self.client = self.app.test_client()

    def get(self, path: str, params: dict | None = None,
            headers: dict | None = None) -> Answer:
        return self._answer(self.client.get(path, query_string=params, headers=headers))

    def post(self, path: str, data: bytes | str | None = None,
             headers: dict | None = None) -> Answer:
        return self._answer(self.client.post(path, data=data, headers=headers))

    @staticmethod
    def _answer(response) -> Answer:
        return Answer(response.status_code, response.headers, response.get_data())


@pytest.fixture(scope="session")
def in_process(published_home: Path) -> InProcess:
    """The app over the sample catalog in this process (Flask's test client)."""
    return InProcess(published_home)


@pytest.fixture()
def scratch_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture(scope="session")
def stac_schemas() -> Path | None:
    """Offline STAC schemas (../shared/stac-schemas, or $TAZA_STAC_SCHEMAS) when present."""
    path = Path(os.environ.get("TAZA_STAC_SCHEMAS", ROOT.parent / "shared" / "stac-schemas"))
    return path if (path / "schema-map.json").exists() else None


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL 15 + PostGIS for the whole session (catalog/cluster/postgres.py);
    each test module creates its own database in it with `create_database`."""
    folder = Path(tempfile.mkdtemp(prefix="taza-pg-"))  # under /tmp: the postgres user can reach it
    cluster = PrivatePostgres(folder, free_port())
    cluster.start(durable=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def copy_dataset(dataset_id: str, target: Path) -> Path:
    """Copy a sample manifest and its source into target (to publish altered copies)."""
    (target / "sources").mkdir(parents=True, exist_ok=True)
    manifest = target / f"{dataset_id}.yaml"
    shutil.copy(DATASETS / f"{dataset_id}.yaml", manifest)
    for source in SOURCES.glob("*"):
        if source.is_dir() and source.name == dataset_id:  # the items of a time series
            shutil.copytree(source, target / "sources" / source.name)
        elif source.stem == dataset_id or source.name.startswith(dataset_id + "."):
            shutil.copy(source, target / "sources" / source.name)
    return manifest


# Seconds spent in each module (setup, call and teardown of its tests; a module or session
# fixture counts where it is first set up): scripts/run-tests balances its halves by them.
MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    module = report.nodeid.split("::")[0]
    MODULE_SECONDS[module] = MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus) -> None:
    """Kill any multiprocessing child a test left behind. The interpreter joins non-daemon
    children at exit, so one hung child kept a finished run from exiting until CI's limit.
    Write the seconds per module where TAZA_MODULE_SECONDS_FILE names a file."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()
        child.join(timeout=5)
    if path := os.environ.get("TAZA_MODULE_SECONDS_FILE"):
        Path(path).write_text("".join(f"{seconds:.0f} {module}\n"
                                      for module, seconds in sorted(MODULE_SECONDS.items())))
