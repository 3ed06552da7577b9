"""`taza worker` that SIGKILLs itself at a chosen point of a publish: a worker dying midway,
at a known moment, with no hook in the catalog's code (the kill comes from an audit hook).

    python -m tests.killed_worker HOME version   about to rename a staging folder into a
                                                 version (converted, nothing released)
    python -m tests.killed_worker HOME switched  at the first write after current.json was
                                                 replaced (released, the draft not yet marked)
"""

from __future__ import annotations

import os
import signal
import sys

from tests.fault_injection import mutation_path


def install(home: str, point: str) -> None:
    datasets = os.path.join(home, "datasets") + "/"
    current = os.path.join(home, "current.json")
    switched = [False]

    def hook(event: str, args: tuple) -> None:
        if point == "version" and event == "os.rename" and \
                os.fspath(args[0]).startswith(datasets) and "/.staging-" in os.fspath(args[0]):
            os.kill(os.getpid(), signal.SIGKILL)
        if point == "switched":
            if switched[0] and mutation_path(event, args) is not None:
                os.kill(os.getpid(), signal.SIGKILL)
            if event == "os.rename" and os.fspath(args[1]) == current:
                switched[0] = True

    sys.addaudithook(hook)


if __name__ == "__main__":
    from catalog.cli import main

    install(os.path.abspath(sys.argv[1]), sys.argv[2])
    sys.exit(main(["--home", sys.argv[1], "worker"]))
