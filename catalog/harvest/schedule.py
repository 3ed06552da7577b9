"""Scheduled harvests on the job queue (catalog/jobs).

A source added with `--every 1d` (registry: `every_seconds`) is due when it has never run, or
when its last run started that long ago. `taza worker` checks every
TAZA_HARVEST_CHECK_SECONDS (default 60) and queues a `harvest` job for each due source; the
queue's workers run it with `run_source`, like `taza harvest run NAME`. A job per source is
queued at most once at a time (the queue's unique jobs), so several workers or nodes checking
the same sources queue one run; the run itself holds the harvest lock, and its report is the
job's result (and the source's `last_run`). On the PostgreSQL profile the sources, their
schedules and last runs are rows of the database and the lock is one of its advisory locks
(catalog/store/harvest_sources_postgresql.py): the scheduler of every `taza worker`, whatever
its home, checks under that lock and submits to the one procrastinate queue, so a due source
runs once across the nodes, not once per node.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from pathlib import Path

from catalog.harvest import registry
from catalog.harvest.run import run_source
from catalog.jobs import Handler, JobConflict, JobFailed, Jobs, Progress
from catalog.postgis.database import DatabaseError
from catalog.settings import seconds_setting
from catalog.store.harvest_sources import HarvestSourcesUnavailable

log = logging.getLogger(__name__)

HARVEST_JOB = "harvest"
EVERY = re.compile(r"^([1-9][0-9]{0,3})([mhd])$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86_400}
SHORTEST, LONGEST = 15 * 60, 366 * 86_400  # a remote is not polled more often than this
DEFAULT_CHECK_SECONDS = 60.0


def every_seconds(text: str) -> int:
    """'30m', '6h', '1d' as seconds; HarvestError for anything else or out of range."""
    match = EVERY.match(text)
    seconds = int(match[1]) * UNIT_SECONDS[match[2]] if match else 0
    if not SHORTEST <= seconds <= LONGEST:
        raise registry.HarvestError(
            f"--every: expected a number and m, h or d from 15m to 366d (30m, 6h, 1d), "
            f"got {text!r}", code="every", params={"text": text})
    return seconds


def every_text(seconds: int) -> str:
    """every_seconds' inverse, in the largest whole unit: 86400 -> '1d'."""
    unit = next(u for u in ("d", "h", "m") if seconds % UNIT_SECONDS[u] == 0)
    return f"{seconds // UNIT_SECONDS[unit]}{unit}"


def due_sources(home: Path, now: dt.datetime) -> list[str]:
    """The scheduled sources whose next run is due at `now`."""
    due = []
    for name, source in sorted(registry.sources(home).items()):
        every = source.get("every_seconds")
        if not every:
            continue
        last = registry.state(home, name)["last_run"]
        if last is None or now >= dt.datetime.fromisoformat(last["started"]) \
                + dt.timedelta(seconds=every):
            due.append(name)
    return due


def queue_due(home: Path, jobs: Jobs, now: dt.datetime | None = None) -> list[str]:
    """Queue a harvest job for each due source that has none queued or running; the names
    of the sources queued. Under the harvest lock, which a run holds until its state is saved:
    a run that just finished is seen as done, never as due again."""
    queued: list[str] = []
    if not any(source.get("every_seconds") for source in registry.sources(home).values()):
        return queued  # nothing scheduled: no lock taken, no folder made
    with registry.locked(home):
        for name in due_sources(home, now or dt.datetime.now(dt.UTC)):
            try:
                jobs.submit(HARVEST_JOB, {"source": name}, subject=name, unique=True)
            except JobConflict:
                continue
            queued.append(name)
    return queued


def harvest_handlers(home: Path) -> dict[str, Handler]:
    """The queue's handler of harvest jobs (for `taza worker`)."""

    def run(args: dict, progress: Progress) -> dict:
        progress(0, "harvesting")
        try:
            report = run_source(home, args["source"])
        except registry.HarvestError as err:  # removed since it was queued
            raise JobFailed({"code": "HarvestSourceGone", "status": 404,
                             "description": str(err)}) from None
        if report.error:
            raise JobFailed({"code": "RemoteUnreadable", "status": 502,
                             "description": report.error, "report": report.as_json()})
        return report.as_json()

    return {HARVEST_JOB: run}


def check_seconds() -> float:
    """TAZA_HARVEST_CHECK_SECONDS: how often `taza worker` looks for due sources."""
    return seconds_setting("TAZA_HARVEST_CHECK_SECONDS", DEFAULT_CHECK_SECONDS, 0.1, 86_400)


def start_scheduler(home: Path, jobs: Jobs, stop: threading.Event,
                    interval: float) -> threading.Thread:
    """A thread queueing due harvests every `interval` seconds until `stop` is set."""

    def loop() -> None:
        while not stop.is_set():
            try:
                for name in queue_due(home, jobs):
                    log.info("scheduled harvest of %s queued", name)
            except (HarvestSourcesUnavailable, DatabaseError) as err:  # down for now: one
                log.warning("scheduled harvests could not be checked: %s", err)  # line a round
            except Exception:
                log.exception("scheduled harvests could not be checked")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="harvest-scheduler", daemon=True)
    thread.start()
    return thread
