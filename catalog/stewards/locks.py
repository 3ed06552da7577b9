"""One operation at a time per dataset: uploads, manifest edits, reviews and publishes.

A second request for the same dataset gets 409 at once instead of queueing (a job running a
publish waits for it instead). The lock (catalog/store/locks.py) is a flock on
TAZA_HOME/stewards/locks/<dataset>.lock in the embedded profile and a PostgreSQL advisory lock
with TAZA_DATABASE_URL, so nodes that share no disk exclude each other; either way it goes with
its holder, so a SIGKILLed worker never leaves a dataset locked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from catalog import settings
from catalog.stewards.db import stewards_dir
from catalog.stewards.errors import Conflict
from catalog.store.locks import LockHeld, held_lock


@contextlib.contextmanager
def dataset_lock(home: Path, dataset_id: str, wait: bool = False) -> Iterator[None]:
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(held_lock(stewards_dir(home) / "locks" / f"{dataset_id}.lock",
                                         f"dataset {dataset_id}", wait,
                                         settings.database_url()))
        except LockHeld as err:
            raise Conflict(f"another operation on {dataset_id} is in progress (an upload, "
                           "review or publish); try again when it has finished",
                           message_code="dataset_busy", params={"id": dataset_id}) from err
        yield
