"""The PostgreSQL profile's job queue: procrastinate (docs/deployment.md, "Job queue").

procrastinate queues, hands out and re-queues the jobs in its own tables (`procrastinate_jobs`,
`procrastinate_workers`: every worker writes a heartbeat, and a job whose worker's heartbeat
stops is "stalled"); every worker here re-queues stalled jobs (`get_stalled_jobs`,
`retry_job`), so a job outlives a dead worker. What procrastinate does not keep (progress,
the JSON result or error, the subject a publish is about) is in `taza_jobs`, keyed by the
job ids the API hands out; a job's procrastinate id is recorded beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import procrastinate
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from catalog.core.errors import first_line
from catalog.jobs import (
    ACTIVE,
    FAILED,
    QUEUED,
    RUNNING,
    UNEXPECTED,
    Handler,
    Job,
    JobConflict,
    QueueSettings,
    run_handler,
    worker_lost,
)

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 5  # between attempts to reach a job queue's database that does not answer

QUEUE = "taza"
SCHEMA = """
CREATE TABLE IF NOT EXISTS taza_jobs (
    id text PRIMARY KEY,
    procrastinate_id bigint,
    kind text NOT NULL,
    subject text,
    args jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    progress integer NOT NULL DEFAULT 0,
    step text,
    attempts integer NOT NULL DEFAULT 0,
    created double precision NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
    started double precision,
    finished double precision,
    result jsonb,
    error jsonb
);
CREATE INDEX IF NOT EXISTS taza_jobs_by_subject ON taza_jobs (kind, subject, state);
"""
SCHEMA_LOCK = 7_301_301  # pg_advisory_xact_lock key: one process creates the tables
NOW = "extract(epoch FROM clock_timestamp())"


class ProcrastinateJobs:
    """The `Jobs` interface over procrastinate in the database at `url`."""

    def __init__(self, url: str, settings: QueueSettings):
        self.url = url
        self.settings = settings
        self._deferrer: procrastinate.App | None = None
        self._lock = threading.Lock()

    def submit(self, kind: str, args: dict, subject: str | None = None,
               unique: bool = False) -> Job:
        job_id = uuid.uuid4().hex
        with self._connect() as connection:
            if unique:  # one submitter at a time per subject, until this transaction ends
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                                   (f"{kind}/{subject}",))
                active = connection.execute(
                    "SELECT * FROM taza_jobs WHERE kind = %s AND subject IS NOT DISTINCT FROM "
                    "%s AND state = ANY(%s) ORDER BY created LIMIT 1",
                    (kind, subject, list(ACTIVE))).fetchone()
                if active is not None:
                    raise JobConflict(_job(active))
            connection.execute(
                "INSERT INTO taza_jobs (id, kind, subject, args, state) "
                "VALUES (%s, %s, %s, %s, %s)", (job_id, kind, subject, Jsonb(args), QUEUED))
        try:
            queued = self._deferring_app().configure_task(kind, queue=QUEUE).defer(job=job_id)
        except Exception:
            self._finish(job_id, FAILED, error=UNEXPECTED)
            raise
        with self._connect() as connection:
            connection.execute("UPDATE taza_jobs SET procrastinate_id = %s WHERE id = %s",
                               (queued, job_id))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM taza_jobs WHERE id = %s",
                                     (job_id,)).fetchone()
        return _job(row) if row else None

    def work(self, handlers: Mapping[str, Handler], stop: threading.Event) -> None:
        """Until `stop`: a database that cannot be reached (not up yet when the worker starts,
        or lost for longer than procrastinate's own reconnection bears) is waited for, and
        the worker started again; before, its thread died and the process ran no job again."""
        while not stop.is_set():
            try:
                with self._connect():  # the tables first: on a fresh database it found none
                    pass
                asyncio.run(self._work(handlers, stop))
            except (psycopg.Error, procrastinate.exceptions.ProcrastinateException) as err:
                log.warning("the job queue's database cannot be reached (%s); trying again "
                            "in %d s", first_line(err), RECONNECT_SECONDS)
                stop.wait(RECONNECT_SECONDS)

    async def _work(self, handlers: Mapping[str, Handler], stop: threading.Event) -> None:
        """procrastinate's worker, plus re-queueing of jobs whose worker stopped beating."""
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url))
        for kind, handler in handlers.items():
            app.task(name=kind, queue=QUEUE)(self._task(handler))
        lease = self.settings.lease_seconds
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                queues=[QUEUE], name=f"{socket.gethostname()}/{uuid.uuid4().hex[:8]}",
                install_signal_handlers=False, update_heartbeat_interval=lease / 3,
                stalled_worker_timeout=lease, fetch_job_polling_interval=1.0))
            while not stop.is_set() and not worker.done():
                await self._requeue_stalled(app, lease)
                await asyncio.sleep(min(lease / 3, 1.0))
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _requeue_stalled(self, app: procrastinate.App, lease: float) -> None:
        try:
            stalled = await app.job_manager.get_stalled_jobs(queue=QUEUE,
                                                             seconds_since_heartbeat=lease)
            for job in stalled:
                log.warning("job %s: its worker stopped; queued again", job.id)
                await app.job_manager.retry_job(job)
        except (psycopg.OperationalError, procrastinate.exceptions.ConnectorException) as err:
            # Down for now (procrastinate's worker notices too, and work() starts it again):
            # one line each round, not a traceback a second.
            log.warning("stalled jobs could not be checked: the job queue's database cannot be "
                        "reached (%s)", first_line(err.__cause__ or err))
        except Exception:
            log.exception("stalled jobs could not be re-queued")

    def _task(self, handler: Handler):
        """The procrastinate task running `handler` for our job `job` (a sync function:
        procrastinate runs it in a thread)."""

        def run(job: str) -> None:
            claimed = self._start(job)
            if claimed is not None:
                run_handler(handler, claimed,
                            lambda percent, step: self._progress(job, percent, step),
                            lambda state, **outcome: self._finish(job, state, **outcome))

        return run

    def _start(self, job_id: str) -> Job | None:
        """Mark the job running (one more attempt); None when it must not run (done, or its
        workers died too often: it fails)."""
        with self._connect() as connection:
            row = connection.execute(
                f"UPDATE taza_jobs SET state = %s, attempts = attempts + 1, "  # noqa: S608
                f"started = COALESCE(started, {NOW}) WHERE id = %s AND state = ANY(%s) "
                "RETURNING *", (RUNNING, job_id, list(ACTIVE))).fetchone()
        if row is None:
            return None
        if row["attempts"] > self.settings.max_attempts:
            self._finish(job_id, FAILED, error=worker_lost(self.settings.max_attempts))
            return None
        return _job(row)

    def _progress(self, job_id: str, percent: int, step: str) -> None:
        with self._connect() as connection:
            connection.execute("UPDATE taza_jobs SET progress = %s, step = %s WHERE id = %s "
                               "AND state = %s",
                               (max(0, min(100, int(percent))), step, job_id, RUNNING))

    def _finish(self, job_id: str, state: str, result: dict | None = None,
                error: dict | None = None) -> None:
        with self._connect() as connection:
            connection.execute(
                f"UPDATE taza_jobs SET state = %s, finished = {NOW}, "  # noqa: S608
                "progress = CASE WHEN %s = 'succeeded' THEN 100 ELSE progress END, "
                "result = %s, error = %s WHERE id = %s",
                (state, state, Jsonb(result) if result is not None else None,
                 Jsonb(error) if error is not None else None, job_id))

    def _deferring_app(self) -> procrastinate.App:
        with self._lock:
            if self._deferrer is None:
                app = procrastinate.App(
                    connector=procrastinate.SyncPsycopgConnector(conninfo=self.url))
                app.open()
                self._deferrer = app
            return self._deferrer

    @contextlib.contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """One transaction (committed on success), after the tables exist."""
        with psycopg.connect(self.url, row_factory=dict_row) as connection:
            if self.url not in _schema_ready:
                with connection.transaction():
                    _create_schema(connection)
                _schema_ready.add(self.url)
            with connection.transaction():
                yield connection


_schema_ready: set[str] = set()  # databases whose tables this process has seen


def _create_schema(connection: psycopg.Connection) -> None:
    """procrastinate's tables and ours, created by whoever comes first."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    exists = connection.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS ok"
                                ).fetchone()["ok"]
    if not exists:
        connection.execute(procrastinate.schema.SchemaManager.get_schema())
    connection.execute(SCHEMA)


def _job(row: dict) -> Job:
    return Job(id=row["id"], kind=row["kind"], subject=row["subject"], args=row["args"],
               state=row["state"], progress=row["progress"], step=row["step"],
               attempts=row["attempts"], created=row["created"], started=row["started"],
               finished=row["finished"], result=row["result"], error=row["error"])

