"""Where the harvest sources live, with what each one's runs saw (catalog/harvest).

Two backends behind one protocol, chosen by TAZA_DATABASE_URL like the release records:

- files (embedded, `FileHarvestSources`), under TAZA_HOME/harvest/:

      sources.json          {name: {url, type, organisation, email, theme, added_at,
                                    every_seconds (scheduled runs) or null}}
      state/<name>.json     {"datasets": {remote id: {dataset_id, fingerprint, landing_url}},
                             "last_run": the last run's report}
      harvest.lock          held (flock) while sources change or a run works

  Files are replaced by an atomic rename.
- PostgreSQL (catalog/store/harvest_sources_postgresql.py): the tables
  `taza_state.harvest_sources` and `taza_state.harvest_state`, and the lock an advisory lock of
  the database, so every node and worker, whatever its home, sees the same sources, schedules
  and last runs, and two runs of a source never interleave across nodes.

The checks of what a source may be (names, kinds, URLs) are catalog/harvest/registry.py's;
this layer only keeps what it is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class HarvestSourcesUnavailable(RuntimeError):
    """The sources cannot be read now (the database is down); the message says why."""


class HarvestSourcesConflict(RuntimeError):
    """A copy's target holds a source of that name with another definition."""


class HarvestSources(Protocol):
    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Held while sources change or a run works: one holder at a time, across every
        process that shares this backend."""

    def sources(self) -> dict[str, dict]:
        """Every source by name."""

    def insert(self, source: dict) -> bool:
        """Add `source` (keyed by its "name"); False when a source has that name already."""

    def delete(self, name: str) -> bool:
        """Forget a source and its state; False when there was none of that name."""

    def state(self, name: str) -> dict:
        """What the source's runs saw: {"datasets": {...}, "last_run": report or None}."""

    def save_state(self, name: str, data: dict) -> None:
        """Replace the source's state."""


def empty_state() -> dict:
    return {"datasets": {}, "last_run": None}


def ran_later(state: dict, other: dict | None) -> bool:
    """Whether `state`'s last run finished after `other`'s (or `other` never ran)."""
    if state.get("last_run") is None:
        return False
    if other is None or other.get("last_run") is None:
        return True
    return state["last_run"]["finished"] > other["last_run"]["finished"]


def harvest_sources(home: Path, database_url: str | None) -> HarvestSources:
    """The backend of the profile: PostgreSQL with a database URL, else the home's files."""
    if not database_url:
        return FileHarvestSources(home)
    from catalog.store.harvest_sources_postgresql import PostgresHarvestSources

    return PostgresHarvestSources(database_url, home)


class FileHarvestSources:
    """The embedded profile's files under TAZA_HOME/harvest/ (see the module's note)."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.folder = self.home / "harvest"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        (self.folder / "state").mkdir(parents=True, exist_ok=True)
        with open(self.folder / "harvest.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def sources(self) -> dict[str, dict]:
        path = self.folder / "sources.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def insert(self, source: dict) -> bool:
        known = self.sources()
        if source["name"] in known:
            return False
        known[source["name"]] = source
        _write(self.folder / "sources.json", known)
        return True

    def delete(self, name: str) -> bool:
        known = self.sources()
        if known.pop(name, None) is None:
            return False
        _write(self.folder / "sources.json", known)
        self.state_path(name).unlink(missing_ok=True)
        return True

    def state_path(self, name: str) -> Path:
        return self.folder / "state" / f"{name}.json"

    def state(self, name: str) -> dict:
        path = self.state_path(name)
        return json.loads(path.read_text()) if path.exists() else empty_state()

    def save_state(self, name: str, data: dict) -> None:
        _write(self.state_path(name), data)


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
