"""Helpers for the stewards' API tests: accounts made with the real `taza users`, a `requests`
client with tokens, manifests and source files in every upload format."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import fiona
import numpy as np
import psycopg
import pytest
import rasterio
import rasterio.shutil
import requests
import yaml
from fiona.transform import transform_geom
from psycopg import sql
from rasterio.transform import from_bounds

from tests.conftest import (
    DATASETS,
    ROOT,
    SOURCES,
    TEST_PROFILE,
    Server,
    environment_set,
    home_environment,
    start_server,
    stop_server,
)

ACCOUNTS = {  # name: (role, organisation)
    "alice": ("steward", "ministry-a"),
    "anna": ("steward", "ministry-a"),
    "bob": ("steward", "ministry-b"),
    "rita": ("reviewer", None),
    "rex": ("reviewer", "ministry-b"),
    "root": ("admin", None),
}


def password_of(name: str) -> str:
    """The test accounts' passwords (set with `taza users add --password-stdin`)."""
    return f"{name}-password-1"


# The engines the stewards' state runs on: a module's `api` fixture takes them as params.
STATE_PROFILES = ("embedded", "postgresql")
# The engine of a module's `api` for the tests not parametrised over both: the test run's
# profile (TAZA_TEST_PROFILE), so `make test-postgresql` runs every stewards test on PostgreSQL.
RUN_PROFILE = (TEST_PROFILE,)


@contextlib.contextmanager
def state_profile(request: pytest.FixtureRequest, database: str) -> Iterator[dict[str, str]]:
    """The environment that puts the stewards' state on request.param's engine (the test
    run's profile when the test gives none): nothing for
    `embedded`; for `postgresql`, TAZA_DATABASE_URL naming a fresh database of the session's
    private PostgreSQL, dropped afterwards. Pass it to running_api; `api_environment` gives
    it to the tests that use the server."""
    if getattr(request, "param", TEST_PROFILE) == "embedded":
        yield {}
        return
    cluster = request.getfixturevalue("private_postgres")
    cluster.drop_database(database)
    try:
        yield {"TAZA_DATABASE_URL": cluster.create_database(database)}
    finally:
        cluster.drop_database(database)


@pytest.fixture(autouse=True)
def api_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that uses the module's `api` runs `taza` (and reads the state) on its engine."""
    if "api" in request.fixturenames:
        for key, value in request.getfixturevalue("api").environment.items():
            monkeypatch.setenv(key, value)


def assert_state_on_its_engine(api: Api) -> None:
    """The PostgreSQL profile keeps no stewards' SQLite file and holds the accounts."""
    url = api.environment.get("TAZA_DATABASE_URL")
    sqlite_file = api.server.home / "stewards" / "stewards.sqlite"
    if not url:
        assert sqlite_file.exists()
        return
    assert not sqlite_file.exists()
    with psycopg.connect(url) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM taza_state.users")}
    assert names >= set(ACCOUNTS)  # and whatever accounts the module's tests added


def token_hashes(api: Api) -> list[str]:
    """The stored form of every token, from the engine the test's server keeps them on."""
    url = api.environment.get("TAZA_DATABASE_URL")
    if url:
        with psycopg.connect(url) as connection:
            return [row[0] for row in connection.execute(
                "SELECT secret_sha256 FROM taza_state.tokens")]
    import sqlite3

    path = api.server.home / "stewards" / "stewards.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return [row[0] for row in db.execute("SELECT secret_sha256 FROM tokens")]


def stored_text(home: Path) -> str:
    """Everything the stewards' database holds, as text (to look for secrets in it): the
    SQLite file's dump, or every row of the PostgreSQL profile's state schema."""
    url = os.environ.get("TAZA_DATABASE_URL")
    if not url:
        import sqlite3

        with contextlib.closing(sqlite3.connect(home / "stewards" / "stewards.sqlite")) as db:
            return "\n".join(db.iterdump())
    with psycopg.connect(url) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            ("taza_state",))]
        return "\n".join(str(row) for table in tables for row in connection.execute(
            sql.SQL("SELECT * FROM {}").format(sql.Identifier("taza_state", table))))


def add_accounts(home: Path) -> dict[str, str]:
    """Create the test accounts with `taza users add` (each with a password) and give each an
    API token with `taza users token`, in one process (tests/accounts.py); return name ->
    token."""
    accounts = [[name, role, organisation, password_of(name)]
                for name, (role, organisation) in ACCOUNTS.items()]
    env = dict(os.environ, TAZA_HOME=str(home), **home_environment(home))
    made = subprocess.run([sys.executable, "-m", "tests.accounts"], input=json.dumps(accounts),
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, f"tests.accounts failed:\n{made.stdout}\n{made.stderr}"
    return json.loads(made.stdout)


@dataclass
class Api:
    """The real server plus a token per account."""

    server: Server
    tokens: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)  # what running_api was given
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, user: str | None) -> dict:
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}

    def request(self, method: str, path: str, user: str | None = None,
                **kwargs) -> requests.Response:
        headers = {**self.headers(user), **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers,
                                timeout=kwargs.pop("timeout", 120), **kwargs)

    def get(self, path: str, user: str | None = None, **kwargs) -> requests.Response:
        return self.request("GET", path, user, **kwargs)

    def post(self, path: str, user: str | None = None, **kwargs) -> requests.Response:
        return self.request("POST", path, user, **kwargs)

    def put(self, path: str, user: str | None = None, **kwargs) -> requests.Response:
        return self.request("PUT", path, user, **kwargs)

    def new_id(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}-{self.counter[0]}"

    # -- the workflow, step by step --------------------------------------------------------

    def create(self, dataset_id: str, user: str = "alice") -> None:
        response = self.post("/api/datasets", user, json={"id": dataset_id})
        assert response.status_code == 201, response.text

    def put_manifest(self, dataset_id: str, manifest: dict, user: str = "alice",
                     as_yaml: bool = False) -> requests.Response:
        if as_yaml:
            body = yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False)
            content_type = "application/yaml"
        else:
            body, content_type = json.dumps(manifest, default=str), "application/json"
        return self.put(f"/api/datasets/{dataset_id}/draft/manifest", user,
                        data=body.encode(), headers={"Content-Type": content_type})

    def upload(self, dataset_id: str, path: Path, user: str = "alice",
               **params) -> requests.Response:
        with path.open("rb") as handle:
            return self.put(f"/api/datasets/{dataset_id}/draft/source", user,
                            params={"filename": path.name, **params}, data=handle)

    def upload_multipart(self, dataset_id: str, path: Path, user: str = "alice",
                         **params) -> requests.Response:
        with path.open("rb") as handle:
            return self.post(f"/api/datasets/{dataset_id}/draft/source", user, params=params,
                             files={"file": (path.name, handle, "application/octet-stream")})

    def review_and_publish(self, dataset_id: str, author: str = "alice",
                           reviewer: str = "rita") -> dict:
        for step, user in (("submit", author), ("approve", reviewer)):
            response = self.post(f"/api/datasets/{dataset_id}/draft/{step}", user)
            assert response.status_code == 200, f"{step}: {response.text}"
        result = self.publish(dataset_id, author)
        self.wait_served(dataset_id, result["version"])
        return result

    def publish(self, dataset_id: str, user: str = "alice") -> dict:
        """Publish the approved draft and follow its job to success; the job's result."""
        job = self.follow(self.post(f"/api/datasets/{dataset_id}/draft/publish", user), user)
        assert job["state"] == "succeeded", job
        return job["result"]

    def follow(self, answer: requests.Response, user: str = "alice",
               timeout: float = 180) -> dict:
        """The job of a publish's 202 answer, once it has succeeded or failed."""
        assert answer.status_code == 202, answer.text
        location = answer.headers["Location"]

        def finished() -> dict | None:
            job = self.get(location, user).json()
            return job if job["state"] in ("succeeded", "failed") else None

        job = wait_for(finished, timeout, 0.1)
        assert job, f"the job {location} did not finish"
        return job

    def wait_served(self, dataset_id: str, version: int | None) -> None:
        """Wait until /ogc serves that version on every worker (each checks once a second)."""

        def served() -> bool:
            for _ in range(6):  # fresh connections, spread over the workers
                answer = self.get(f"/ogc/collections/{dataset_id}")
                if (answer.status_code == 200) != (version is not None):
                    return False
                if version is not None and f"/{dataset_id}/{version}/" not in answer.text:
                    return False
            return True

        assert wait_for(served), f"/ogc does not serve {dataset_id} version {version}"

    def draft_dataset(self, prefix: str, source: Path, kind: str = "vector",
                      **manifest_changes) -> tuple[str, requests.Response]:
        """Create a dataset, put a valid manifest and upload source; return id and answer."""
        dataset_id = self.new_id(prefix)
        self.create(dataset_id)
        manifest = make_manifest(dataset_id, kind, **manifest_changes)
        assert self.put_manifest(dataset_id, manifest).status_code == 200
        return dataset_id, self.upload(dataset_id, source)


@contextlib.contextmanager
def running_api(home: Path, workers: int = 2, **environment) -> Iterator[Api]:
    """A real server over `home` (with extra environment), and the test accounts."""
    # The home's own database (home_on_run_profile) unless the test names an engine; the
    # tests read the state where the server keeps it (api.environment: api_environment).
    environment = {**home_environment(home), **environment}
    # `taza users` sees the environment too (TAZA_DATABASE_URL: the accounts' engine).
    with environment_set(environment):
        tokens = add_accounts(home)
        server = start_server(home, workers=workers)
    api = Api(server, tokens, {key: str(value) for key, value in environment.items()})
    try:
        yield api
    finally:
        stop_server(api.server)  # a test may have restarted it


def make_manifest(dataset_id: str, kind: str = "vector", **changes) -> dict:
    """A valid manifest for an upload: the sample airports (vector) or slope (raster) one."""
    sample = "airports" if kind == "vector" else "slope"
    data = yaml.safe_load((DATASETS / f"{sample}.yaml").read_text(encoding="utf-8"))
    data["id"] = dataset_id
    data.pop("source")
    data.pop("id_field", None)
    data.pop("role", None)  # the sample holds it: a second live holder would be refused
    data.update(changes)
    return data


def finding_messages(answer: dict, status: str = "blocking") -> list[str]:
    return [f"{f['location']}: {f['message']}" for f in answer["findings"]
            if f["status"] == status]


def wait_for(check, timeout: float = 10.0, interval: float = 0.1):
    """Poll until check() returns something truthy (used only where nothing is timed)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def workers(server: Server) -> list[int]:
    """The gunicorn workers: children of the master (`taza serve` execs gunicorn), not the
    pycsw server the master also starts (catalog/discovery/csw.py, from .venv-csw)."""
    pid = server.process.pid
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [child for child in children if not _is_pycsw(child)]


def _is_pycsw(pid: int) -> bool:
    try:
        return b"venv-csw" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def get_with_worker(server: Server, path: str) -> tuple[requests.Response, int | None]:
    """GET on a fresh connection, and the pid of the worker that holds its server end.

    The response is streamed, so the connection stays open while /proc is read: the server
    side of our socket is the /proc/net/tcp entry from the server's port to our port, and the
    worker is the process with that socket inode among its open files.
    """
    with requests.Session() as session:
        response = session.get(server.url + path, timeout=60, stream=True)
        client_port = response.raw._connection.sock.getsockname()[1]
        server_port = int(server.url.rsplit(":", 1)[1])
        inode = _socket_inode(server_port, client_port)
        worker = next((pid for pid in workers(server) if _holds_socket(pid, inode)), None)
        response.content  # noqa: B018 (read the body before the session closes)
    return response, worker


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == local_port and \
                int(remote.split(":")[1], 16) == remote_port:
            return fields[9]
    return None


def _holds_socket(pid: int, inode: str | None) -> bool:
    if inode is None:
        return False
    target = f"socket:[{inode}]"
    try:
        return any(os.readlink(fd) == target for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


# -- sources ---------------------------------------------------------------------------------

def airports_features() -> list[dict]:
    return json.loads((SOURCES / "airports.geojson").read_text())["features"]


def write_geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def square(x: float, y: float, size: float = 0.1) -> dict:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def polygon_features(count: int = 5) -> list[dict]:
    return [{"type": "Feature", "properties": {"code": f"P{i}", "name": f"parcel {i}"},
             "geometry": square(74 + i * 0.2, 42.5)} for i in range(count)]


def write_shapefile_zip(folder: Path, name: str, crs: str = "EPSG:4326", with_prj: bool = True,
                        extra_members: dict[str, bytes] | None = None) -> Path:
    """The airports as a zipped Shapefile, optionally reprojected and without .prj."""
    shapefile = folder / f"{name}.shp"
    schema = {"geometry": "Point", "properties": {"icao": "str:4", "name": "str:80"}}
    with fiona.open(shapefile, "w", driver="ESRI Shapefile", schema=schema, crs=crs) as sink:
        for feature in airports_features():
            geometry = feature["geometry"]
            if crs != "EPSG:4326":
                geometry = transform_geom("EPSG:4326", crs, geometry)
            sink.write({"geometry": geometry, "properties": {
                "icao": feature["properties"]["icao"], "name": feature["properties"]["name"]}})
    archive = folder / f"{name}.zip"
    suffixes = (".shp", ".shx", ".dbf", ".prj", ".cpg") if with_prj else (".shp", ".shx", ".dbf")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for suffix in suffixes:
            if shapefile.with_suffix(suffix).exists():
                bundle.write(shapefile.with_suffix(suffix), f"{name}/{name}{suffix}")
        for member, data in (extra_members or {}).items():
            bundle.writestr(member, data)
    return archive


def write_geopackage(path: Path, features: list[dict], geometry_type: str = "Polygon") -> Path:
    schema = {"geometry": geometry_type, "properties": {"code": "str", "name": "str"}}
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs="EPSG:4326",
                    layer=path.stem) as sink:
        sink.writerecords(features)
    return path


def write_csv_lonlat(path: Path) -> Path:
    lines = ["icao,name,longitude,latitude"]
    for feature in airports_features():
        lon, lat = feature["geometry"]["coordinates"][:2]
        lines.append(f"{feature['properties']['icao']},\"{feature['properties']['name']}\","
                     f"{lon},{lat}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv_wkt(path: Path) -> Path:
    lines = ["code,wkt"]
    for i in range(4):
        x = 74 + i * 0.2
        lines.append(f'Q{i},"POLYGON (({x} 42, {x + 0.1} 42, {x + 0.1} 42.1, {x} 42.1, {x} 42))"')
    path.write_text("\n".join(lines) + "\n")
    return path


def write_kml(path: Path) -> Path:
    placemarks = "".join(
        f"<Placemark><name>{f['properties']['icao']}</name><Point><coordinates>"
        f"{f['geometry']['coordinates'][0]},{f['geometry']['coordinates'][1]}"
        "</coordinates></Point></Placemark>" for f in airports_features())
    path.write_text('<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/'
                    f'kml/2.2"><Document><Folder><name>airports</name>{placemarks}</Folder>'
                    "</Document></kml>")
    return path


def write_geotiff(path: Path, size: int = 120, bands: int = 1, seed: int = 0,
                  crs: str = "EPSG:4326") -> Path:
    rng = np.random.default_rng(seed)
    data = rng.uniform(0, 40, (bands, size, size)).astype("float32")
    bounds = (74.0, 42.0, 75.0, 43.0) if crs == "EPSG:4326" else (400000, 4650000, 480000,
                                                                   4730000)
    transform = from_bounds(*bounds, size, size)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands,
                       dtype="float32", crs=crs, transform=transform, nodata=-9999) as sink:
        sink.write(data)
        for band in range(1, bands + 1):
            sink.update_tags(band, NETCDF_VARNAME=("height", "slope")[band - 1])
    return path


def write_netcdf(path: Path, variables: int = 1) -> Path:
    """NetCDF through GDAL's netCDF driver: one variable, or two (height1, slope2)."""
    tiff = write_geotiff(path.with_suffix(".tif"), size=60, bands=variables)
    rasterio.shutil.copy(tiff, path, driver="netCDF")
    tiff.unlink()
    return path


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()
