"""Harvest sources and what each run saw: the checks of what a source may be, over the store
of the profile (catalog/store/harvest_sources.py, chosen by TAZA_DATABASE_URL):

- embedded: files under TAZA_HOME/harvest/ (sources.json, state/<name>.json, harvest.lock);
- PostgreSQL: the tables taza_state.harvest_sources and harvest_state, shared by every node
  and worker whatever its home (catalog/store/harvest_sources_postgresql.py).

One lock (a flock of the home, or an advisory lock of the database) serialises `taza harvest`
commands and scheduled runs, so two runs of a source never interleave.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from catalog import settings
from catalog.harvest.fetch import check_url
from catalog.store.harvest_sources import HarvestSources, harvest_sources

KINDS = ("stac", "ogcapi-records", "csw", "ckan", "ogcapi-features")
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$")
THEMES = ("land", "infrastructure", "coverage")


class HarvestError(Exception):
    """A harvest command that cannot be done (unknown source, bad name or URL).

    `str(err)` is the English message (logs, jobs' results); `code` names its text in every
    language (`error.<code>` of catalog/harvest/cli_texts.yml), filled from `params`, which
    `taza harvest` says in the operator's language."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


class NotSupported(HarvestError):
    """A kind of source that cannot be harvested yet."""


def store(home: Path) -> HarvestSources:
    """The harvest sources of the profile (TAZA_DATABASE_URL, read at each call)."""
    return harvest_sources(Path(home), settings.database_url())


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    with store(home).locked():
        yield


def sources(home: Path) -> dict[str, dict]:
    return store(home).sources()


def source(home: Path, name: str) -> dict:
    found = sources(home).get(name)
    if found is None:
        raise HarvestError(f"no harvest source {name!r} (taza harvest list)",
                           code="unknown_source", params={"name": name})
    return found


def add(home: Path, url: str, kind: str, name: str, organisation: str, email: str,
        theme: str | None, added_at: str, every_seconds: int | None = None) -> dict:
    if kind not in KINDS:
        raise HarvestError(f"--type: expected one of {list(KINDS)}, got {kind!r}",
                           code="type", params={"choices": str(list(KINDS)), "kind": kind})
    if not SOURCE_NAME.match(name):
        raise HarvestError("--name: 3-32 characters, lowercase letters, digits and '-'",
                           code="name")
    if theme is not None and theme not in THEMES:
        raise HarvestError(f"--theme: expected one of {list(THEMES)}, got {theme!r}",
                           code="theme", params={"choices": str(list(THEMES)), "theme": theme})
    check_url(url)
    added = {"name": name, "url": url, "type": kind, "organisation": organisation,
             "email": email, "theme": theme, "added_at": added_at,
             "every_seconds": every_seconds}
    sources_store = store(home)
    with sources_store.locked():
        if not sources_store.insert(added):
            raise HarvestError(f"a harvest source is already named {name!r}",
                               code="source_exists", params={"name": name})
    return added


def remove(home: Path, name: str) -> None:
    """Forget a source and its state; the drafts and datasets it made stay (stewards' work)."""
    sources_store = store(home)
    with sources_store.locked():
        if not sources_store.delete(name):
            raise HarvestError(f"no harvest source {name!r} (taza harvest list)",
                               code="unknown_source", params={"name": name})


def state(home: Path, name: str) -> dict:
    return store(home).state(name)


def save_state(home: Path, name: str, data: dict) -> None:
    store(home).save_state(name, data)
