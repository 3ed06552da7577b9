"""Shared fixtures: a catalog home with the sample datasets published, and the real server
(`taza serve`, gunicorn) on a free 127.0.0.1 port."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import psycopg
import pytest
import requests
from psycopg import sql

from catalog.cluster.postgres import PrivatePostgres

ROOT = Path(__file__).resolve().parent.parent
# `taza` speaks the operator's language (catalog/core/operator_texts.py) and the tests read
# its English, whatever the locale of whoever runs them; tests of the other languages set
# LANG themselves (tests/test_cli_languages*.py).
for _variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_variable, None)
os.environ["LANG"] = "C.UTF-8"
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


# TAZA_TEST_PROFILE=postgresql runs the session fixtures' homes on the PostgreSQL profile
# (each home with a database of its own in the session's `private_postgres`); `embedded`, the
# default, keeps them on the embedded engine exactly as before.
TEST_PROFILES = ("embedded", "postgresql")
TEST_PROFILE = os.environ.get("TAZA_TEST_PROFILE", "").strip() or "embedded"
if TEST_PROFILE not in TEST_PROFILES:
    raise pytest.UsageError(f"TAZA_TEST_PROFILE: one of {', '.join(TEST_PROFILES)}, "
                            f"got {TEST_PROFILE!r}")
# The database a home's catalog lives in, written only by these fixtures (never by the
# product): its URL, one line. A home without it is embedded.
HOME_DATABASE_FILE = ".test-database"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_only(reason): the test reads the embedded profile's own files or "
        "is about the embedded engine only; skipped, with its reason, when "
        "TAZA_TEST_PROFILE=postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL profile, tests marked `embedded_only` are skipped with their reason."""
    if TEST_PROFILE == "embedded":
        return
    for item in items:
        marker = item.get_closest_marker("embedded_only")
        if marker is None:
            continue
        reason = marker.args[0] if marker.args else marker.kwargs.get("reason")
        if not reason:
            raise pytest.UsageError(f"{item.nodeid}: embedded_only needs a reason string")
        item.add_marker(pytest.mark.skip(reason=f"embedded only: {reason}"))


def home_database(home: Path) -> str | None:
    """The URL of the database a test home's catalog lives in, or None (embedded)."""
    try:
        return (Path(home) / HOME_DATABASE_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


# The databases these fixtures make (published_catalog, copy_home, scratch_home): each belongs
# to its one home.
_FIXTURE_DATABASE = re.compile(r"/(published|copy|scratch)_[0-9a-f]{16}$")


def home_environment(home: Path) -> dict[str, str]:
    """The environment every child over `home` needs besides TAZA_HOME: TAZA_DATABASE_URL
    when the home has a database (the PostgreSQL test profile), else nothing; but a home
    without one never inherits another home's fixture database from this process's
    environment (home_profile, test_home_profile): it stays embedded."""
    url = home_database(home)
    if url:
        return {"TAZA_DATABASE_URL": url}
    if _FIXTURE_DATABASE.search(os.environ.get("TAZA_DATABASE_URL", "")):
        return {"TAZA_DATABASE_URL": ""}
    return {}


@contextmanager
def environment_set(variables: Mapping[str, object]) -> Iterator[None]:
    """These environment variables set in this process for the block, then put back."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update({key: str(value) for key, value in variables.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def home_profile(home: Path) -> Iterator[None]:
    """The home's environment (home_environment) in this process for the block: for tests
    that read a home's stores in process (CatalogStore, an app built in the test). Nothing to
    do for an embedded home."""
    with environment_set(home_environment(home)):
        yield


@pytest.fixture(scope="module")
def published_home_profile(published_home: Path) -> Iterator[None]:
    """published_home's environment in this process for a whole module (its tests build apps
    or stores over it in process); nothing on the embedded test profile."""
    with home_profile(published_home):
        yield


# The homes whose database a test's own process reads when it builds stores or apps itself,
# in order: the first the test uses.
_PROCESS_HOMES = ("published_copy", "scratch_home", "published_home")


@pytest.fixture(autouse=True)
def test_home_profile(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the PostgreSQL test profile, the test's process sees the database of the home it
    uses (published_copy, scratch_home or published_home, through server and in_process
    too) while the test runs, so CatalogStore(home) and apps built in the test read it.
    Nothing on the embedded profile."""
    if TEST_PROFILE == "embedded":
        return
    name = next((n for n in _PROCESS_HOMES if n in request.fixturenames), None)
    if name is None and {"server", "in_process"} & set(request.fixturenames):
        name = "published_home"
    if name is not None:
        for key, value in home_environment(request.getfixturevalue(name)).items():
            monkeypatch.setenv(key, value)


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _admin_url(url: str) -> str:
    """The same cluster's maintenance database (to create and drop databases)."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def new_home_database(cluster: PrivatePostgres, home: Path, prefix: str = "home") -> str:
    """A fresh empty database (with the catalog's extensions) for `home`; remembered in it."""
    url = cluster.create_database(f"{prefix}_{uuid4().hex[:16]}")
    (Path(home) / HOME_DATABASE_FILE).write_text(url + "\n")
    return url


def drop_database(url: str | None) -> None:
    """Drop a test home's database (if it has one), closing its connections."""
    if url:
        with psycopg.connect(_admin_url(url), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(_database_name(url))))


def taza(*args: str, home: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `taza` command line in a subprocess (publish --all of the sample catalog,
    with 24 monthly items each read apart, took up to 230 s on the shared 2-core machine)."""
    env = dict(os.environ, TAZA_HOME=str(home), **home_environment(home))
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
    argument is followed by the server's command line).

    free_port's port is free when it answers, not when the server binds it: the other half of
    the suite may start a server on the same port meanwhile, and then both /healthz checks
    pass, on that other server. So the server is only returned once its own process holds the
    port's listening socket; otherwise it is stopped and started on another port."""
    for _ in range(3):
        server = _start_on(free_port(), home, workers, env, log_name, args, wrapper)
        if server is not None:
            return server
    raise RuntimeError("three ports in a row were taken by other servers before ours bound")


def _start_on(port: int, home: Path, workers: int, env: dict | None, log_name: str,
              args: tuple[str, ...], wrapper: tuple[str, ...]) -> Server | None:
    # A fixed node name: /healthz reports it, and the golden answers must not hold the host's.
    env = {"TAZA_NODE": "test-node", **os.environ, "TAZA_HOME": str(home),
           **home_environment(home), **(env or {})}
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
                if listens_on(process.pid, port):
                    return server
                stop_server(server)  # another server answered: ours never bound the port
                return None
        except (requests.ConnectionError, requests.Timeout):
            pass  # a busy machine: a read timeout must not leave the server running
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError("server did not answer /healthz within 120 s")


def listens_on(pid: int, port: int) -> bool:
    """Whether process pid (the gunicorn master, which `taza serve` becomes) holds the
    listening TCP socket of port on this machine."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening.add(f"socket:[{fields[9]}]")
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile
    return bool(listening & held)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def published_catalog(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """Every sample dataset published once (`taza publish --all`), into a home that no server
    serves and no test changes: the original the published homes below are copies of. On the
    PostgreSQL test profile it publishes into a database of its own (copies are made from it
    as a template, so nothing may keep a connection to it open)."""
    home = tmp_path_factory.mktemp("published-catalog")
    if TEST_PROFILE == "postgresql":
        new_home_database(request.getfixturevalue("private_postgres"), home, "published")
    taza("publish", "--all", home=home)
    return home


def copy_home(home: Path, target: Path) -> Path:
    """A copy of a catalog home, without the node's run folder, its caches and logs. The
    layout under a home is relative, so the copy is a catalog of its own (17 MB for the
    samples: a fraction of a second, where publishing them again takes a minute). A home with
    a database (the PostgreSQL test profile) gets a copy of it (`CREATE DATABASE ... TEMPLATE`:
    no connection to the source may be open, so copy a home no server serves)."""
    shutil.copytree(home, target, ignore=shutil.ignore_patterns("cache", "run", "*.log"))
    if source := home_database(home):
        name = f"copy_{uuid4().hex[:16]}"
        with psycopg.connect(_admin_url(source), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(_database_name(source))))
        url = urlunsplit(urlsplit(source)._replace(path="/" + name))
        (target / HOME_DATABASE_FILE).write_text(url + "\n")
    return target


@pytest.fixture(scope="session")
def published_home(published_catalog: Path, tmp_path_factory) -> Path:
    """A catalog home with every sample dataset published once (the session's `server`
    serves it; tests must not publish into it)."""
    return copy_home(published_catalog, tmp_path_factory.mktemp("catalog-home") / "home")


@pytest.fixture()
def published_copy(published_catalog: Path, tmp_path: Path) -> Iterator[Path]:
    """A home of this test's own with every sample dataset published, to change at will."""
    home = copy_home(published_catalog, tmp_path / "published")
    url = home_database(home)
    yield home
    drop_database(url)


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
        self.environment = home_environment(home)
        with home_profile(self.home):
            self.app = create_app(str(home), url)
        self.client = self.app.test_client()

    def get(self, path: str, params: dict | None = None,
            headers: dict | None = None) -> Answer:
        with home_profile(self.home):
            return self._answer(self.client.get(path, query_string=params, headers=headers))

    def post(self, path: str, data: bytes | str | None = None,
             headers: dict | None = None) -> Answer:
        with home_profile(self.home):
            return self._answer(self.client.post(path, data=data, headers=headers))

    @staticmethod
    def _answer(response) -> Answer:
        return Answer(response.status_code, response.headers, response.get_data())


@pytest.fixture(scope="session")
def in_process(published_home: Path) -> InProcess:
    """The app over the sample catalog in this process (Flask's test client)."""
    return InProcess(published_home)


@contextmanager
def home_on_run_profile(request: pytest.FixtureRequest, home: Path,
                        prefix: str = "scratch") -> Iterator[Path]:
    """`home` (made if missing) on the test run's profile: on PostgreSQL with a fresh empty
    database of its own (every child over it gets it: home_environment), dropped afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    if TEST_PROFILE == "embedded":
        yield home
        return
    url = new_home_database(request.getfixturevalue("private_postgres"), home, prefix)
    try:
        yield home
    finally:
        drop_database(url)  # the test may have removed the home


@pytest.fixture()
def scratch_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """An empty home; on the PostgreSQL test profile with a fresh empty database of its own."""
    with home_on_run_profile(request, tmp_path / "home") as home:
        yield home


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


def airports_home(folder: Path) -> Path:
    """A new embedded home under `folder` with the airports sample published by the real
    command line: a catalog for tests of `taza` itself."""
    home = folder / "home"
    done = run_taza("--home", str(home), "publish", str(ROOT / "datasets" / "airports.yaml"))
    assert done.returncode == 0, done.stderr
    return home


def run_taza(*args: str, language: str = "en_GB.UTF-8", **env: str
             ) -> subprocess.CompletedProcess:
    """`taza` on the embedded profile (whatever profile the suite runs), in one language."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("TAZA_", "LC_", "LANGUAGE"))}
    environment.update(LANG=language, **env)
    return subprocess.run([sys.executable, "-m", "catalog.cli", *args], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
