"""The cache of rendered map tiles: one SQLite file with a size cap, shared by every worker.

    <home>/cache/tiles.sqlite   (+ tiles.sqlite-journal, empty except while a tile is stored)

or in TAZA_CACHE_DIR, a node's own disk in a cluster: a purge then drops the tiles from the cache
of the node that runs it, and every other node drops them when its workers start (`drop_purged`);
until then they are never served, since a tile is answered only for a released version.

Tiles are keyed by what names them (dataset, version, style, z, x, y); versions never change,
so an entry never goes stale, and `drop_version` removes one version's tiles when it is purged.
Only tiles with something drawn are stored: the map layer asks for many empty ones.

Why one SQLite file rather than a file per tile: the cap has to be enforced by several gunicorn
workers at once. SQLite gives them one write lock (BEGIN IMMEDIATE), a count of the pages in
use that is exact inside the transaction, and eviction in the same transaction as the insert,
so the footprint never passes the cap whatever the workers do. A hit is one primary-key read,
as fast as reading a file per tile; a store costs one fsync (measured in docs/portal.md), far
less than rendering the tile.

The cap covers the footprint on disk: the database file, and the rollback journal that exists
while a tile is being stored (a share of the cap is kept for it). Pages freed by eviction are
reused by the next inserts, so the file does not grow past its budget. Before a tile is stored,
the least recently used entries are removed until it fits under a low-water mark, so eviction
runs in batches rather than on every insert. A tile larger than an eighth of the cap (at
most 2 MiB) is served but not cached.

Recency without a write per hit: every insert advances a clock stored in the file; a hit on an
entry in the older half of the cache (clock - last_used > entries / 2) moves it to the front,
a hit on a younger one costs nothing. Frequently used tiles so never reach the end of the
queue (a "second chance" approximation of least-recently-used).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from catalog import settings

LOGGER = logging.getLogger(__name__)
CACHE_FILE = "tiles.sqlite"
DEFAULT_MAX_BYTES = 512 * 1024**2
MAX_BYTES_VARIABLE = "TAZA_TILE_CACHE_MAX_BYTES"
LOW_WATER = 0.9  # evict down to this fraction of the budget, so eviction runs in batches
PAGE_SIZE = 4096  # SQLite's default, set explicitly when the file is created
SLACK_PAGES = 8  # B-tree pages (table, two indexes, state) an insert may change or split
BUSY_TIMEOUT_S = 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS tiles (
    dataset TEXT NOT NULL,
    version INTEGER NOT NULL,
    style TEXT NOT NULL,
    z INTEGER NOT NULL,
    x INTEGER NOT NULL,
    y INTEGER NOT NULL,
    last_used INTEGER NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL  -- last, so reading the other columns never touches its pages
);
CREATE UNIQUE INDEX IF NOT EXISTS tiles_key ON tiles (dataset, version, style, z, x, y);
CREATE INDEX IF NOT EXISTS tiles_lru ON tiles (last_used);
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    clock INTEGER NOT NULL,
    entries INTEGER NOT NULL
);
INSERT OR IGNORE INTO state (id, clock, entries) VALUES (1, 0, 0);
"""
KEY = "dataset = ? AND version = ? AND style = ? AND z = ? AND x = ? AND y = ?"
SELECT_HIT = ("SELECT tiles.rowid, tiles.data, tiles.last_used, state.clock, state.entries "
              "FROM tiles, state WHERE state.id = 1 AND " + KEY)
INSERT_TILE = ("INSERT OR IGNORE INTO tiles (dataset, version, style, z, x, y, last_used, size, "
               "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
OLDEST = "SELECT rowid, size FROM tiles ORDER BY last_used, rowid LIMIT ?"


class CacheSizeError(settings.SettingError):
    """The configured cap is not a usable number of bytes."""


@dataclass(frozen=True)
class TileKey:
    dataset: str
    version: int
    style: str
    z: int
    x: int
    y: int

    def params(self) -> tuple:
        return (self.dataset, self.version, self.style, self.z, self.x, self.y)


@dataclass(frozen=True)
class Footprint:
    entries: int
    payload_bytes: int
    disk_bytes: int  # the database, its write-ahead log and index, as on disk now


def max_bytes_from_environment() -> int:
    """TAZA_TILE_CACHE_MAX_BYTES (default 512 MiB); 0 turns the cache off."""
    raw = os.environ.get(MAX_BYTES_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise CacheSizeError(f"{MAX_BYTES_VARIABLE}: expected a number of bytes (0 turns the "
                             f"tile cache off), got {raw!r}", code="tile_cache_bytes",
                             params={"name": MAX_BYTES_VARIABLE, "value": raw})
    return value


def cache_path(home: Path) -> Path:
    return settings.cache_dir(home) / CACHE_FILE


class TileCache:
    """The tile cache of one catalog home, capped at `max_bytes` on disk (0: no caching)."""

    def __init__(self, home: Path, max_bytes: int):
        self.path = cache_path(home)
        self.max_bytes = max_bytes
        # Room kept inside the cap for the rollback journal of one write.
        self.journal_pages = min(max(max_bytes // 4, 64 * 1024), 4 * 1024**2) // PAGE_SIZE
        self.budget_pages = (max_bytes // PAGE_SIZE) - self.journal_pages
        self._local = threading.local()  # one connection per thread (gunicorn gthread)

    @property
    def enabled(self) -> bool:
        return self.budget_pages > self.journal_pages

    def get(self, key: TileKey) -> bytes | None:
        """The cached tile, or None. A cache that cannot be read is treated as empty."""
        if not self.enabled or not self.path.exists():
            return None
        try:
            db = self._connection()
            row = db.execute(SELECT_HIT, key.params()).fetchone()
            if row is None:
                return None
            rowid, data, last_used, clock, entries = row
            if clock - last_used > entries / 2:  # in the older half: give it a second chance
                with _transaction(db):
                    db.execute("UPDATE tiles SET last_used = (SELECT clock FROM state) "
                               "WHERE rowid = ?", (rowid,))
            return bytes(data)
        except sqlite3.Error:
            LOGGER.warning("tile cache %s unreadable; rendering instead", self.path,
                           exc_info=True)
            return None

    def put(self, key: TileKey, data: bytes) -> bool:
        """Store a tile, evicting the least recently used ones to stay under the cap.

        Returns whether it is in the cache now (stored, or by another worker meanwhile).
        Never raises for the cache's own troubles (disk full, a damaged file): the tile is
        served anyway, only not cached.
        """
        if not self.enabled or not data or _pages_for(len(data)) > self.journal_pages // 2:
            return False  # no cache, or a tile too large for this cap
        try:
            db = self._connection()
            with _transaction(db):
                if not self._make_room(db, _pages_for(len(data))):
                    return False
                clock = db.execute("SELECT clock FROM state WHERE id = 1").fetchone()[0] + 1
                stored = db.execute(INSERT_TILE, (*key.params(), clock, len(data),
                                                  data)).rowcount
                if stored:  # another worker may have stored the same tile meanwhile
                    db.execute("UPDATE state SET clock = ?, entries = entries + 1 "
                               "WHERE id = 1", (clock,))
            return True
        except sqlite3.Error:
            LOGGER.warning("tile cache %s not writable; serving uncached", self.path,
                           exc_info=True)
            return False

    def drop_version(self, dataset_id: str, version: int) -> int:
        """Remove every cached tile of one dataset version; returns how many."""
        if not self.path.exists():
            return 0
        db = self._connection()
        db.execute("PRAGMA secure_delete = ON")  # a purge: zero the freed pages, keep no trace
        with _transaction(db):
            removed = db.execute("DELETE FROM tiles WHERE dataset = ? AND version = ?",
                                 (dataset_id, version)).rowcount
            db.execute("UPDATE state SET entries = entries - ? WHERE id = 1", (removed,))
        return removed

    def drop_purged(self, purged_versions: Callable[[str], set[int]]) -> int:
        """Remove the tiles of every version `purged_versions(dataset)` names (a node's own
        cache, which another node's purge cannot reach); returns how many."""
        if not self.path.exists():
            return 0
        cached = self._connection().execute("SELECT DISTINCT dataset, version FROM tiles")
        return sum(self.drop_version(dataset, version) for dataset, version in cached.fetchall()
                   if version in purged_versions(dataset))

    def footprint(self) -> Footprint:
        """What the cache holds and occupies on disk now."""
        if not self.path.exists():
            return Footprint(0, 0, 0)
        entries, payload = self._connection().execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM tiles").fetchone()
        disk = sum(_size(self.path.with_name(self.path.name + suffix))
                   for suffix in ("", "-journal"))
        return Footprint(entries, payload, disk)

    # -- inside -------------------------------------------------------------------------

    def _make_room(self, db: sqlite3.Connection, needed: int) -> bool:
        """Inside the write transaction: evict oldest first until `needed` pages fit under
        the low-water mark. Each round evicts few enough rows that the journal (the pages the
        transaction changes: about three per evicted row) stays within its reserve."""
        used = _used_pages(db)
        if used + needed <= self.budget_pages:
            return True
        target = int(self.budget_pages * LOW_WATER) - needed
        most_victims = max(self.journal_pages // 8, 1)
        victims: list[tuple[int]] = []
        while used > target and len(victims) < most_victims:
            to_free, freed, batch = (used - target) * PAGE_SIZE, 0, []
            for rowid, size in db.execute(OLDEST, (most_victims - len(victims),)):
                batch.append((rowid,))
                freed += size
                if freed >= to_free:
                    break
            if not batch:
                break
            db.executemany("DELETE FROM tiles WHERE rowid = ?", batch)
            db.execute("UPDATE state SET entries = entries - ? WHERE id = 1", (len(batch),))
            victims += batch
            used = _used_pages(db)
        return used + needed <= self.budget_pages

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                 check_same_thread=True)
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # no effect once the file exists
            # A rollback journal (not WAL): it exists only while a write runs and holds only
            # the pages that write changes, so the cap is kept at every moment.
            db.execute("PRAGMA journal_mode = TRUNCATE")
            with _transaction(db):
                for statement in _statements(SCHEMA):
                    db.execute(statement)
            self._local.db, self._local.pid = db, os.getpid()
        return db


def drop_version(home: Path, dataset_id: str, version: int) -> int:
    """Remove the cached tiles of one dataset version (for a purge); returns how many."""
    return TileCache(home, DEFAULT_MAX_BYTES).drop_version(dataset_id, version)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _pages_for(size: int) -> int:
    """Pages a tile may take: its overflow pages plus B-tree pages an insert can split."""
    return math.ceil(size / (PAGE_SIZE - 4)) + SLACK_PAGES


def _used_pages(db: sqlite3.Connection) -> int:
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    return pages - db.execute("PRAGMA freelist_count").fetchone()[0]


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
