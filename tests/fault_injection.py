"""Kill a catalog operation at its k-th file system mutation: a fork server for crash sweeps.

Run as `python -m tests.fault_injection HOME MANIFEST`; it publishes MANIFEST once into a
throwaway home (so children inherit a warm process), then reads one JSON
request per line on stdin, e.g. {"op": "publish", "manifest": "...", "kill_at": 7}, and answers
one JSON line per request. Each request runs in a forked child that installs `sys.addaudithook`
and SIGKILLs itself when the k-th mutation under HOME is about to happen (kill_at 0: never):
mkdir, open for writing, os.open (the store opens files and folders that way only to fsync
them), rename/replace, unlink, rmdir, rmtree, copy, link, and sqlite3.connect (before every
audit insert and index update). The production code carries no test hooks; SQLite's and GDAL's
own writes happen in C and are not separate steps here (SQLite commits atomically).
The answer says whether the child was killed and at which event, or what the operation
returned, and how many mutations it made.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

MUTATIONS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree",
             "shutil.copyfile", "os.link", "os.truncate", "sqlite3.connect"}


def mutation_path(event: str, args: tuple) -> str | None:
    """The path an audit event is about to change, if it is a mutation."""
    if event == "open":
        path, mode = args[0], args[1]
        writes = mode is None or any(c in str(mode) for c in "wax+")
        return os.fspath(path) if writes and isinstance(path, str | os.PathLike) else None
    if event in MUTATIONS and args:
        path = args[1] if event == "shutil.copyfile" else args[0]
        return os.fspath(path) if isinstance(path, str | bytes | os.PathLike) else None
    return None


def install_killer(home: str, kill_at: int, report: int) -> list[int]:
    """Count mutations under home; at the kill_at-th, report it on fd `report` and die."""
    count = [0]
    prefix = home.rstrip("/") + "/"

    def hook(event: str, args: tuple) -> None:
        path = mutation_path(event, args)
        if path is None:
            return
        path = path.decode() if isinstance(path, bytes) else path
        if not (path + "/").startswith(prefix):
            return
        count[0] += 1
        if count[0] == kill_at:
            os.write(report, json.dumps({"killed": True, "events": count[0],
                                         "event": [event, path[len(prefix):]]}).encode())
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    return count


def run_operation(request: dict, home: str) -> dict:
    from catalog import publish
    from catalog.store import CatalogStore

    store = CatalogStore(home)
    if request["op"] == "publish":
        result = publish.publish(request["manifest"], store, actor="sweep")
    elif request["op"] == "rollback":
        result = publish.rollback(store, request["dataset"], request["version"], actor="sweep")
    elif request["op"] == "withdraw":
        return {"release": publish.withdraw(store, request["dataset"], actor="sweep")}
    else:
        raise ValueError(f"unknown operation {request['op']!r}")
    return {"version": result.version, "release": result.release}


def warm_up(manifest: str) -> None:
    """Publish once, here, into a throwaway home: what every child would otherwise load or
    initialise on its first publish (pystac's extensions, GDAL's drivers, PROJ) is then
    inherited, and each child spends its time on the operation."""
    import tempfile

    from catalog import publish
    from catalog.store import CatalogStore

    with tempfile.TemporaryDirectory() as folder:
        publish.publish(manifest, CatalogStore(folder), actor="warm-up")


def serve(home: str, manifest: str) -> None:
    warm_up(manifest)
    for line in sys.stdin:
        request = json.loads(line)
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run, and die at the chosen mutation
            os.close(reader)
            os.dup2(2, 1)  # stdout carries the answers: keep the operation's prints off it
            count = install_killer(home, request.get("kill_at", 0), writer)
            try:
                answer = {"killed": False, "result": run_operation(request, home)}
            except Exception as err:  # noqa: BLE001 (reported to the test, which decides)
                answer = {"killed": False, "error": f"{type(err).__name__}: {err}"}
            answer["events"] = count[0]
            os.write(writer, json.dumps(answer).encode())
            os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        answer = json.loads(data) if data else {"killed": False, "error": "no answer"}
        answer["signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve(str(Path(sys.argv[1]).resolve()), sys.argv[2])
