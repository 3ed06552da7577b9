"""The connection pools of catalog.postgis.database while the database is down: every thread
waiting for a connection hears PoolTimeout (which the stores say as "the database cannot be
reached"), never PoolClosed. Needs no PostgreSQL: the URL names a port nothing listens on."""

from __future__ import annotations

import logging
import threading

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
