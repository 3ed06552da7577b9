"""Harvest sources on the PostgreSQL profile (issue 13): the sources, their schedules and what
their runs saw live in `taza_state` (catalog/store/harvest_sources_postgresql.py), so nodes and
workers with homes of their own share them.

Real parts: the session's private PostgreSQL 15 (a database per test here), the real `taza`
command line and `taza worker` in subprocesses, each with a TAZA_HOME of its own and one audit
key file (as the nodes of docs/deployment.md), and test_harvest.py's local CKAN portal.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from catalog.harvest import registry
from catalog.harvest.run import harvester_account, run_source
from catalog.stewards import accounts, drafts
from catalog.store.harvest_sources_postgresql import PostgresHarvestSources
from tests.conftest import ROOT, free_port
from tests.test_harvest import ckan, portal  # noqa: F401 - the local CKAN portal's fixtures

PROFILE = ("TAZA_DATABASE_URL", "TAZA_ASSETS_URL", "TAZA_AUDIT_KEY_FILE",
           "TAZA_AUDIT_HEAD_FILE", "TAZA_HARVEST_CHECK_SECONDS")
CKAN_IDS = ["hdx-cod-ab-kgz", "hdx-hotosm-kgz-roads-chuy", "hdx-kgz-population-density",
            "hdx-kyrgyzstan-healthsites"]


@pytest.fixture()
def database(private_postgres, request) -> Iterator[str]:
    name = f"harvest_{request.node.name[5:40].replace('-', '_')}".lower()
    private_postgres.drop_database(name)
    yield private_postgres.create_database(name)
    private_postgres.drop_database(name)


@pytest.fixture()
def homes(tmp_path: Path) -> dict[str, Path]:
    """Homes of their own (node A, node B, worker 1, worker 2, a reader), one audit key."""
    found = {name: tmp_path / name for name in ("a", "b", "w1", "w2", "reader")}
    for home in found.values():
        home.mkdir()
    return found


def environment(home: Path, url: str | None, key: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROFILE}
    env |= {"TAZA_HOME": str(home), "TAZA_AUDIT_HEAD_FILE": str(home / "audit.head")}
    if url:
        env["TAZA_DATABASE_URL"] = url
    env["TAZA_AUDIT_KEY_FILE"] = str(key or home.parent / "audit.key")
    return env


def taza(home: Path, url: str | None, *args: str, status: int = 0,
         key: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "catalog.cli", *args], cwd=ROOT,
                            env=environment(home, url, key), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == status, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def add(home: Path, url: str, remote: str, *extra: str, status: int = 0
        ) -> subprocess.CompletedProcess:
    return taza(home, url, "harvest", "add", remote, "--type", "ckan", "--name", "hdx",
                "--org", "peer-agency", "--email", "data@example.org", *extra, status=status)


def listed(home: Path, url: str) -> list[list[str]]:
    return [line.split("\t") for line in
            taza(home, url, "harvest", "list").stdout.splitlines()]


def test_a_source_added_through_one_home_is_listed_and_run_from_another(
        portal, homes, database):  # noqa: F811 - the imported fixture
    remote, _ = portal
    add(homes["a"], database, remote)
    ((name, kind, url, organisation, schedule, summary),) = listed(homes["b"], database)
    assert (name, kind, url, organisation, schedule, summary) == \
        ("hdx", "ckan", remote, "peer-agency", "by hand", "never run")
    (report,) = [json.loads(line) for line in
                 taza(homes["b"], database, "harvest", "run", "hdx").stdout.splitlines()]
    assert sorted(report["new"]) == sorted(CKAN_IDS) and report["error"] is None
    # What the run saw follows the source: through node A it is the last run, and a run from
    # A finds nothing new (not another four drafts).
    ((*_, summary),) = listed(homes["a"], database)
    assert summary.startswith(f"last run {report['finished']}: 4 new, 0 changed, 0 gone")
    (again,) = [json.loads(line) for line in
                taza(homes["a"], database, "harvest", "run", "hdx").stdout.splitlines()]
    assert again["new"] == again["changed"] == [] and again["unchanged"] == 4
    # The drafts are the stewards' (database), readable from any home.
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment(homes["reader"], database).items():
            patch.setenv(key, value)
        user = next(u for u in accounts.list_users(homes["reader"]) if u.name == "harvest-hdx")
        assert {drafts.get_draft(homes["reader"], user, d)["state"] for d in CKAN_IDS} == \
            {"draft"}
    # No home holds the sources: they are rows of taza_state.
    for home in homes.values():
        assert not (home / "harvest" / "sources.json").exists()
        assert not (home / "harvest" / "state").exists()
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT name FROM taza_state.harvest_sources").fetchall() \
            == [("hdx",)]
    # The name is taken for every node; a removal through B is seen by A.
    taken = add(homes["b"], database, remote, status=2)
    assert "already named 'hdx'" in taken.stderr
    taza(homes["b"], database, "harvest", "remove", "hdx")
    assert listed(homes["a"], database) == []
    unknown = taza(homes["a"], database, "harvest", "run", "hdx", status=2)
    assert "no harvest source 'hdx'" in unknown.stderr


def test_concurrent_adds_of_one_name_give_it_to_exactly_one(
        portal, homes, database):  # noqa: F811 - the imported fixture
    remote, _ = portal
    command = [sys.executable, "-m", "catalog.cli", "harvest", "add", remote, "--type", "ckan",
               "--name", "hdx", "--email", "data@example.org"]
    running = [subprocess.Popen([*command, "--org", f"agency-{name}"], cwd=ROOT,
                                env=environment(homes[name], database),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name in ("a", "b", "w1", "w2")]
    results = [(process.wait(timeout=300), process.stderr.read()) for process in running]
    for process in running:
        process.stdout.close()
        process.stderr.close()
    assert sorted(code for code, _ in results) == [0, 2, 2, 2], results
    assert all("already named 'hdx'" in err for code, err in results if code == 2), results
    ((*_, organisation, _, _),) = listed(homes["reader"], database)
    winner = ("a", "b", "w1", "w2")[[code for code, _ in results].index(0)]
    assert organisation == f"agency-{winner}"


def _harvest_jobs(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as connection:
        exists = connection.execute("SELECT to_regclass('taza_jobs')").fetchone()[0]
        if exists is None:
            return []
        return connection.execute("SELECT id, state FROM taza_jobs WHERE kind = 'harvest' "
                                  "ORDER BY created").fetchall()


def test_a_scheduled_source_runs_once_across_two_workers_of_their_own_homes(
        portal, homes, database):  # noqa: F811 - the imported fixture
    """Two `taza worker`s on two homes check every 0.2 s (procrastinate queue): the source
    added through node A meanwhile is queued once and run once, by one of them."""
    remote, _ = portal
    workers = []
    for name in ("w1", "w2"):
        env = environment(homes[name], database) | {"TAZA_HARVEST_CHECK_SECONDS": "0.2"}
        log = (homes[name] / "worker.log").open("w")
        workers.append((subprocess.Popen([sys.executable, "-m", "catalog.cli", "worker"],
                                         env=env, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True),
                        log))
    sources = PostgresHarvestSources(database, homes["reader"])
    try:
        # Added while the workers check: the first run may start before `taza harvest add`
        # has made the source's account (the run then takes the one the command made).
        add(homes["a"], database, remote, "--every", "1d")
        deadline = time.monotonic() + 180
        while sources.state("hdx")["last_run"] is None:
            assert all(w.poll() is None for w, _ in workers), _logs(homes)
            assert time.monotonic() < deadline, _logs(homes)
            time.sleep(0.2)
        jobs = _harvest_jobs(database)
        while jobs and jobs[0][1] != "succeeded":  # its result is written after the state
            assert time.monotonic() < deadline, _logs(homes)
            time.sleep(0.2)
            jobs = _harvest_jobs(database)
        # Both schedulers go on checking for a while: the source is not due again (the count
        # below holds whatever the wait; the wait only gives them rounds to get it wrong).
        time.sleep(1.0)
    finally:
        for worker, _ in workers:
            worker.send_signal(signal.SIGTERM)
        for worker, log in workers:
            worker.wait(timeout=120)
            log.close()
    last = sources.state("hdx")["last_run"]
    assert len(last["new"]) == 4 and last["error"] is None
    assert [state for _, state in _harvest_jobs(database)] == ["succeeded"]  # queued once
    ((*_, schedule, summary),) = listed(homes["b"], database)
    assert schedule == "every 1d" and summary.startswith(f"last run {last['finished']}: 4 new")


def _logs(homes: dict[str, Path]) -> str:
    return "\n".join((homes[n] / "worker.log").read_text() for n in ("w1", "w2"))


def test_migrate_copies_the_sources_and_their_state_and_verify_compares_them(
        portal, homes, database, monkeypatch):  # noqa: F811 - the imported fixture
    remote, served = portal
    embedded = homes["a"]
    key = embedded / "keys" / "audit.key"
    for name in PROFILE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TAZA_HOME", str(embedded))
    source = registry.add(embedded, remote, "ckan", "hdx", "peer-agency", "data@example.org",
                          None, "2026-01-01T00:00:00+00:00", 86_400)
    harvester_account(embedded, source)
    assert len(run_source(embedded, "hdx").new) == 4
    assert (embedded / "harvest" / "sources.json").exists()  # the embedded files, as before
    moved = taza(embedded, None, "migrate", "--to", database, key=key)
    assert "harvest sources copied: 1 (states: 1)" in moved.stdout, moved.stdout
    assert taza(embedded, None, "migrate", "--to", database, "--verify",
                key=key).stdout.strip() == "the same"
    again = taza(embedded, None, "migrate", "--to", database, key=key)
    assert "harvest sources copied: 0 (states: 0)" in again.stdout, again.stdout
    # Another home on the database lists the source with its schedule and last run, and a run
    # from it compares with what the embedded runs saw: nothing new.
    ((*_, schedule, summary),) = listed(homes["b"], database)
    assert schedule == "every 1d" and summary.startswith("last run ") and "4 new" in summary
    served.packages = served.packages[:3]  # one dataset gone from the remote since
    (report,) = [json.loads(line) for line in
                 taza(homes["b"], database, "harvest", "run", "hdx", key=key).stdout.splitlines()]
    assert report["new"] == [] and report["unchanged"] == 3 and len(report["gone"]) == 1
    # The target ran it later: no difference; the source removed there is one.
    assert taza(embedded, None, "migrate", "--to", database, "--verify",
                key=key).stdout.strip() == "the same"
    taza(homes["b"], database, "harvest", "remove", "hdx", key=key)
    verified = taza(embedded, None, "migrate", "--to", database, "--verify", status=1, key=key)
    assert "differs: harvest source hdx: missing in the target" in verified.stderr


def test_a_database_that_cannot_answer_exits_1_naming_it(tmp_path):
    """`taza harvest list|add` with nothing listening at the database's address: exit 1 and
    one line saying the sources cannot be read, no traceback."""
    closed = f"postgresql://taza:none@127.0.0.1:{free_port()}/none"
    for args in (("harvest", "list"), ("harvest", "add", "http://127.0.0.1:9/", "--type",
                                       "ckan", "--name", "hdx", "--org", "peer-agency",
                                       "--email", "data@example.org")):
        result = taza(tmp_path, closed, *args, status=1)
        assert "error: the harvest " in result.stderr and "cannot connect to the database" \
            in result.stderr, result.stderr


@contextlib.contextmanager
def forwarding(port: int, target: int) -> Iterator[None]:
    """A TCP forwarder on 127.0.0.1:`port` to 127.0.0.1:`target`: the database "comes up"
    at an address a worker was given before anything answered there, and at the end "goes
    away": the forwarder stops listening and cuts the connections it carried."""
    carried: set[socket.socket] = set()

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    class Forward(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(("127.0.0.1", target)) as upstream:
                carried.update((upstream, self.request))
                back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
                back.start()
                pump(self.request, upstream)
                back.join()

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Forward)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        for connection in list(carried):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def worker_at_a_forwarders_port(home: Path, database: str
                                ) -> tuple[subprocess.Popen, Path, int, int]:
    """`taza worker` over `home`, given the database at a free port where `forwarding` can
    put the real one (or nothing): (the process, its log, that port, the real port)."""
    real_port = urllib.parse.urlsplit(database).port
    port = free_port()
    moved = database.replace(f"127.0.0.1:{real_port}", f"127.0.0.1:{port}")
    env = environment(home, moved) | {"TAZA_HARVEST_CHECK_SECONDS": "0.2",
                                      "TAZA_DATABASE_WAIT_SECONDS": "1"}
    log_path = home / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "catalog.cli", "worker"], env=env,
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    return worker, log_path, port, real_port


def test_a_worker_started_before_its_database_runs_jobs_once_it_answers(
        portal, homes, database):  # noqa: F811 - the imported fixture
    """`taza worker` started while nothing answers at the database's address (a machine's
    services starting in any order) waits for it, then runs the jobs queued: the scheduled
    harvest of a source added once the database is up. Before, its job thread died at start
    and the process ran on with none, so no job ever ran."""
    remote, _ = portal
    worker, log_path, port, real_port = worker_at_a_forwarders_port(homes["w1"], database)
    try:
        deadline = time.monotonic() + 60
        waiting = ("the job queue's database cannot be reached",
                   "scheduled harvests could not be checked")
        while not all(line in log_path.read_text() for line in waiting):
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        # Waiting is said in one line a round, not a traceback (the scheduler and the upload
        # sweeper logged one each round before).
        assert "Traceback" not in log_path.read_text(), log_path.read_text()
        with forwarding(port, real_port):
            add(homes["a"], database, remote, "--every", "1d")
            sources = PostgresHarvestSources(database, homes["reader"])
            deadline = time.monotonic() + 120
            while sources.state("hdx")["last_run"] is None:
                assert worker.poll() is None and time.monotonic() < deadline, \
                    log_path.read_text()
                time.sleep(0.2)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=120) == 0, log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert len(sources.state("hdx")["last_run"]["new"]) == 4


def test_a_worker_whose_database_goes_away_says_so_in_a_line_and_works_on_once_it_is_back(
        portal, homes, database):  # noqa: F811 - the imported fixture
    """The job queue's database goes away while `taza worker` runs (a restart, a network
    cut): the worker says so in one line a round (its job thread, the stalled-job check, the
    scheduler and the upload sweeper), not a traceback each second, and runs the next job
    once the database answers again."""
    remote, _ = portal
    sources = PostgresHarvestSources(database, homes["reader"])

    def wait_for_a_run(name: str) -> None:
        deadline = time.monotonic() + 120
        while (sources.state(name) or {}).get("last_run") is None:
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)

    worker, log_path, port, real_port = worker_at_a_forwarders_port(homes["w1"], database)
    try:
        with forwarding(port, real_port):
            add(homes["a"], database, remote, "--every", "1d")
            wait_for_a_run("hdx")
        before = len(log_path.read_text())
        deadline = time.monotonic() + 60
        while "cannot be reached" not in log_path.read_text()[before:]:
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        time.sleep(3)  # a few rounds of every thread that reads the database
        assert worker.poll() is None, log_path.read_text()
        said = log_path.read_text()
        assert "Traceback" not in said, said
        # A line per failed attempt: not libpq's hints on more lines after each, nor the
        # connection pool's warnings of threads left running when taza set a pool aside.
        assert "Is the server running" not in said and "couldn't stop thread" not in said, said
        with forwarding(port, real_port):
            taza(homes["a"], database, "harvest", "add", remote, "--type", "ckan", "--name",
                 "hdx-again", "--org", "peer-agency", "--email", "data@example.org",
                 "--every", "1d")
            wait_for_a_run("hdx-again")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=120) == 0, log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
