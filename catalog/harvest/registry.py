"""Harvest sources and what each run saw, under TAZA_HOME/harvest/:

    sources.json          {name: {url, type, organisation, email, theme, added_at,
                                  every_seconds (scheduled runs: schedule.py) or null}}
    state/<name>.json     {"datasets": {remote id: {dataset_id, fingerprint, landing_url}},
                           "last_run": the last run's report}
    harvest.lock          held (flock) while sources change or a run works

Files are replaced by an atomic rename; one lock serialises `taza harvest` commands and
scheduled runs, so two runs of a source never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from catalog.harvest.fetch import check_url

KINDS = ("stac", "ogcapi-records", "csw", "ckan", "ogcapi-features")
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$")
THEMES = ("land", "infrastructure", "coverage")


class HarvestError(Exception):
    """A harvest command that cannot be done (unknown source, bad name or URL)."""


class NotSupported(HarvestError):
    """A kind of source that cannot be harvested yet."""


def harvest_dir(home: Path) -> Path:
    return Path(home) / "harvest"


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    folder = harvest_dir(home)
    (folder / "state").mkdir(parents=True, exist_ok=True)
    with open(folder / "harvest.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def sources(home: Path) -> dict[str, dict]:
    path = harvest_dir(home) / "sources.json"
    return json.loads(path.read_text()) if path.exists() else {}


def source(home: Path, name: str) -> dict:
    found = sources(home).get(name)
    if found is None:
        raise HarvestError(f"no harvest source {name!r} (taza harvest list)")
    return found


def add(home: Path, url: str, kind: str, name: str, organisation: str, email: str,
        theme: str | None, added_at: str, every_seconds: int | None = None) -> dict:
    if kind not in KINDS:
        raise HarvestError(f"--type: expected one of {list(KINDS)}, got {kind!r}")
    if not SOURCE_NAME.match(name):
        raise HarvestError("--name: 3-32 characters, lowercase letters, digits and '-'")
    if theme is not None and theme not in THEMES:
        raise HarvestError(f"--theme: expected one of {list(THEMES)}, got {theme!r}")
    check_url(url)
    with locked(home):
        known = sources(home)
        if name in known:
            raise HarvestError(f"a harvest source is already named {name!r}")
        known[name] = {"name": name, "url": url, "type": kind, "organisation": organisation,
                       "email": email, "theme": theme, "added_at": added_at,
                       "every_seconds": every_seconds}
        _write(harvest_dir(home) / "sources.json", known)
    return known[name]


def remove(home: Path, name: str) -> None:
    """Forget a source and its state; the drafts and datasets it made stay (stewards' work)."""
    with locked(home):
        known = sources(home)
        if known.pop(name, None) is None:
            raise HarvestError(f"no harvest source {name!r} (taza harvest list)")
        _write(harvest_dir(home) / "sources.json", known)
        state_path(home, name).unlink(missing_ok=True)


def state_path(home: Path, name: str) -> Path:
    return harvest_dir(home) / "state" / f"{name}.json"


def state(home: Path, name: str) -> dict:
    path = state_path(home, name)
    return json.loads(path.read_text()) if path.exists() else {"datasets": {}, "last_run": None}


def save_state(home: Path, name: str, data: dict) -> None:
    _write(state_path(home, name), data)


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
