"""One operation at a time per dataset: uploads, manifest edits, reviews and publishes.

A flock on TAZA_HOME/stewards/locks/<dataset>.lock: a second request for the same dataset gets
409 at once instead of queueing (a job running a publish waits for it instead); the OS drops
the lock if its holder is killed, so a SIGKILLed worker never leaves a dataset locked.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from catalog.stewards.db import stewards_dir
from catalog.stewards.errors import Conflict


@contextlib.contextmanager
def dataset_lock(home: Path, dataset_id: str, wait: bool = False) -> Iterator[None]:
    folder = stewards_dir(home) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    # Each call opens its own file description, so threads of one worker exclude each other.
    with (folder / f"{dataset_id}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise Conflict(f"another operation on {dataset_id} is in progress (an upload, "
                           "review or publish); try again when it has finished") from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
