"""One look at the live release per interval for a worker (catalog/store/watch.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from catalog.store import CatalogStore
from catalog.store.watch import ReleaseWatch


class CountingReader:
    """Reads the real current.json of a published home and counts the reads."""

    def __init__(self, home: Path):
        self.store = CatalogStore(home)
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return self.store.current()


def test_every_caller_within_the_interval_shares_one_read(published_home: Path) -> None:
    reader = CountingReader(published_home)
    watch = ReleaseWatch(reader, interval=3600)
    numbers: list[int | None] = []
    threads = [threading.Thread(target=lambda: numbers.extend(watch.number() for _ in range(50)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reader.reads == 1
    assert set(numbers) == {reader.store.current().number}


def test_fresh_reads_now_and_an_elapsed_interval_reads_again(published_home: Path) -> None:
    reader = CountingReader(published_home)
    patient = ReleaseWatch(reader, interval=3600)
    patient.current()
    patient.current(fresh=True)
    assert reader.reads == 2
    eager = ReleaseWatch(reader, interval=0.0)
    eager.current()
    eager.current()
    assert reader.reads == 4


def test_a_store_gives_its_services_one_watch(published_home: Path) -> None:
    store = CatalogStore(published_home)
    assert store.watch is store.watch
    assert store.watch.number() == store.current().number
