"""The embedded job queue (catalog/jobs/sqlite.py) on its own, in this process: one claim per
job, a job taken again when its worker's lease runs out, given up after the last attempt, and
a handler's refusal kept as the job's error. The same behaviour through real processes and
SIGKILL, on both profiles' queues: tests/test_jobs.py."""

from __future__ import annotations

import threading

import pytest

from catalog.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, JobConflict, JobFailed, QueueSettings
from catalog.jobs.sqlite import SQLiteJobs
from tests.conftest import taza
from tests.stewards_support import wait_for

LEASE = 1.0


@pytest.fixture()
def queue(tmp_path) -> SQLiteJobs:
    return SQLiteJobs(tmp_path, QueueSettings(lease_seconds=LEASE, max_attempts=2,
                                              poll_seconds=0.05))


def test_a_job_is_claimed_by_one_worker_only(queue):
    job = queue.submit("publish", {"n": 1}, subject="a")
    assert (job.state, job.progress, job.attempts) == (QUEUED, 0, 0)
    claims = [queue.claim("w1", ("publish",)), queue.claim("w2", ("publish",))]
    assert [c.id if c else None for c in claims] == [job.id, None]
    assert queue.get(job.id).state == RUNNING
    assert queue.claim("w3", ("other-kind",)) is None


def test_one_active_job_per_subject_when_asked(queue):
    first = queue.submit("publish", {}, subject="a", unique=True)
    with pytest.raises(JobConflict) as refused:
        queue.submit("publish", {}, subject="a", unique=True)
    assert refused.value.job.id == first.id
    assert queue.submit("publish", {}, subject="b", unique=True).state == QUEUED


def test_a_dead_workers_job_is_claimed_again_then_given_up(queue):
    job = queue.submit("publish", {}, subject="a")
    assert queue.claim("dead-1", ("publish",)).attempts == 1  # and never renewed
    again = wait_for(lambda: queue.claim("dead-2", ("publish",)), 10, 0.05)
    assert again and again.id == job.id and again.attempts == 2
    assert wait_for(lambda: queue.claim("w3", ("publish",)) or
                    queue.get(job.id).state == FAILED, 10, 0.05) is True
    failed = queue.get(job.id)
    assert failed.state == FAILED and failed.error["code"] == "WorkerLost"


def test_workers_run_handlers_report_progress_and_keep_errors(queue):
    seen = []

    def publish(args: dict, progress) -> dict:
        progress(40, "converting")
        seen.append(queue.get(running.id).progress)
        if args.get("refuse"):
            raise JobFailed({"code": "Conflict", "status": 409, "description": "no"})
        return {"version": args["n"]}

    running = queue.submit("publish", {"n": 3})
    refused = queue.submit("publish", {"refuse": True})
    stop = threading.Event()
    worker = threading.Thread(target=queue.work, args=({"publish": publish}, stop))
    worker.start()
    try:
        assert wait_for(lambda: queue.get(refused.id).state == FAILED, 10, 0.05)
    finally:
        stop.set()
        worker.join(10)
    done = queue.get(running.id)
    assert (done.state, done.progress, done.result) == (SUCCEEDED, 100, {"version": 3})
    assert seen[0] == 40
    assert queue.get(refused.id).error == {"code": "Conflict", "status": 409,
                                           "description": "no"}


def test_a_bad_queue_setting_is_refused_by_name(scratch_home, monkeypatch):
    monkeypatch.setenv("TAZA_JOB_LEASE_SECONDS", "soon")
    for command in (("worker",), ("serve", "--port", "1")):
        refused = taza(*command, home=scratch_home, check=False)
        assert refused.returncode == 2, refused.stderr
        assert "TAZA_JOB_LEASE_SECONDS" in refused.stderr and "Traceback" not in refused.stderr
