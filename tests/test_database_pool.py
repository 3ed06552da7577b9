"""The connection pools of catalog.postgis.database while the database is down: every thread
waiting for a connection hears PoolTimeout (which the stores say as "the database cannot be
reached"), never PoolClosed (no PostgreSQL needed: the URL names a port nothing listens on);
and the check of a connection the pool hands out (the session's private PostgreSQL)."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from catalog.postgis import database
from tests.conftest import free_port

WAITERS = 4


def test_threads_waiting_together_on_a_database_that_is_down_all_time_out(monkeypatch):
    # The first waiter to time out closes the pool; the others were waiting on it at that moment
    # (psycopg_pool fails them with PoolClosed), which reached the worker's upload sweeper as
    # a traceback in CI.
    monkeypatch.setenv("TAZA_DATABASE_WAIT_SECONDS", "1")
    url = f"postgresql://taza@127.0.0.1:{free_port()}/taza?connect_timeout=1"
    start = threading.Barrier(WAITERS)
    heard: list[BaseException | None] = []

    def wait() -> None:
        start.wait()
        try:
            with database.connection(url):
                heard.append(None)
        except BaseException as err:  # noqa: BLE001 - the test reports what each thread heard
            heard.append(err)

    threads = [threading.Thread(target=wait) for _ in range(WAITERS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        database.close_pools()
    assert len(heard) == WAITERS, heard
    assert all(type(err) is PoolTimeout for err in heard), heard



def _record(err: BaseException) -> logging.LogRecord:
    try:
        raise RuntimeError("Database error.") from err
    except RuntimeError as wrapped:
        return logging.LogRecord("procrastinate.worker", logging.ERROR, __file__, 1,
                                 "listener error: %r", (wrapped,), (type(wrapped), wrapped,
                                                                   wrapped.__traceback__))


@pytest.mark.parametrize("cause", [
    PoolTimeout("couldn't get a connection after 1.00 sec"),
    psycopg.OperationalError("connection failed: Connection refused\n\tIs the server running?"),
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
])
def test_a_log_record_of_a_database_that_cannot_be_reached_is_one_line(cause):
    record = _record(cause)
    assert database.DatabaseDownInOneLine().filter(record)
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert record.getMessage().startswith("listener error: RuntimeError('Database error.'): ")
    assert str(cause).splitlines()[0] in record.getMessage()


@pytest.mark.parametrize("cause", [
    psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
    psycopg.errors.UndefinedTable('relation "procrastinate_jobs" does not exist'),
    ValueError("not the database"),
])
def test_other_errors_keep_their_traceback(cause):
    record = _record(cause)
    assert database.DatabaseDownInOneLine().filter(record)
    assert record.exc_info is not None


# --- the check of a connection handed out (a real PostgreSQL: the session's private one) ------


@pytest.fixture()
def pool_url(private_postgres) -> str:
    return private_postgres.create_database("pool_checks", extensions=())


def _protocol_messages_during(conn: psycopg.Connection, action, tmp_path) -> str:
    """libpq's trace of what the connection sent and received while `action` ran."""
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as out:
        conn.pgconn.trace(out.fileno())
        try:
            action()
        finally:
            conn.pgconn.untrace()
    return trace.read_text()


def test_a_healthy_idle_connection_is_handed_out_without_a_round_trip(pool_url, tmp_path):
    with psycopg.connect(pool_url, autocommit=True) as conn:
        conn.execute("SELECT 1").fetchall()
        said = _protocol_messages_during(conn, lambda: database.check_if_in_doubt(conn),
                                         tmp_path)
        assert said == ""
        # The trace does record a round trip: psycopg_pool's own check makes one.
        said = _protocol_messages_during(
            conn, lambda: database.ConnectionPool.check_connection(conn), tmp_path)
        assert "Query" in said and "ReadyForQuery" in said


def test_taking_a_healthy_connection_from_the_pool_makes_no_round_trip(pool_url, tmp_path):
    trace = tmp_path / "libpq.trace"
    try:
        with trace.open("w") as out:
            with database.connection(pool_url) as conn:
                conn.pgconn.trace(out.fileno())  # traced while it waits in the pool
            with database.connection(pool_url) as again:
                assert again is conn  # the one idle connection
                out.flush()
                said = trace.read_text()
                again.pgconn.untrace()
        assert said == ""
    finally:
        database.close_pools()


def test_a_connection_whose_backend_was_ended_fails_the_check(pool_url):
    """What a database restart does to every pooled connection: the pool discards it."""
    with psycopg.connect(pool_url, autocommit=True) as conn, \
            psycopg.connect(pool_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            database.check_if_in_doubt(conn)


def test_a_connection_left_in_a_transaction_is_not_handed_out_as_healthy(pool_url):
    """Not idle: psycopg_pool's own check decides, and refuses it (the pool discards it)."""
    with psycopg.connect(pool_url) as conn:  # not autocommit: SELECT opens a transaction
        conn.execute("SELECT 1").fetchall()
        with pytest.raises(psycopg.Error):
            database.check_if_in_doubt(conn)


def test_the_pool_replaces_a_connection_whose_backend_was_ended(pool_url):
    try:
        with database.connection(pool_url) as conn:
            first = conn.info.backend_pid
        with psycopg.connect(pool_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [first])
        time.sleep(0.2)  # the FATAL message and the end of file reach the socket
        with database.connection(pool_url) as conn:
            assert conn.info.backend_pid != first
            assert conn.execute("SELECT 42").fetchone() == (42,)
    finally:
        database.close_pools()
