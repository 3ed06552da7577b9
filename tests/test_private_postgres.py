"""The private PostgreSQL that tests, benchmarks and `make cluster` start (catalog/cluster)."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from catalog.cluster.postgres import PrivatePostgres


def test_a_database_with_the_catalogs_extensions(private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database("harness_check")
    with psycopg.connect(url) as connection:
        names = {row[0] for row in connection.execute("SELECT extname FROM pg_extension")}
        area = connection.execute(
            "SELECT ST_Area(ST_MakeEnvelope(0, 0, 2, 3, 4326))").fetchone()[0]
    assert {"postgis", "btree_gist", "unaccent"} <= names
    assert area == 6.0
    private_postgres.drop_database("harness_check")


def test_listens_on_loopback_only_with_a_password(private_postgres: PrivatePostgres) -> None:
    with psycopg.connect(private_postgres.url("postgres")) as connection:
        listen = connection.execute("SHOW listen_addresses").fetchone()[0]
    assert listen == "127.0.0.1"
    wrong = private_postgres.url("postgres").replace(private_postgres.password, "not-the-password")
    try:
        psycopg.connect(wrong, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        assert "password authentication failed" in str(error)
    else:
        raise AssertionError("a wrong password was accepted")


def test_the_command_line_finds_a_running_cluster_by_its_folder(
        private_postgres: PrivatePostgres) -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "catalog.cluster.postgres", "url",
         "--folder", str(private_postgres.folder), "--database", "postgres"],
        capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == private_postgres.url("postgres")


def test_restarting_keeps_the_data(private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database("restart_check")
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE kept (name text)")
        connection.execute("INSERT INTO kept VALUES ('still here')")
    private_postgres.stop()
    assert not private_postgres.running()
    private_postgres.start(durable=False)
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT name FROM kept").fetchone()[0] == "still here"
    private_postgres.drop_database("restart_check")
