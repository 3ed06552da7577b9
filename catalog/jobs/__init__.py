"""Long work on a job queue: publishing now (heavy processes and harvesting later).

Whoever submits gets a job id at once and follows the job's state and progress; a worker
claims the job, runs the handler registered for its kind, reports progress and finishes it
with a JSON result or a JSON error. A job outlives the worker running it: a killed worker's
job goes back to the queue and another worker runs it again, so handlers must be safe to run
again (publishing is: see catalog/stewards/releases.py).

`Jobs` is the interface; `open_jobs` picks the implementation from the settings:
- the embedded default, `SQLiteJobs` (catalog/jobs/sqlite.py): no service, one SQLite file
  under TAZA_HOME, workers are threads of the app's own processes or `taza worker`;
- `ProcrastinateJobs` (catalog/jobs/procrastinate_queue.py) in the PostgreSQL profile:
  procrastinate, a queue kept in PostgreSQL (docs/deployment.md, "Job queue").
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from catalog.settings import SettingError, database_url

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
ACTIVE = (QUEUED, RUNNING)

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Job:
    """One job as its submitter sees it. Times are epoch seconds."""

    id: str
    kind: str
    subject: str | None
    args: dict
    state: str
    progress: int  # percent, 0-100
    step: str | None  # what the handler is doing now (a word the portal translates)
    attempts: int
    created: float
    started: float | None = None
    finished: float | None = None
    result: dict | None = None
    error: dict | None = None

    @property
    def done(self) -> bool:
        return self.state in (SUCCEEDED, FAILED)


class JobFailed(Exception):
    """Raised by a handler: the job fails with this JSON error and is not run again."""

    def __init__(self, error: dict):
        super().__init__(error.get("description", "the job failed"))
        self.error = error


class JobConflict(Exception):
    """A job of that kind on that subject is queued or running already."""

    def __init__(self, job: Job):
        super().__init__(f"job {job.id} on {job.subject} is {job.state}")
        self.job = job


# A handler gets the job's arguments and a progress reporter (percent, step) and returns the
# job's JSON result; it raises JobFailed to fail the job with a JSON error.
Progress = Callable[[int, str], None]
Handler = Callable[[dict, Progress], dict]


UNEXPECTED = {"code": "InternalError", "status": 500,
              "description": "the job failed on an unexpected error (logged on the server)"}


def worker_lost(attempts: int) -> dict:
    """The error of a job given up after its workers died `attempts` times."""
    return {"code": "WorkerLost", "status": 500,
            "description": f"the workers running this job stopped {attempts} times; the "
                           "previous state of the catalog stands (see the server log)"}


def run_handler(handler: Handler, job: Job, progress: Progress,
                finish: Callable[..., None]) -> None:
    """Run a claimed job's handler; finish(state, result=...|error=...) records how it ended.
    A handler killed with its process records nothing: its queue runs the job again."""
    try:
        result = handler(job.args, progress)
    except JobFailed as err:
        finish(FAILED, error=err.error)
    except Exception:
        log.exception("job %s (%s) failed", job.id, job.kind)
        finish(FAILED, error=UNEXPECTED)
    else:
        finish(SUCCEEDED, result=result)


class Jobs(Protocol):
    def submit(self, kind: str, args: dict, subject: str | None = None,
               unique: bool = False) -> Job:
        """Queue a job; with unique=True raise JobConflict when a job of that kind on that
        subject is queued or running."""

    def get(self, job_id: str) -> Job | None:
        """The job, or None for an unknown id."""

    def work(self, handlers: Mapping[str, Handler], stop: threading.Event) -> None:
        """Run jobs of the handlers' kinds until stop is set (a worker)."""


@dataclass(frozen=True)
class QueueSettings:
    """TAZA_JOB_LEASE_SECONDS: how long a job stays claimed without news of its worker
    (renewed every third of it), so a dead worker's job is run again after at most that long.
    TAZA_JOB_MAX_ATTEMPTS: runs before a job whose workers keep dying fails.
    TAZA_JOB_WORKERS: job threads in each app process (0: jobs run in `taza worker` only)."""

    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    app_workers: int = 1
    poll_seconds: float = 0.5

    @classmethod
    def from_environment(cls) -> QueueSettings:
        try:
            lease = float(os.environ.get("TAZA_JOB_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))
            attempts = int(os.environ.get("TAZA_JOB_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
            workers = int(os.environ.get("TAZA_JOB_WORKERS", 1))
        except ValueError:
            lease = attempts = workers = -1
        if not 1 <= lease <= 86_400 or attempts < 1 or workers < 0:
            raise SettingError("TAZA_JOB_LEASE_SECONDS takes seconds from 1 to 86400, "
                               "TAZA_JOB_MAX_ATTEMPTS a whole number from 1 and "
                               "TAZA_JOB_WORKERS a whole number from 0", code="job_queue")
        return cls(lease_seconds=lease, max_attempts=attempts, app_workers=workers,
                   poll_seconds=min(0.5, lease / 6))


def open_jobs(home: Path, settings: QueueSettings | None = None) -> Jobs:
    """The catalog's job queue: procrastinate in the PostgreSQL profile (TAZA_DATABASE_URL),
    else the embedded one in the home."""
    settings = settings or QueueSettings.from_environment()
    url = database_url()
    if url is not None:
        from catalog.jobs.procrastinate_queue import ProcrastinateJobs

        return ProcrastinateJobs(url, settings)
    from catalog.jobs.sqlite import SQLiteJobs

    return SQLiteJobs(home, settings)


def start_workers(jobs: Jobs, handlers: Mapping[str, Handler], count: int,
                  name: str = "taza-jobs") -> threading.Event:
    """Daemon threads running jobs in this process; set the returned event to stop them.

    Daemon threads die with their process, mid-job if need be: the job's lease then runs
    out and another worker runs it again."""
    stop = threading.Event()
    for number in range(count):
        threading.Thread(target=jobs.work, args=(handlers, stop), daemon=True,
                         name=f"{name}-{number}").start()
    return stop
