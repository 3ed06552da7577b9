"""`taza worker` that SIGKILLs itself at a chosen point of a publish: a worker dying midway,
at a known moment, with no hook in the catalog's code (the kill comes from an audit hook).

    python -m tests.killed_worker HOME version   about to rename a staging folder into a
                                                 version (converted, nothing released)
    python -m tests.killed_worker HOME switched  at the first write after current.json was
                                                 replaced (released, the draft not yet marked);
                                                 with TAZA_DATABASE_URL, where the pointer is a
                                                 row: at the first write after the release
                                                 folder's rename and its fsync (the switch
                                                 commits in between, with no file written)
"""

from __future__ import annotations

import os
import signal
import sys

from tests.fault_injection import mutation_path


def install(home: str, point: str) -> None:
    datasets = os.path.join(home, "datasets") + "/"
    current = os.path.join(home, "current.json")
    releases = os.path.join(home, "releases")
    on_database = bool(os.environ.get("TAZA_DATABASE_URL"))
    switched = [False]

    def switches(target: str) -> bool:
        if on_database:
            return os.path.dirname(target) == releases and os.path.basename(target).isdigit()
        return target == current

    def hook(event: str, args: tuple) -> None:
        if point == "version" and event == "os.rename" and \
                os.fspath(args[0]).startswith(datasets) and "/.staging-" in os.fspath(args[0]):
            os.kill(os.getpid(), signal.SIGKILL)
        if point == "switched":
            path = mutation_path(event, args)
            if switched[0] and path is not None and os.fspath(path) != releases:
                os.kill(os.getpid(), signal.SIGKILL)
            if event == "os.rename" and switches(os.fspath(args[1])):
                switched[0] = True

    sys.addaudithook(hook)


if __name__ == "__main__":
    from catalog.cli import main

    install(os.path.abspath(sys.argv[1]), sys.argv[2])
    sys.exit(main(["--home", sys.argv[1], "worker"]))
