"""A private PostgreSQL cluster (Debian's postgresql-15 with PostGIS) in a folder of ours.

Tests, benchmarks and `make cluster` start one on a loopback port: its own data directory, its own
socket directory, password authentication with a password generated into the folder. As root the
server runs as the `postgres` user (PostgreSQL refuses to run as root).

    python -m catalog.cluster.postgres start --folder var/pg --port 5433   # prints the URL
    python -m catalog.cluster.postgres stop --folder var/pg
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

# What the catalog's stores need: PostGIS for features, btree_gist and unaccent for pgstac.
CATALOG_EXTENSIONS = ("postgis", "btree_gist", "unaccent")
SUPERUSER = "taza"
STATE_FILE = "cluster.json"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server programs are missing (scripts/install-system-deps installs them)."""


def server_bindir() -> Path:
    """The newest Debian PostgreSQL server's bin folder, or PG_BINDIR when set."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    majors = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                    key=lambda p: int(p.parent.parent.name))
    if not majors:
        raise PostgresUnavailable("no PostgreSQL server under /usr/lib/postgresql "
                                  "(run scripts/install-system-deps)")
    return majors[-1].parent


def _as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse root; Debian's package creates the `postgres` user for this.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@dataclass(frozen=True)
class PrivatePostgres:
    """One cluster: `folder` holds data/, the socket, the log, the password and the port."""

    folder: Path
    port: int

    @classmethod
    def existing(cls, folder: Path) -> PrivatePostgres:
        """The cluster a previous `start` left in `folder` (its port is recorded there)."""
        state = json.loads((Path(folder) / STATE_FILE).read_text())
        return cls(Path(folder), int(state["port"]))

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def password(self) -> str:
        return (self.folder / "password").read_text().strip()

    def url(self, database: str = "taza") -> str:
        """A libpq URL for clients (TAZA_DATABASE_URL, psycopg, ogr2ogr's PG: driver)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def initialise(self) -> None:
        """initdb once; a folder that already holds a cluster is kept as it is."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        password_file = self.folder / "password"
        password_file.write_text(secrets.token_urlsafe(24) + "\n")
        password_file.chmod(0o600)
        for path in (self.folder, password_file):
            _give_to_server_user(path)
        subprocess.run(
            _as_server_user([str(server_bindir() / "initdb"), "-D", str(self.data_dir),
                             "-U", SUPERUSER, f"--pwfile={password_file}",
                             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"]),
            check=True, capture_output=True, text=True)

    def start(self, *, durable: bool = True, max_connections: int = 200) -> None:
        """Start on 127.0.0.1 only. `durable=False` trades crash safety for speed (tests, bench):
        data survives a restart of PostgreSQL, not a crash of the machine."""
        self.initialise()
        (self.folder / STATE_FILE).write_text(json.dumps({"port": self.port}))
        options = {
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.folder),
            "max_connections": max_connections,
            "shared_buffers": "256MB",
            "fsync": "on" if durable else "off",
            "synchronous_commit": "on" if durable else "off",
            "full_page_writes": "on" if durable else "off",
        }
        flags = " ".join(f"-c {name}={value}" for name, value in options.items())
        if self.running():
            return
        subprocess.run(
            _as_server_user([str(server_bindir() / "pg_ctl"), "-D", str(self.data_dir),
                             "-l", str(self.log_file), "-o", flags, "-w", "-t", "60", "start"]),
            check=True, capture_output=True, text=True)

    def running(self) -> bool:
        status = subprocess.run(
            _as_server_user([str(server_bindir() / "pg_ctl"), "-D", str(self.data_dir), "status"]),
            capture_output=True, text=True)
        return status.returncode == 0

    def stop(self) -> None:
        if self.data_dir.exists() and self.running():
            subprocess.run(
                _as_server_user([str(server_bindir() / "pg_ctl"), "-D", str(self.data_dir),
                                 "-m", "fast", "-w", "-t", "60", "stop"]),
                check=True, capture_output=True, text=True)

    def create_database(self, name: str,
                        extensions: tuple[str, ...] = CATALOG_EXTENSIONS) -> str:
        """Create `name` (if missing) with `extensions`; return its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                   (name,)).fetchone()
            if not exists:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(self.url(name), autocommit=True) as database:
            for extension in extensions:
                database.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}")
                                 .format(sql.Identifier(extension)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog.cluster.postgres",
                                     description="A private PostgreSQL + PostGIS on loopback.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start (initialise first if needed); print the URL")
    start.add_argument("--folder", type=Path, required=True)
    start.add_argument("--port", type=int, required=True)
    start.add_argument("--database", default="taza")
    start.add_argument("--fast", action="store_true", help="fsync off (tests and benchmarks)")
    stop = commands.add_parser("stop", help="stop the cluster in --folder")
    stop.add_argument("--folder", type=Path, required=True)
    url = commands.add_parser("url", help="print the URL of a database of a running cluster")
    url.add_argument("--folder", type=Path, required=True)
    url.add_argument("--database", default="taza")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "start":
            cluster = PrivatePostgres(arguments.folder.resolve(), arguments.port)
            cluster.start(durable=not arguments.fast)
            print(cluster.create_database(arguments.database))
        elif arguments.command == "stop":
            if (arguments.folder / STATE_FILE).exists():
                PrivatePostgres.existing(arguments.folder.resolve()).stop()
        else:
            print(PrivatePostgres.existing(arguments.folder.resolve()).url(arguments.database))
    except (PostgresUnavailable, subprocess.CalledProcessError, psycopg.Error) as error:
        detail = getattr(error, "stderr", None) or str(error)
        print(f"error: {detail.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
