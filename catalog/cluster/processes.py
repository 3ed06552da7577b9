"""Stopping what the cluster started, by PID, whether or not it is our child."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: it has exited and waits for its parent)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child, exited: reaped now
            return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def stop_process(pid: int, first: signal.Signals = signal.SIGTERM, grace: float = 15,
                 group: bool = False) -> None:
    """Send `first`, wait up to `grace` seconds, then SIGKILL; `group`: the whole process group
    (an app node: gunicorn's master and its workers)."""
    send = os.killpg if group else os.kill
    for sig in (first, signal.SIGKILL):
        try:
            send(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.05)
        if not alive(pid):
            break
    if group:  # workers the master left behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
