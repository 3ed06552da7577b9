"""CSW 2.0.2 / 3.0 at /csw: pycsw 2.6.2 in its own virtualenv (.venv-csw), over the same
records as /dcat and the OGC API Records.

pycsw's pins clash with ours (OWSLib<0.29, SQLAlchemy<2), so it runs as its own gunicorn on a
Unix socket under TAZA_HOME/run/csw/ (no second public port), started and stopped with
`taza serve` (config/gunicorn.conf.py), and /csw forwards GET and POST to it. Its repository is
built per live release: the ISO 19139 documents of catalog/metadata are written into a folder
and loaded with pycsw's own loader into a SQLite file, then pycsw's configuration is switched to
it by an atomic rename (pycsw reads its configuration at every request).
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import http.client
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from catalog import settings
from catalog.metadata.iso19139 import iso19139_xml
from catalog.metadata.links import CatalogInfo, CatalogUrls
from catalog.store import CatalogStore

CSW_VENV = Path(os.environ.get("TAZA_CSW_VENV", settings.PROJECT_ROOT / ".venv-csw"))
TIMEOUT = 30
# pycsw's WSGI entry takes a configuration *path* from the query string: never forwarded.
REFUSED_PARAMETERS = frozenset({"config"})
LOADER = """
import sys
from pycsw.core import admin, config
database, folder = sys.argv[1], sys.argv[2]
admin.setup_db(database, "records", folder)
loaded = admin.load_records(config.StaticContext(), database, "records", folder)
if len(loaded) != int(sys.argv[3]):
    sys.exit(f"pycsw loaded {len(loaded)} of {sys.argv[3]} records")
"""


class CswUnavailable(Exception):
    """pycsw is not installed or does not answer (the message says which)."""


def folder(home: Path) -> Path:
    """This node's pycsw (socket, repository): nodes sharing a home each run their own."""
    return settings.node_run_dir(home) / "csw"


def socket_path(home: Path) -> Path:
    return folder(home) / "pycsw.sock"


def config_path(home: Path) -> Path:
    return folder(home) / "pycsw.cfg"


def python() -> Path:
    return CSW_VENV / "bin" / "python"


def start(home: Path) -> subprocess.Popen | None:
    """pycsw's gunicorn on the Unix socket, or None when its virtualenv is not built."""
    if not python().exists():
        return None
    folder(home).mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path(home).unlink()
    env = {"PATH": os.environ.get("PATH", ""), "PYCSW_CONFIG": str(config_path(home))}
    return subprocess.Popen(
        [str(python()), "-W", "ignore", "-m", "gunicorn", "--bind",
         f"unix:{socket_path(home)}", "--workers", "1", "--threads", "4",
         "--timeout", str(TIMEOUT), "--log-level", "warning", "pycsw.wsgi:application"],
        # Same process group as the server: whatever ends the server's group ends pycsw too.
        env=env, stdout=subprocess.DEVNULL)


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def ensure_repository(store: CatalogStore, public_url: str) -> None:
    """pycsw's repository and configuration for the live release (built once per release)."""
    release = store.current()
    number = release.number if release else 0
    base = folder(store.home)
    base.mkdir(parents=True, exist_ok=True)
    if _configured_release(store.home) == number:
        return
    with _locked(base / "build.lock"):
        if _configured_release(store.home) == number:
            return
        records = store.current_records()
        target = base / f"release-{number}"
        documents = target / "records"
        documents.mkdir(parents=True, exist_ok=True)
        urls = CatalogUrls(public_url)
        for record in records:
            (documents / f"{record.id}.xml").write_bytes(
                iso19139_xml(record, urls, store.assets))
        database = target / "records.db"
        with contextlib.suppress(FileNotFoundError):
            database.unlink()
        loaded = subprocess.run(
            [str(python()), "-W", "ignore", "-c", LOADER, f"sqlite:///{database}",
             str(documents), str(len(records))],
            capture_output=True, text=True, timeout=120, check=False)
        if loaded.returncode != 0:
            raise CswUnavailable(f"pycsw could not load the records: {loaded.stderr[-500:]}")
        _write_config(store.home, database, urls, number)


def _write_config(home: Path, database: Path, urls: CatalogUrls, release: int) -> None:
    info = CatalogInfo.from_config()
    config = configparser.ConfigParser(interpolation=None)
    config["server"] = {
        "home": str(folder(home)), "url": f"{urls.base}/csw",
        "mimetype": "application/xml; charset=UTF-8", "encoding": "UTF-8",
        "language": "en-US", "maxrecords": "100", "loglevel": "ERROR", "logfile": "",
        "pretty_print": "true", "profiles": "apiso", "federatedcatalogues": "",
    }
    config["manager"] = {"transactions": "false", "allowed_ips": ""}
    config["metadata:main"] = {
        "identification_title": info.title["en"],
        "identification_abstract": info.description["en"],
        "identification_keywords": "Kyrgyzstan,open data,geodata",
        "identification_keywords_type": "theme", "identification_fees": "None",
        "identification_accessconstraints": "None",
        "provider_name": info.publisher, "provider_url": urls.home,
        "contact_name": info.publisher, "contact_position": "", "contact_address": "",
        "contact_city": "", "contact_stateorprovince": "", "contact_postalcode": "",
        "contact_country": "Kyrgyzstan", "contact_phone": "", "contact_fax": "",
        "contact_email": info.email, "contact_url": urls.home, "contact_hours": "",
        "contact_instructions": "", "contact_role": "pointOfContact",
    }
    config["repository"] = {"database": f"sqlite:///{database}", "table": "records"}
    config["taza"] = {"release": str(release)}
    staging = config_path(home).with_suffix(".cfg.tmp")
    with staging.open("w", encoding="utf-8") as handle:
        config.write(handle)
    os.replace(staging, config_path(home))


def _configured_release(home: Path) -> int | None:
    config = configparser.ConfigParser(interpolation=None)
    if not config.read(config_path(home), encoding="utf-8"):
        return None
    return config.getint("taza", "release", fallback=None)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path):
        super().__init__("localhost", timeout=TIMEOUT)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.path)


def forward(home: Path, method: str, query: str, body: bytes | None,
            content_type: str | None) -> tuple[int, str, bytes]:
    """pycsw's answer (status, content type, body) to one request."""
    connection = _UnixConnection(socket_path(home))
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        connection.request(method, "/" + (f"?{query}" if query else ""), body=body,
                           headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", "application/xml"), answer.read()
    except OSError as err:
        raise CswUnavailable(f"pycsw does not answer: {err}") from None
    finally:
        connection.close()
