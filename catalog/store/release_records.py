"""Where the release records live: which release is live, and what each release holds.

A release record is the state `{"release", "datasets", "previous", "audit"}` that readers follow
(catalog.store). Two backends behind one protocol, chosen by TAZA_DATABASE_URL:

- files (embedded, catalog/store/release_records_files.py): `releases/<R>/release.json` and the
  pointer `current.json` in the catalog home;
- PostgreSQL (catalog/store/release_records_postgresql.py): the tables `taza_state.releases` and
  `taza_state.live_release`, so app nodes learn the live release from the database, not from a
  shared disk, and the switch is one transaction.

A release's static STAC tree is written to `releases/<R>/stac/` in the home of the process that
made it; on PostgreSQL it is also copied into `taza_state.release_stac` as the release goes live,
and each version's record.json and objects.json into `taza_state.versions` as it is committed,
so nodes that share no home serve them from the database (docs/deployment.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


class ReleaseMissing(LookupError):
    """No record of that release."""


class RecordsUnavailable(RuntimeError):
    """The records cannot be read now (the database is down); the message says why."""


@dataclass(frozen=True)
class StacDocument:
    """A document of a release's static STAC tree kept by a backend (not in a folder): its
    bytes and when they were written (the file's time when it was copied from one), which the
    API sends as Last-Modified as it does for a file."""
    body: bytes
    modified: datetime


class ReleaseRecords(Protocol):
    def live(self) -> int | None:
        """The live release's number, None before the first publish."""

    def read(self, number: int) -> dict:
        """Release `number`'s state; ReleaseMissing if there is no record of it."""

    def live_state(self) -> tuple[int, dict] | None:
        """The live release's number and state in one read (what every request's
        `CatalogStore.current()` asks), None before the first publish."""

    def numbers(self) -> list[int]:
        """Every recorded release, live or not, in order."""

    def prepare(self, folder: Path, state: dict) -> None:
        """Put into the release's staging folder what this backend keeps there."""

    def go_live(self, number: int, state: dict) -> None:
        """Record release `number` (its folder already in place) and make it the live one."""

    def rewrite(self, number: int, state: dict) -> None:
        """Replace a recorded release's state (a purge drops a version from it)."""

    def where(self, number: int) -> str:
        """Where release `number` is recorded, for messages."""

    def add_version(self, dataset_id: str, version: int, folder: Path) -> None:
        """Record a version being committed from its (staging) folder, if this backend keeps
        versions apart from their folders."""

    def version(self, dataset_id: str, version: int) -> tuple[dict, dict | None] | None:
        """(record, objects) of a version this backend keeps; None: read the folder."""

    def version_numbers(self, dataset_id: str) -> tuple[set[int], set[int]]:
        """(versions, purged versions) this backend keeps beside the home's folders."""

    def version_datasets(self) -> list[str]:
        """Datasets with versions this backend keeps beside the home's folders."""

    def remove_version(self, dataset_id: str, version: int) -> None:
        """Forget a version no release ever named (debris of a killed publish)."""

    def mark_purged(self, dataset_id: str, version: int) -> None:
        """A purge of that version (its number stays taken)."""

    def stac_file(self, number: int, path: str) -> StacDocument | None:
        """A document of a release's static tree this backend keeps; None: read the folder;
        FileNotFoundError: the backend keeps that tree and it has no such document."""

    def stac_paths(self, number: int) -> list[str] | None:
        """The documents of a release's static tree this backend keeps; None: the folder."""

    def purge_stac(self, dataset_id: str, version: int) -> list[int]:
        """Drop a purged version from the trees this backend keeps; the releases changed."""


def release_records(home: Path, database_url: str | None) -> ReleaseRecords:
    """The backend of the profile: PostgreSQL with a database URL, else the home's files."""
    from catalog.store.release_records_files import FileReleaseRecords

    files = FileReleaseRecords(home)
    if not database_url:
        return files
    from catalog.store.release_records_postgresql import PostgresReleaseRecords

    return PostgresReleaseRecords(database_url, home, files)
