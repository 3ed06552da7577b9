"""The reader's zygote (catalog.sources.zygote): children forked from it are confined like
fresh ones and hold nothing of the zygote's; it is reused, replaced after MAX_CHILDREN,
started again when it dies or idles out, kills a child whose owner gives up on it, and goes
with its owner. Real processes throughout: the zygote, its children, the kernel's confinement.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from catalog.sources import isolation, zygote
from catalog.sources.reader import probe_isolation
from tests.conftest import ROOT


def children_of(pid: int) -> list[int]:
    """The pids whose parent is pid (from /proc: the reader children have no other name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def probe(monkeypatch, zygote_setting: str, paths: list[Path] | None = None) -> dict:
    monkeypatch.setenv("TAZA_READER_ZYGOTE", zygote_setting)
    return probe_isolation(paths or [Path("/etc/passwd")], "127.0.0.1", 9)


@pytest.mark.parametrize("setting", ["on", "off"])
def test_a_reader_holds_only_its_pipes_and_the_readers_environment(monkeypatch, setting):
    monkeypatch.setenv("TAZA_PROBE_SECRET", "must-not-reach-the-reader")
    answer = probe(monkeypatch, setting)
    assert answer["readable"] == {"/etc/passwd": False} and answer["connected"] is False
    # Its answer's pipe and what the libraries opened at import (PROJ's database, read-only):
    # no socket to the zygote or to this process, no other child's pipe, no event queue.
    assert answer["descriptors"].count("fifo") == 1, answer["descriptors"]
    assert set(answer["descriptors"]) <= {"fifo", "file"}, answer["descriptors"]
    # rasterio and pyproj name their bundled CA certificates at import (no secret).
    allowed = set(isolation.reader_environment(Path("/scratch"))) | {
        "GDAL_CURL_CA_BUNDLE", "PROJ_CURL_CA_BUNDLE"}
    assert set(answer["environment"]) <= allowed, set(answer["environment"]) - allowed
    if setting == "on":
        assert answer["parent"] != os.getpid()
        assert "catalog.sources.zygote" in Path(f"/proc/{answer['parent']}/cmdline") \
            .read_text()
    else:
        assert answer["parent"] == os.getpid()


@pytest.mark.parametrize("setting", ["on", "off"])
def test_a_readers_sqlite_writes_its_temporary_files_where_the_sandbox_lets_it(
        monkeypatch, setting):
    """SQLite fixes its temporary folder when it starts, which for a forked child was in the
    zygote, before the request named the scratch folder: its sorts spilled to /var/tmp, which
    the sandbox refuses, and a 200,000-parcel GeoPackage could not be published."""
    assert probe(monkeypatch, setting)["sqlite_spill"] == "ok"


def test_the_zygote_is_reused_then_replaced_and_started_again_after_a_kill(monkeypatch):
    first = probe(monkeypatch, "on")["parent"]
    assert probe(monkeypatch, "on")["parent"] == first
    monkeypatch.setattr(zygote, "MAX_CHILDREN", 1)  # each zygote forks one child only
    second = probe(monkeypatch, "on")["parent"]
    third = probe(monkeypatch, "on")["parent"]
    assert len({first, second, third}) == 3
    assert wait_until(lambda: not alive(first) and not alive(second))  # retired ones end
    monkeypatch.setattr(zygote, "MAX_CHILDREN", 64)
    os.kill(third, signal.SIGKILL)
    assert wait_until(lambda: not alive(third))
    fourth = probe(monkeypatch, "on")
    assert fourth["parent"] not in (first, second, third)
    assert fourth["readable"] == {"/etc/passwd": False}


def test_an_idle_zygote_ends_by_itself_and_starts_again_when_needed(tmp_path):
    owner = zygote.Zygote(isolation.reader_environment(), isolation.PACKAGE_ROOT,
                          idle_seconds=1.0)
    child = owner.fork()
    first = child.parent
    child.send(json.dumps(probe_request(tmp_path, first)).encode())
    assert child.wait(timeout=60) == 0
    child.close()
    assert wait_until(lambda: owner.pid is None and not alive(first), seconds=30)
    again = owner.fork()
    assert again.parent != first and alive(again.parent)
    again.kill()
    assert again.wait(timeout=60) == -signal.SIGKILL
    again.close()
    owner.close()



def test_a_reader_killed_right_after_its_fork_is_killed():
    """The owner may give up before the child has started its session (a CI run lost such a
    kill: the zygote's killpg found no group with the child's pid). With killpg alone, 13 of
    40 kills here were lost."""
    owner = zygote.Zygote(isolation.reader_environment(), isolation.PACKAGE_ROOT)
    try:
        statuses = []
        for _ in range(30):
            child = owner.fork()
            child.kill()
            statuses.append(child.wait(timeout=30))
            child.close()
        assert statuses == [-signal.SIGKILL] * 30
        assert children_of(owner.pid) == []
    finally:
        owner.close()



def test_a_zygote_that_ends_with_a_request_unread_is_noticed_at_once(monkeypatch):
    """The owner sees the request socket end when the zygote dies with the request still
    queued (an idle zygote ending just as a read comes, or one that cannot start), instead
    of waiting FORK_SECONDS: it keeps no copy of the socket's other end."""
    monkeypatch.setattr(zygote, "FORK_SECONDS", 30)
    owner = zygote.Zygote(isolation.reader_environment(), isolation.PACKAGE_ROOT)
    try:
        started = owner.fork()  # the zygote runs, its imports done
        started.kill()
        started.wait(timeout=30)
        started.close()
        stopped = owner.pid
        os.kill(stopped, signal.SIGSTOP)  # it reads no request now
        # 2 s: ample for this thread to queue its request first, even on a busy machine
        killer = threading.Timer(2.0, os.kill, (stopped, signal.SIGKILL))
        killer.start()
        with pytest.raises(zygote.ZygoteGone, match="ended before it forked"):
            owner.fork()  # queued, unread; then the zygote is killed
        killer.join()
    finally:
        owner.close()

def test_a_zygote_that_cannot_start_is_not_tried_on_every_read(monkeypatch, caplog):
    """A zygote whose interpreter cannot start (a broken Python home): two failed forks, then
    fresh interpreters without asking it again until the pause is over."""
    broken = zygote.Zygote(dict(isolation.reader_environment(), PYTHONHOME="/nonexistent"),
                           isolation.PACKAGE_ROOT)
    forks = []
    fork = broken.fork
    monkeypatch.setattr(broken, "fork", lambda: forks.append(1) or fork())
    monkeypatch.setattr(isolation, "_zygote", broken)
    monkeypatch.setattr(isolation, "_zygote_paused_until", 0.0)
    answers = [probe(monkeypatch, "on") for _ in range(3)]
    assert [answer["parent"] for answer in answers] == [os.getpid()] * 3  # fresh ones
    assert all(answer["readable"] == {"/etc/passwd": False} for answer in answers)
    assert len(forks) == 2 and "fresh interpreters" in caplog.text
    monkeypatch.setattr(isolation, "_zygote", None)  # a good zygote, once the pause is over
    monkeypatch.setattr(isolation, "_zygote_paused_until", 0.0)
    assert probe(monkeypatch, "on")["parent"] != os.getpid()
    isolation._zygote.close()

def probe_request(scratch: Path, parent: int) -> dict:
    settings = isolation.ReaderSettings()
    return {"task": "probe", "args": {"paths": [], "host": "127.0.0.1", "port": 9},
            "parent": parent, "scratch": str(scratch), "read": [], "write": [str(scratch)],
            "limits": settings.child_limits(), "isolation": True}


def test_a_reader_past_its_time_is_killed_in_the_zygote_too(monkeypatch, tmp_path):
    """A probe of a FIFO nobody writes blocks for ever (unconfined, so it may open it)."""
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    zygote_pid = probe(monkeypatch, "on")["parent"]
    monkeypatch.setenv("TAZA_READER_ISOLATION", "off")
    monkeypatch.setenv("TAZA_READER_TIMEOUT_SECONDS", "1")
    with pytest.raises(isolation.ReaderFailed, match="took longer than 1 s"):
        probe(monkeypatch, "on", [fifo])
    assert wait_until(lambda: children_of(zygote_pid) == [], seconds=10)
    assert alive(zygote_pid)  # the zygote itself serves on
    monkeypatch.delenv("TAZA_READER_TIMEOUT_SECONDS")
    assert probe(monkeypatch, "on")["parent"] == zygote_pid


OWNER = """
import json, sys
from pathlib import Path
from catalog.sources.reader import probe_isolation
print(probe_isolation([], "127.0.0.1", 9)["parent"], flush=True)
probe_isolation([Path(sys.argv[1])], "127.0.0.1", 9)  # blocks: nobody writes the FIFO
"""


def test_a_killed_owner_takes_its_zygote_and_readers_with_it(tmp_path):
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    env = dict(os.environ, TAZA_READER_ISOLATION="off", TAZA_READER_ZYGOTE="on")
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(fifo)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        zygote_pid = int(owner.stdout.readline())
        assert wait_until(lambda: len(children_of(zygote_pid)) == 1)
        reader = children_of(zygote_pid)[0]
        owner.kill()
        owner.wait(timeout=30)
        assert wait_until(lambda: not alive(reader) and not alive(zygote_pid), seconds=10)
    finally:
        owner.kill()
        owner.wait()


FORKING_OWNER = """
import json, os, sys
from catalog.sources.reader import probe_isolation
first = probe_isolation([], "127.0.0.1", 9)["parent"]
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:  # a process forked from the owner: the same zygote, also after the owner exits
    os.close(reader)
    parents = [probe_isolation([], "127.0.0.1", 9)["parent"]]
    os.read(0, 1)  # the test has killed the owner
    parents.append(probe_isolation([], "127.0.0.1", 9)["parent"])
    os.write(writer, json.dumps(parents).encode())
    os._exit(0)
os.close(writer)
print(json.dumps({"first": first, "owner_again": probe_isolation([], "127.0.0.1", 9)["parent"],
                  "forked_pid": pid, "answer_fd": reader}), flush=True)
os.set_inheritable(reader, True)
sys.stdin.read()  # until the test kills this process
"""


def test_a_process_forked_from_the_owner_shares_its_zygote_beyond_the_owners_death(tmp_path):
    """(tests/fault_injection.py's children publish this way: one zygote for the sweep.)"""
    owner = subprocess.Popen([sys.executable, "-c", FORKING_OWNER], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, TAZA_READER_ZYGOTE="on"))
    try:
        started = json.loads(owner.stdout.readline())
        assert started["owner_again"] == started["first"]
        forked = started["forked_pid"]
        answer = os.open(f"/proc/{owner.pid}/fd/{started['answer_fd']}", os.O_RDONLY)
        stdin = os.open(f"/proc/{forked}/fd/0", os.O_WRONLY)
        owner.kill()
        owner.wait(timeout=30)
        os.write(stdin, b"x")  # the forked process probes once more, its owner dead
        os.close(stdin)
        parents = json.loads(os.read(answer, 4096))
        os.close(answer)
        assert parents == [started["first"], started["first"]]
        assert wait_until(lambda: not alive(forked) and not alive(started["first"]))
    finally:
        owner.kill()
        owner.wait()
