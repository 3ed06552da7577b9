"""The embedded job queue: one SQLite file, TAZA_HOME/jobs/queue.sqlite (beside
the processes' jobs.sqlite), no service.

A worker claims a job by writing its name and a lease (an expiry time) into the job's row in
one IMMEDIATE transaction, so two workers never claim the same job. While the handler runs, a
heartbeat thread renews the lease; a worker that dies stops renewing it, and once the lease
has run out any worker claims the job again (its attempts count up; a job whose workers died
TAZA_JOB_MAX_ATTEMPTS times fails). Progress is written with the renewals.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from catalog.jobs import (
    ACTIVE,
    FAILED,
    QUEUED,
    RUNNING,
    Handler,
    Job,
    JobConflict,
    QueueSettings,
    run_handler,
    worker_lost,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 15_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT,
    args TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    progress INTEGER NOT NULL DEFAULT 0,
    step TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, created);
CREATE INDEX IF NOT EXISTS jobs_by_subject ON jobs(kind, subject, state);
"""

# Wakes this process's workers when it submits a job (others notice within a poll).
_submitted = threading.Condition()
_schema_ready: set[str] = set()  # queue files whose table this process has made sure of


class SQLiteJobs:
    """The `Jobs` interface over TAZA_HOME/jobs/queue.sqlite (WAL: readers never wait)."""

    def __init__(self, home: Path, settings: QueueSettings):
        self.path = Path(home) / "jobs" / "queue.sqlite"
        self.settings = settings

    def submit(self, kind: str, args: dict, subject: str | None = None,
               unique: bool = False) -> Job:
        job_id = uuid.uuid4().hex
        with self._connect() as connection:
            if unique and (active := _active(connection, kind, subject)) is not None:
                raise JobConflict(active)
            connection.execute(
                "INSERT INTO jobs (id, kind, subject, args, state, created) "
                "VALUES (?, ?, ?, ?, ?, ?)", (job_id, kind, subject, json.dumps(args), QUEUED,
                                             time.time()))
        with _submitted:
            _submitted.notify_all()
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._connect(write=False) as connection:
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def work(self, handlers: Mapping[str, Handler], stop: threading.Event) -> None:
        worker = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        while not stop.is_set():
            try:
                job = self.claim(worker, tuple(handlers))
            except sqlite3.Error:
                log.exception("the job queue %s cannot be read", self.path)
                job = None
            if job is None:
                with _submitted:
                    _submitted.wait(self.settings.poll_seconds)
                continue
            self._run(job, worker, handlers[job.kind])

    def claim(self, worker: str, kinds: tuple[str, ...]) -> Job | None:
        """The oldest job waiting, or whose worker's lease ran out, now leased to worker."""
        now = time.time()
        marks = ",".join("?" * len(kinds))
        with self._connect(write=False) as connection:  # idle workers never take the write lock
            waiting = connection.execute(
                "SELECT 1 FROM jobs WHERE state = ? OR (state = ? AND lease_until < ?) LIMIT 1",
                (QUEUED, RUNNING, now)).fetchone()
        if waiting is None:
            return None
        with self._connect() as connection:
            connection.execute(  # workers died on it too often: give up
                "UPDATE jobs SET state = ?, finished = ?, error = ? WHERE state = ? "
                "AND lease_until < ? AND attempts >= ?",
                (FAILED, now, json.dumps(worker_lost(self.settings.max_attempts)), RUNNING, now,
                 self.settings.max_attempts))
            row = connection.execute(
                f"SELECT id FROM jobs WHERE kind IN ({marks}) AND (state = ? OR "  # noqa: S608
                "(state = ? AND lease_until < ?)) ORDER BY created LIMIT 1",
                (*kinds, QUEUED, RUNNING, now)).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE jobs SET state = ?, worker = ?, lease_until = ?, "
                "attempts = attempts + 1, started = COALESCE(started, ?) WHERE id = ?",
                (RUNNING, worker, now + self.settings.lease_seconds, now, row["id"]))
            claimed = connection.execute("SELECT * FROM jobs WHERE id = ?",
                                         (row["id"],)).fetchone()
        return _job(claimed)

    def _run(self, job: Job, worker: str, handler: Handler) -> None:
        """Run one claimed job, renewing its lease until the handler returns."""
        returned = threading.Event()

        def heartbeat() -> None:
            while not returned.wait(self.settings.lease_seconds / 3):
                self._renew(job.id, worker)

        threading.Thread(target=heartbeat, daemon=True, name=f"lease-{job.id[:8]}").start()
        try:
            run_handler(handler, job,
                        lambda percent, step: self._renew(job.id, worker, percent, step),
                        lambda state, **outcome: self._finish(job.id, worker, state, **outcome))
        finally:
            returned.set()

    def _renew(self, job_id: str, worker: str, percent: int | None = None,
               step: str | None = None) -> None:
        """Extend the lease (and record progress) while this worker still holds the job."""
        with self._connect() as connection:
            connection.execute(
                "UPDATE jobs SET lease_until = ?, progress = COALESCE(?, progress), "
                "step = COALESCE(?, step) WHERE id = ? AND worker = ? AND state = ?",
                (time.time() + self.settings.lease_seconds,
                 None if percent is None else max(0, min(100, int(percent))), step, job_id,
                 worker, RUNNING))

    def _finish(self, job_id: str, worker: str, state: str, result: dict | None = None,
                error: dict | None = None) -> None:
        with self._connect() as connection:
            connection.execute(
                "UPDATE jobs SET state = ?, finished = ?, lease_until = NULL, "
                "progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END, "
                "result = ?, error = ? WHERE id = ? AND worker = ? AND state = ?",
                (state, time.time(), state, json.dumps(result) if result is not None else None,
                 json.dumps(error) if error is not None else None, job_id, worker, RUNNING))

    @contextlib.contextmanager
    def _connect(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if str(self.path) not in _schema_ready:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(SCHEMA)
                _schema_ready.add(str(self.path))
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()


def _active(connection: sqlite3.Connection, kind: str, subject: str | None) -> Job | None:
    row = connection.execute(
        "SELECT * FROM jobs WHERE kind = ? AND subject IS ? AND state IN (?, ?) "
        "ORDER BY created LIMIT 1", (kind, subject, *ACTIVE)).fetchone()
    return _job(row) if row else None


def _job(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], kind=row["kind"], subject=row["subject"],
               args=json.loads(row["args"]), state=row["state"], progress=row["progress"],
               step=row["step"], attempts=row["attempts"], created=row["created"],
               started=row["started"], finished=row["finished"],
               result=json.loads(row["result"]) if row["result"] else None,
               error=json.loads(row["error"]) if row["error"] else None)
