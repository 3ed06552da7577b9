"""Processing jobs in SQLite: pygeoapi's process manager for OGC API - Processes.

Why not pygeoapi's TinyDB manager: it rewrites the whole JSON file in place on every update
(a SIGKILL mid-write leaves a file TinyDB cannot read, and every later job request fails) and
reads and writes all jobs on every call. SQLite (WAL, one short transaction per call) is safe
with several gunicorn workers and their threads, and survives a crash.

Asynchronous jobs run on one background thread per server process (a bounded queue; beyond
it, 503). A job records the process that runs it (host, pid and the pid's start time). When
the server restarts or a worker dies, a job left 'accepted' or 'running' by a process that no
longer exists is marked failed with a message saying so: it is never left running forever.
Every request that reads jobs checks this, and so does start-up.

Executions enter through `execute_process`, the manager's public entry point that pygeoapi's
processes API calls. Ours keeps everything an execution needs in local variables: the manager
belongs to the API object that a worker's threads share, and pygeoapi's own version keeps the
running processor on the manager (`self.processor`), so two executions at once could run each
other's process (docs/upstream.md). It also names jobs with random ids (uuid4).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sqlite3
import threading
import uuid
from contextlib import closing, contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pygeoapi.process.base import (
    JobNotFoundError,
    JobResultNotFoundError,
    ProcessorExecuteError,
)
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import (
    DATETIME_FORMAT,
    JobStatus,
    ProcessExecutionMode,
    RequestedProcessExecutionMode,
    RequestedResponse,
    get_current_datetime,
)

from catalog import settings
from catalog.processes.base import (
    ASYNC_BUDGET_S,
    SYNC_BUDGET_S,
    CatalogProcessor,
    OverBudget,
    document_response,
    raw_response,
)
from catalog.processes.inputs import InvalidInput, last_refusal

LOGGER = logging.getLogger(__name__)
MAX_QUEUED_JOBS = settings.queued_jobs()  # per server process, running one included (8)
KEEP_FINISHED_JOBS = 1000
KEEP_RESULT_BYTES = 200_000_000  # results of finished jobs together, newest kept
KEEP_JOBS_DAYS = 7
ORPHANED = ("the server process running this job stopped (restart or crash) before it "
            "finished; submit the job again")
INTERNAL = "internal error while computing (logged on the server)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    identifier TEXT PRIMARY KEY,
    process_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    progress INTEGER,
    created TEXT, started TEXT, updated TEXT, finished TEXT,
    mimetype TEXT,
    owner TEXT,
    result BLOB
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""
# Why a job failed, for translation: a stable message code and its params (JSON). pygeoapi's
# job status has no field for them: the /ogc job route adds them to its answer (`failure`).
# Added after the table was first released: files made before get them on start-up.
FAILURE_COLUMNS = {"message_code": "TEXT", "message_params": "TEXT"}
# Failures of the job machinery itself, by message code (strings.yml `problem.<code>`).
JOB_MESSAGE_CODES = {"orphaned": "job_orphaned", "internal": "job_internal",
                     "queue_full": "job_queue_full"}
COLUMNS = ("identifier", "process_id", "status", "message", "progress", "created", "started",
           "updated", "finished", "mimetype", "owner")
# Every statement is a constant: values go in as parameters.
SELECT_JOB = ("SELECT identifier, process_id, status, message, progress, created, started, "
              "updated, finished, mimetype, owner FROM jobs")
INSERT_JOB = ("INSERT INTO jobs (identifier, process_id, status, message, progress, created, "
              "started, updated, finished, mimetype, owner) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
SELECT_LIVE = "SELECT identifier, owner FROM jobs WHERE status IN ('accepted', 'running')"
FAIL_LIVE = ("UPDATE jobs SET status = 'failed', message = ?, message_code = ?, "
             "updated = ?, finished = ?, progress = 100 "
             "WHERE identifier = ? AND status IN ('accepted', 'running')")
FAIL_JOB = ("UPDATE jobs SET status = 'failed', message = ?, message_code = ?, "
            "message_params = ?, finished = ?, updated = ?, progress = 100 WHERE identifier = ?")
UPDATE_JOB = ("UPDATE jobs SET status = coalesce(?, status), message = coalesce(?, message), "
              "progress = coalesce(?, progress), started = coalesce(?, started), "
              "updated = coalesce(?, updated), finished = coalesce(?, finished), "
              "mimetype = coalesce(?, mimetype), result = coalesce(?, result) "
              "WHERE identifier = ?")
UPDATABLE = ("status", "message", "progress", "started", "updated", "finished", "mimetype",
             "result")
FORGET_OLD = ("DELETE FROM jobs WHERE status NOT IN ('accepted', 'running') AND (created < ? "
              "OR identifier NOT IN (SELECT identifier FROM jobs WHERE status NOT IN "
              "('accepted', 'running') ORDER BY created DESC LIMIT ?) "
              "OR identifier IN (SELECT identifier FROM (SELECT identifier, "
              "sum(coalesce(length(result), 0)) OVER (ORDER BY created DESC) AS kept "
              "FROM jobs WHERE status NOT IN ('accepted', 'running')) WHERE kept > ?))")

_executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="taza-job")
_queued = threading.BoundedSemaphore(MAX_QUEUED_JOBS)


def _now() -> str:
    return get_current_datetime()  # pygeoapi's format, as in the records it creates


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), which
    tells a live process from a later one that reuses its pid; None when there is no such
    process or it has exited (a zombie nobody has reaped yet still has a stat file)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]


def this_process() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{_start_ticks(os.getpid())}"


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, pid, ticks = owner.split("/")
    if host != socket.gethostname():
        return True  # another machine's process: we cannot tell, so leave it alone
    return _start_ticks(int(pid)) == ticks


class ServerBusy(ProcessorExecuteError):
    """503: the job queue is full. Carries a message code and params, as OverBudget does."""
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "ServerBusy"

    def __init__(self, message: str, message_code: str | None = None,
                 params: dict | None = None):
        super().__init__(message, user_msg=message)
        self.code = message_code
        self.params = params or {}


class SQLiteJobManager(BaseManager):
    """pygeoapi process manager keeping jobs and their results in one SQLite file."""

    def __init__(self, manager_def: dict):
        super().__init__(manager_def)
        self.is_async = True
        self.supports_subscribing = False  # callbacks are refused at the edge (web.py)
        self.path = Path(self.connection)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Workers booting at once all create the schema and switch the file to WAL; SQLite
        # answers "database is locked" to concurrent journal-mode switches without waiting,
        # and pygeoapi's OpenAPI builder then silently leaves the processes out. One at a time.
        with _exclusive(self.path.with_name(self.path.name + ".lock")):
            with self._db() as db:
                db.executescript(SCHEMA)
                present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
                for column, kind in FAILURE_COLUMNS.items():
                    if column not in present:  # constant names: no value goes into SQL
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        self.fail_orphans()

    @contextmanager
    def _db(self):
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across crashes
            with db:  # one transaction
                yield db

    # -- job records ----------------------------------------------------------------------

    def fail_orphans(self, identifier: str | None = None) -> None:
        """Mark failed the live jobs whose process is gone (all, or one)."""
        with self._db() as db:
            orphans = [i for i, owner in db.execute(SELECT_LIVE)
                       if (identifier is None or i == identifier) and not _owner_alive(owner)]
            now = _now()
            db.executemany(FAIL_LIVE, [(ORPHANED, JOB_MESSAGE_CODES["orphaned"], now, now, i)
                                       for i in orphans])
        for job in orphans:
            LOGGER.warning("job %s: %s", job, ORPHANED)

    def add_job(self, job_metadata: dict) -> str:
        row = {c: job_metadata.get(c) for c in COLUMNS}
        row["owner"] = this_process()
        with self._db() as db:
            self._forget_old_jobs(db)
            db.execute(INSERT_JOB, [row[c] for c in COLUMNS])
        return row["identifier"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        with self._db() as db:
            db.execute(UPDATE_JOB, [update_dict.get(k) for k in UPDATABLE] + [job_id])
        return True

    def get_jobs(self, status: JobStatus = None, limit: int | None = None,
                 offset: int | None = None) -> dict:
        self.fail_orphans()
        where = {"status": status.value if status else None, "limit": limit or -1,
                 "offset": offset or 0}
        with self._db() as db:
            matched = db.execute("SELECT COUNT(*) FROM jobs WHERE :status IS NULL "
                                 "OR status = :status", where).fetchone()[0]
            rows = db.execute(SELECT_JOB + " WHERE :status IS NULL OR status = :status "
                              "ORDER BY created DESC, rowid DESC LIMIT :limit OFFSET :offset",
                              where).fetchall()
        return {"jobs": [self._job(r) for r in rows], "numberMatched": matched}

    def get_job(self, job_id: str) -> dict:
        self.fail_orphans(job_id)
        with self._db() as db:
            row = db.execute(SELECT_JOB + " WHERE identifier = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError()
        return self._job(row)

    def failure(self, job_id: str) -> tuple[str | None, dict]:
        """Why a failed job failed, for translation: (message code, params); (None, {}) for a
        job without a code (or no such job)."""
        with self._db() as db:
            row = db.execute("SELECT message_code, message_params FROM jobs WHERE identifier = ?"
                             " AND status = 'failed'", (job_id,)).fetchone()
        if row is None or row[0] is None:
            return None, {}
        return row[0], json.loads(row[1]) if row[1] else {}

    def get_job_result(self, job_id: str) -> tuple[str, Any]:
        with self._db() as db:
            row = db.execute("SELECT status, mimetype, result FROM jobs WHERE identifier = ?",
                             (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError()
        status, mimetype, result = row
        if status != JobStatus.successful.value or result is None:
            raise JobResultNotFoundError()
        if mimetype == "application/json":
            return mimetype, json.loads(result)
        return mimetype, bytes(result)

    def delete_job(self, job_id: str) -> bool:
        with self._db() as db:
            removed = db.execute("DELETE FROM jobs WHERE identifier = ?", (job_id,)).rowcount
        if not removed:
            raise JobNotFoundError()
        return True

    def _forget_old_jobs(self, db: sqlite3.Connection) -> None:
        cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=KEEP_JOBS_DAYS)).strftime(
            DATETIME_FORMAT)
        db.execute(FORGET_OLD, (cutoff, KEEP_FINISHED_JOBS, KEEP_RESULT_BYTES))

    @staticmethod
    def _job(row: tuple) -> dict:
        job = dict(zip(COLUMNS, row, strict=True))
        job.pop("owner")
        job["type"] = "process"
        job["mimetype"] = job["mimetype"] or "application/json"
        return job

    # -- execution ------------------------------------------------------------------------

    def execute_process(self, process_id: str, data_dict: dict,
                        execution_mode: RequestedProcessExecutionMode | None = None,
                        requested_outputs: dict | None = None, subscriber: Any = None,
                        requested_response: str = RequestedResponse.raw.value
                        ) -> tuple[str, str, Any, JobStatus, dict[str, str] | None]:
        """Run a process now or in the background; (job id, media type, outputs, status,
        extra response headers), as pygeoapi's processes API expects. `subscriber` is always
        None: callbacks are refused at the edge (web.py)."""
        processor = self.get_processor(process_id)  # a new instance for this execution only
        job_id = str(uuid.uuid4())  # a job's URL is the only key to its results: not guessable
        processor.set_job_id(job_id)
        in_background, applied = _execution_mode(
            execution_mode, processor.metadata.get("jobControlOptions", []), self.is_async)
        now = _now()
        self.add_job({"identifier": job_id, "process_id": process_id, "status":
                      JobStatus.accepted.value, "message": "Job accepted and ready for execution",
                      "progress": 5, "created": now, "started": now, "updated": now,
                      "mimetype": "application/octet-stream"})
        run = self._run_in_background if in_background else self._run_now
        mimetype, outputs, status = run(processor, job_id, data_dict, requested_outputs,
                                        requested_response)
        headers = {"Preference-Applied": applied.value} if applied else None
        return job_id, mimetype, outputs, status, headers

    def _run_now(self, p: CatalogProcessor, job_id: str, data_dict: dict,
                 requested_outputs: dict | None, requested_response: str
                 ) -> tuple[str, Any, JobStatus]:
        """Run now; a bad input answers 400 (a ProcessorExecuteError), not a failed job."""
        p.budget_s = SYNC_BUDGET_S
        try:
            mimetype, outputs = self._run(p, job_id, data_dict, requested_outputs,
                                          requested_response, reraise=True)
        except (InvalidInput, OverBudget) as refusal:  # a 400, or a 503 of a busy server
            last_refusal.set(refusal)  # pygeoapi answers with its text alone
            raise
        return mimetype, outputs, JobStatus.successful

    def _run_in_background(self, p: CatalogProcessor, job_id: str, data_dict: dict,
                           requested_outputs: dict | None, requested_response: str
                           ) -> tuple[str, None, JobStatus]:
        if not _queued.acquire(blocking=False):
            self._fail(job_id, "the server's job queue is full; retry later",
                       message_code=JOB_MESSAGE_CODES["queue_full"])
            busy = ServerBusy(f"the job queue is full ({MAX_QUEUED_JOBS} jobs per server "
                              "process); retry later",
                              message_code=JOB_MESSAGE_CODES["queue_full"])
            last_refusal.set(busy)  # the /ogc edge adds its code to pygeoapi's 503
            raise busy
        p.budget_s = ASYNC_BUDGET_S

        def job():
            try:
                self._run(p, job_id, data_dict, requested_outputs, requested_response,
                          reraise=False)
            finally:
                _queued.release()

        _executor.submit(job)
        return "application/json", None, JobStatus.accepted

    def _run(self, p: CatalogProcessor, job_id: str, data_dict: dict,
             requested_outputs: dict | None, requested_response: str,
             reraise: bool) -> tuple[str, Any]:
        self.update_job(job_id, {"status": JobStatus.running.value, "started": _now(),
                                 "updated": _now(), "message": "computing", "progress": 10})
        try:
            results = p.results(data_dict, requested_outputs)
            if requested_response == RequestedResponse.document.value:
                mimetype, outputs = document_response(results)
            else:
                mimetype, outputs = raw_response(results)
            stored = json.dumps(outputs, ensure_ascii=False).encode("utf-8")
        except ProcessorExecuteError as err:  # InvalidInput and OverBudget carry a code
            self._fail(job_id, err.message, message_code=getattr(err, "code", None),
                       params=getattr(err, "params", None))
            if reraise:
                raise
            return "application/json", None
        except Exception:
            LOGGER.exception("job %s (%s) failed", job_id, p.metadata.get("id"))
            self._fail(job_id, INTERNAL, message_code=JOB_MESSAGE_CODES["internal"])
            if reraise:
                raise ProcessorExecuteError(user_msg=INTERNAL) from None
            return "application/json", None
        now = _now()
        self.update_job(job_id, {"status": JobStatus.successful.value, "message": "Job complete",
                                 "progress": 100, "finished": now, "updated": now,
                                 "mimetype": mimetype, "result": stored})
        return mimetype, outputs

    def _fail(self, job_id: str, message: str, message_code: str | None = None,
              params: dict | None = None) -> None:
        """The job failed with this message and, where it has one, its message code and params
        (in the same statement: a client that sees the failure sees its code)."""
        now = _now()
        if not isinstance(message_code, str):
            message_code = None  # another error's `code` (not a message code)
        encoded = json.dumps(params or {}, ensure_ascii=False) if message_code else None
        with self._db() as db:
            db.execute(FAIL_JOB, (message, message_code, encoded, now, now, job_id))



def _execution_mode(requested: RequestedProcessExecutionMode | None, job_control: list[str],
                    manager_is_async: bool
                    ) -> tuple[bool, RequestedProcessExecutionMode | None]:
    """(run in the background?, the Preference-Applied value or None) for OGC API - Processes
    1.0 (requirements /req/core/process-execute-default-execution-mode and -auto-execution-mode):
    asynchronous when the client prefers it and both the manager and the process can, or when
    the process cannot run synchronously; the header says which preference was honoured, and is
    left out when a client that asked to wait got just that."""
    respond_async = RequestedProcessExecutionMode.respond_async
    wait = RequestedProcessExecutionMode.wait
    if requested == respond_async:
        if manager_is_async and ProcessExecutionMode.async_execute.value in job_control:
            return True, respond_async
        return False, wait
    if ProcessExecutionMode.sync_execute.value not in job_control:
        return True, respond_async
    return False, None if requested == wait else wait


@contextmanager
def _exclusive(lock_path: Path):
    """An exclusive flock on lock_path for the block (waits for other processes)."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
