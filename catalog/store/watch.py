"""One look at the live release per second for a whole worker, shared by every service.

The Features routes, the /ogc pages and the STAC API each need to notice when another release
goes live (a publish, a rollback, in another process or on another node). Each used to read
current.json on its own schedule: three reads a second per worker, and for up to a second a
worker could answer /ogc from one release and /stac from the next. A `ReleaseWatch` reads it at
most once per interval for all of them; each service compares the number it is given with the
one it built its view from and rebuilds on a change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from catalog.store.release_records import RecordsUnavailable

if TYPE_CHECKING:
    from catalog.store import Release

CHECK_INTERVAL_S = 1.0  # how stale a worker may be after a publish


class ReleaseWatch:
    """`current()`: the live release as last read, read again once `interval` has passed."""

    def __init__(self, read: Callable[[], Release | None], interval: float = CHECK_INTERVAL_S):
        self._read = read
        self.interval = interval
        self._lock = threading.Lock()
        self._release: Release | None = None
        self._read_at: float | None = None

    def current(self, fresh: bool = False) -> Release | None:
        """`fresh`: read now (a caller that must describe the release another service has
        just switched to)."""
        now = time.monotonic()
        read_at = self._read_at
        if not fresh and read_at is not None and now - read_at < self.interval:
            return self._release
        with self._lock:
            if fresh or self._read_at is None or now - self._read_at >= self.interval:
                try:
                    self._release = self._read()
                except RecordsUnavailable:
                    # The database restarts: keep serving the release last read, look again
                    # at the next interval. With none read yet there is nothing to serve.
                    if self._read_at is None:
                        raise
                self._read_at = time.monotonic()
            return self._release

    def number(self, fresh: bool = False) -> int | None:
        release = self.current(fresh)
        return release.number if release else None
