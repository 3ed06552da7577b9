"""Release records as files of the catalog home (the embedded profile): `releases/<R>/
release.json`, written inside the release's staging folder before it is renamed into place, and
`current.json`, replaced atomically (rename) to switch."""

from __future__ import annotations

import json
from pathlib import Path

from catalog.store.files import atomic_write
from catalog.store.release_records import ReleaseMissing, StacDocument

RELEASE_FILE = "release.json"
POINTER_FILE = "current.json"


class FileReleaseRecords:
    def __init__(self, home: Path):
        self.home = Path(home)

    def live(self) -> int | None:
        pointer = self.home / POINTER_FILE
        if not pointer.exists():
            return None
        return int(json.loads(pointer.read_text())["release"])

    def read(self, number: int) -> dict:
        try:
            return json.loads(self._path(number).read_text())
        except FileNotFoundError as err:
            raise ReleaseMissing(f"no release {number} in {self.home / 'releases'}") from err

    def live_state(self) -> tuple[int, dict] | None:
        number = self.live()
        return None if number is None else (number, self.read(number))

    def numbers(self) -> list[int]:
        folder = self.home / "releases"
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir()
                      if p.name.isdigit() and (p / RELEASE_FILE).exists())

    def prepare(self, folder: Path, state: dict) -> None:
        (folder / RELEASE_FILE).write_text(json.dumps(state, indent=2))

    def go_live(self, number: int, state: dict) -> None:
        atomic_write(self.home / POINTER_FILE, json.dumps({"release": number}))

    def rewrite(self, number: int, state: dict) -> None:
        atomic_write(self._path(number), json.dumps(state, indent=2))

    def where(self, number: int) -> str:
        return f"releases/{number}/{RELEASE_FILE}"

    # The version folders and release folders of the home are themselves the records of
    # versions and the static STAC trees: nothing more to keep.

    def add_version(self, dataset_id: str, version: int, folder: Path) -> None:
        """Nothing: the version folder holds record.json."""

    def version(self, dataset_id: str, version: int) -> tuple[dict, dict | None] | None:
        return None  # read from the version folder

    def version_numbers(self, dataset_id: str) -> tuple[set[int], set[int]]:
        return set(), set()  # the folders and purged.json say

    def version_datasets(self) -> list[str]:
        return []

    def remove_version(self, dataset_id: str, version: int) -> None:
        """Nothing: the store removes the folder."""

    def mark_purged(self, dataset_id: str, version: int) -> None:
        """Nothing: purged.json says."""

    def stac_file(self, number: int, path: str) -> StacDocument | None:
        return None  # in the release's folder

    def stac_paths(self, number: int) -> list[str] | None:
        return None  # in the release's folder

    def purge_stac(self, dataset_id: str, version: int) -> list[int]:
        return []  # the store rewrites the folders

    def _path(self, number: int) -> Path:
        return self.home / "releases" / str(number) / RELEASE_FILE
