"""The embedded STAC index: one SQLite file, derived from the releases, rebuilt incrementally.

Tables (see docs/stac-api.md):

- `items`: one row per item: collection, id, time span as Julian days (`dt`, `dt_end`),
  geometry as a GeoPackage blob (so the CQL2 translator's spatial functions read it), the
  properties (`props`, JSON, for filters and sorting) and the whole item (`content`, JSON).
  `rminx`..`rmaxy`: the exact bounds of a geometry that is its own bounding rectangle (and
  whose `bbox` says the same), else NULL: a box search tests those items in SQL, without a
  Python call per candidate. `page`: the item as the API writes it (compact JSON, its links
  included), the public URL left as documents.RENDERED_BASE: a page of a search is assembled
  from these texts without parsing and re-serialising each item.
- `items_rtree`: R-tree of item bounding boxes; `items_fts`: FTS5 over item and collection
  texts in every language the catalog carries.
- `collections` (+ `collections_fts`): one row per collection, with extent and theme columns
  for collection search, and the queryables found in its items.
- `meta`: the release the index reflects and what the last update did.

Every value from a request travels as an SQL parameter. The only text spliced into SQL are
fixed fragments of this module and identifiers quoted by the CQL2 translator.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from catalog.core.cql2 import box_geometry
from catalog.gpkg import encode, register_functions
from catalog.stac_index import cql, keyset
from catalog.stac_index.backend import CollectionSearch, InvalidQuery, ItemSearch, Page, SortKey
from catalog.stac_index.documents import rendered_item
from catalog.stac_index.keyset import SQLITE_MARKS, Key

# 2: items.rminx..rmaxy and items.page; 3: the time indexes carry pk (their order is the
# sort's, (dt, pk)) and each item's rectangle, so a walk in time order tests a box without
# reading the item's row (1,000,000 items, a box meeting about 10,000, a page of 100: 72 ms
# reading rows, 12 ms from the index). 4: the number properties' indexes carry pk, each
# item's rectangle and dt too, so a range plan (MAX_RANGE_CANDIDATES) tests a box and sorts by
# time from the index, reading only the rows of its hits.
SCHEMA_VERSION = "4"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIX_EPOCH_JD_MS = 210866760000000  # SQLite's julianday() of 1970-01-01, in milliseconds

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    theme TEXT,
    minx REAL, miny REAL, maxx REAL, maxy REAL,
    dt REAL, dt_end REAL,
    queryables TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS collections_fts
    USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS items (
    pk INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    dt REAL NOT NULL,
    dt_end REAL NOT NULL,
    rminx REAL, rminy REAL, rmaxx REAL, rmaxy REAL,
    geometry BLOB,
    props TEXT NOT NULL,
    page TEXT,
    content TEXT NOT NULL,
    UNIQUE (collection, id)
);
CREATE INDEX IF NOT EXISTS items_by_dt ON items (dt, pk, rminx, rmaxx, rminy, rmaxy);
CREATE INDEX IF NOT EXISTS items_by_collection_dt
    ON items (collection, dt, pk, rminx, rmaxx, rminy, rmaxy);
CREATE INDEX IF NOT EXISTS items_by_id ON items (id);
CREATE VIRTUAL TABLE IF NOT EXISTS items_rtree USING rtree (id, minx, maxx, miny, maxy);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts
    USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
"""

# Properties every item has, with their SQL and JSON Schema; others come from the items.
CORE_QUERYABLES: dict[str, dict] = {
    "id": {"title": "Item id", "type": "string"},
    "collection": {"title": "Collection id", "type": "string"},
    "geometry": {"title": "Footprint", "$ref": "https://geojson.org/schema/Geometry.json"},
    "datetime": {"title": "Time (instant, or the item's start_datetime to end_datetime)",
                 "type": "string", "format": "date-time"},
}
_TIME_PROPERTIES = frozenset({"datetime", "start_datetime", "end_datetime", "created",
                              "updated", "processing:datetime"})
PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.\-]{0,63}$")
# Number properties of the items get an expression index on (collection, value), so a filter
# on one or a sort by one over a whole collection reads a range of an index instead of every
# item's JSON (100,000 items: a sort by eo:cloud_cover took about 60 ms a request). The first
# few found; each costs about 20 bytes an item and a little publishing time.
MAX_PROPERTY_INDEXES = 8
_INDEXED_KINDS = frozenset({"number", "integer"})
_WORD = re.compile(r"\w+")
# Above this many R-tree candidates, a box (alone or with other filters) walks the time order
# instead of reading every candidate (measured: 20,000 items, ~260 candidates, R-tree first
# 0.5 ms and the walk 1.5 ms of SQL a search; 200,000 items, ~2,600 candidates, the R-tree
# first slower).
MAX_SPATIAL_CANDIDATES = 1000
# A filter's range of an indexed number property holding at most this many items of the
# searched collections (estimated from a sample, RANGE_SAMPLE_SIZE) is read from that
# property's index, its hits then sorted, instead of walking the time order
# (SqliteBackend._range_plan). The index holds each item's rectangle and dt, so the range's
# items are tested and ordered without reading their rows; a walk for a narrow range in a large
# box may pass most of the collection before a page is full (1,000,000 items, a cloud range 0.4
# wide in a box of 0.3 degree: 254 ms walking). Measured there, in process, over 600 searches
# of the benchmark's CQL2 JSON row (a random cloud range and box), bounds of 5,000, 20,000 and
# 40,000 gave 4.5, 3.7 and 3.4 ms a search on average (p99 57, 25 and 19 ms); the range plan
# reads an index entry for what the walk pays a row read.
MAX_RANGE_CANDIDATES = 40000
# About this many items (every k-th by pk; all of a smaller collection) sample an indexed
# property's values, per collection, to estimate how many items a range holds; kept per
# version of the index file (_facts). 1,000,000 items: about 250 ms once per worker process
# after each publish.
RANGE_SAMPLE_SIZE = 16384
# What reading an item's row (to test a filter term on its JSON) costs, in index entries read:
# the walk's price per item of the box it keeps (_range_plan's estimate).
ROW_READ_COST = 8
_REBUILT_VERSIONS = frozenset({"1", "2", "3"})  # older schemas that opening rebuilds (derived data)
_COLUMNS = frozenset({"dt", "pk", "id", "collection"})  # sort keys that are plain columns
_SPAN_MARGIN = 1e-6  # days (0.09 s): far above the rounding of Julian-day differences


# -- conversions ---------------------------------------------------------------------------


def julian_day(moment: datetime) -> float:
    """UTC instant -> Julian day, computed exactly as SQLite's julianday() does."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    milliseconds = (moment - _EPOCH) // timedelta(milliseconds=1)
    return (milliseconds + _UNIX_EPOCH_JD_MS) / 86400000.0


def julian_or_none(text: str | None) -> float | None:
    if not text:
        return None
    return julian_day(datetime.fromisoformat(text))


def item_span(properties: dict) -> tuple[float, float]:
    start = julian_or_none(properties.get("datetime") or properties.get("start_datetime"))
    end = julian_or_none(properties.get("datetime") or properties.get("end_datetime"))
    if start is None or end is None:
        raise ValueError("an item needs datetime, or start_datetime and end_datetime")
    return start, end


def _rectangle(document: dict | None, geometry: BaseGeometry | None,
               box: tuple[float, float, float, float] | None) -> tuple[float | None, ...]:
    """(minx, miny, maxx, maxy) of a geometry that is exactly its bounding rectangle and
    whose item bbox gives the same bounds; else NULLs. For those items, intersecting a
    rectangle is the closed overlap of the bounds (what gpkg_intersects would answer), and
    the R-tree's outward-rounded box holds the same box (so its shortcuts agree)."""
    none = (None, None, None, None)
    if geometry is None or box is None or geometry.geom_type != "Polygon":
        return none
    corners = _corners(document)
    if corners is not None:  # the usual four corners, read without GEOS
        bounds = corners
    elif geometry.area == 0 or not shapely.equals(geometry, shapely.box(*geometry.bounds)):
        return none
    else:
        bounds = tuple(float(v) for v in geometry.bounds)
    if bounds != tuple(box):
        return none
    return bounds


def _corners(document: dict | None) -> tuple[float, float, float, float] | None:
    """Bounds of a GeoJSON polygon that is one closed ring of the four distinct corners of a
    box of positive area, edges along the axes; None for anything else (GEOS decides)."""
    try:
        rings = document["coordinates"]  # type: ignore[index]
        if len(rings) != 1 or len(rings[0]) != 5 or rings[0][0] != rings[0][4]:
            return None
        points = [(float(x), float(y)) for x, y in rings[0]]
    except (KeyError, TypeError, ValueError):
        return None
    xs, ys = {p[0] for p in points}, {p[1] for p in points}
    if len(xs) != 2 or len(ys) != 2 or len(set(points)) != 4:
        return None
    if any((a[0] != b[0]) == (a[1] != b[1]) for a, b in zip(points, points[1:], strict=False)):
        return None  # an edge that is diagonal (or a repeated point)
    return (min(xs), min(ys), max(xs), max(ys))


def fts_query(terms: Sequence[str], param: str = "q") -> str:
    """Free-text terms -> an FTS5 expression: terms OR-ed, words of a term AND-ed, each word
    matched as a prefix (so 'рельеф' finds 'рельефа'). Only \\w+ words reach the expression."""
    clauses = []
    for term in terms:
        words = _WORD.findall(term)
        if not words:
            raise InvalidQuery(f"{param}: '{term}' has no words to search for",
                               message_code="q_no_words", params={"term": term[:80]})
        clauses.append("(" + " AND ".join(f'"{word}"*' for word in words) + ")")
    return " OR ".join(clauses)


def searchable_text(document: dict) -> str:
    """Titles, descriptions and keywords in every language (core fields + taza:translations)."""
    parts: list[str] = []
    holders = [document, document.get("properties") or {}]
    holders += list((document.get("taza:translations") or {}).values())
    for holder in holders:
        for field in ("title", "description"):
            if isinstance(holder.get(field), str):
                parts.append(holder[field])
        parts += [k for k in holder.get("keywords") or [] if isinstance(k, str)]
    return "\n".join(parts)


def note_kinds(properties: dict, kinds: dict[str, str]) -> None:
    """Record in `kinds` the JSON kind of each queryable property (the first one seen wins)."""
    for name, value in properties.items():
        kind = json_kind(name, value)
        if kind and PROPERTY_NAME.match(name):
            kinds.setdefault(name, kind)


def json_kind(name: str, value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "date-time" if name in _TIME_PROPERTIES else "string"
    return None  # objects and arrays are not queryable


def schema_of(kind: str) -> dict:
    if kind == "date-time":
        return {"type": "string", "format": "date-time"}
    return {"type": kind}


# -- the backend ---------------------------------------------------------------------------


class SqliteBackend:
    """`StacBackend` over one SQLite file (WAL: readers never wait for the publisher)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self._create()

    # connections ---------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (GEOS prepared geometries must not cross threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA mmap_size = 268435456")
            register_functions(conn)
            self._local.conn = conn
        return conn

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.connect()
        conn.executescript(_DDL)
        version = self._meta("schema_version")
        if version in _REBUILT_VERSIONS:
            self._rebuild(conn)
            version = self._meta("schema_version")
        if version not in (None, SCHEMA_VERSION):
            raise RuntimeError(f"{self.path}: index schema {version}, expected {SCHEMA_VERSION}; "
                               "delete the file to rebuild it")
        if version is None:
            self._set_meta(conn, "schema_version", SCHEMA_VERSION)

    def _rebuild(self, conn: sqlite3.Connection) -> None:
        """An index of an older schema: emptied and recreated (it is derived data; the next
        request re-indexes every dataset of the live release, catalog.stac_index.sync)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._meta("schema_version") in _REBUILT_VERSIONS:  # not done by another process
                for table in ("items", "items_rtree", "items_fts", "collections",
                              "collections_fts", "meta"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in _DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                self._set_meta(conn, "schema_version", SCHEMA_VERSION)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._forget_facts()

    def _meta(self, key: str) -> str | None:
        row = self.connect().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # state ---------------------------------------------------------------------------------

    def indexed_release(self) -> int | None:
        value = self._meta("release")
        return int(value) if value is not None else None

    def indexed_versions(self) -> dict[str, int]:
        rows = self.connect().execute("SELECT dataset_id, version FROM collections")
        return dict(rows.fetchall())

    def last_update(self) -> dict:
        """What the last `apply` did (which datasets it indexed, how long it took)."""
        return json.loads(self._meta("last_update") or "{}")

    # writing -------------------------------------------------------------------------------

    def apply(self, release: int, upserts: Sequence[tuple[str, int, dict, Iterable[dict]]],
              removals: Sequence[str], expected_release: int | None = -1) -> bool:
        """Replace and remove datasets in one transaction and record `release`.

        With `expected_release` set (not -1), do nothing and return False when another process
        moved the index meanwhile: callers re-read and retry, so two workers never both apply.
        """
        started = time.perf_counter()
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if expected_release != -1 and self.indexed_release() != expected_release:
                conn.execute("ROLLBACK")
                return False
            counts = {}
            for dataset_id in [*removals, *(u[0] for u in upserts)]:
                self._delete_dataset(conn, dataset_id)
            for dataset_id, version, collection, items in upserts:
                counts[dataset_id] = self._insert_dataset(conn, dataset_id, version,
                                                          collection, items)
            self._set_meta(conn, "release", str(release))
            self._set_meta(conn, "last_update", json.dumps({
                "release": release, "indexed": counts, "removed": list(removals),
                "seconds": round(time.perf_counter() - started, 3),
            }))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._forget_facts()
        return True

    def scrub(self) -> None:
        """Make removed entries unrecoverable from the file (after a purge): full-text
        segments keep deleted terms until merged, and SQLite keeps deleted rows in free pages
        and in the write-ahead log until the file is rewritten and the log emptied."""
        conn = self.connect()
        for table in ("items_fts", "collections_fts"):
            conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")  # noqa: S608
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _delete_dataset(self, conn: sqlite3.Connection, dataset_id: str) -> None:
        rows = conn.execute("SELECT pk, id FROM collections WHERE dataset_id = ?", (dataset_id,))
        for pk, collection_id in rows.fetchall():
            for table in ("items_rtree", "items_fts"):
                key = "id" if table == "items_rtree" else "rowid"
                conn.execute(f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608 - fixed names
                             "(SELECT pk FROM items WHERE collection = ?)", (collection_id,))
            conn.execute("DELETE FROM items WHERE collection = ?", (collection_id,))
            conn.execute("DELETE FROM collections_fts WHERE rowid = ?", (pk,))
            conn.execute("DELETE FROM collections WHERE pk = ?", (pk,))

    def _insert_dataset(self, conn: sqlite3.Connection, dataset_id: str, version: int,
                        collection: dict, items: Iterable[dict]) -> int:
        collection_text = searchable_text(collection)
        kinds: dict[str, str] = {}
        rows, boxes, texts = [], [], []
        next_pk = (conn.execute("SELECT max(pk) FROM items").fetchone()[0] or 0) + 1
        max_span = float(self._meta("max_span") or 0)
        for pk, item in enumerate(items, start=next_pk):
            properties = item["properties"]
            start, end = item_span(properties)
            max_span = max(max_span, end - start)
            note_kinds(properties, kinds)
            content = json.dumps(item, ensure_ascii=False)
            box = None
            if item.get("bbox"):
                box = item["bbox"]
                west, south, east, north = (box[0], box[1], box[3], box[4]) if len(box) == 6 \
                    else box
                box = (west, south, east, north)
                boxes.append((pk, west, east, south, north))
            geometry = shape(item["geometry"]) if item.get("geometry") else None
            rows.append((pk, collection["id"], item["id"], start, end,
                         *_rectangle(item.get("geometry"), geometry, box),
                         encode(geometry, 4326) if geometry is not None else None,
                         json.dumps(properties, ensure_ascii=False),
                         rendered_item(item, content), content))
            texts.append((pk, searchable_text(item) + "\n" + collection_text))
        conn.executemany("INSERT INTO items (pk, collection, id, dt, dt_end, rminx, rminy, rmaxx, "
                         "rmaxy, geometry, props, page, content) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO items_rtree VALUES (?, ?, ?, ?, ?)", boxes)
        conn.executemany("INSERT INTO items_fts (rowid, text) VALUES (?, ?)", texts)
        self._insert_collection(conn, dataset_id, version, collection, kinds)
        self._index_properties(conn, kinds)
        # The longest time span of any item (never lowered by a removal: a bound, not a fact):
        # `dt_end >= start` then implies `dt >= start - max_span`, a range of the time index.
        self._set_meta(conn, "max_span", repr(max_span))
        return len(rows)

    def _index_properties(self, conn: sqlite3.Connection, kinds: dict[str, str]) -> None:
        """An expression index for each new number property, up to MAX_PROPERTY_INDEXES."""
        # From the file, not _facts: an earlier dataset of this transaction may have added some.
        indexed = list(json.loads(self._meta("indexed_properties") or "[]"))
        for name in properties_to_index(kinds, indexed):
            index = property_index(name)
            # (value, pk): the sort's order; the rectangle and dt: a range plan's box test
            # and time order from the index, without reading rows.
            conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON items "
                         f"(collection, {cql.indexed_property_sql(name)}, pk, "
                         "rminx, rmaxx, rminy, rmaxy, dt)")
            indexed.append(name)
        self._set_meta(conn, "indexed_properties", json.dumps(indexed))

    def indexed_properties(self) -> frozenset[str]:
        """The item properties with an expression index (`_index_properties`)."""
        return self._facts().get("indexed", lambda: frozenset(
            json.loads(self._meta("indexed_properties") or "[]")))

    def _facts(self) -> _Facts:
        """What searches read of the index itself (queryables, indexed properties, the
        longest time span), kept per connection until the file changes: SQLite's
        data_version moves when another connection commits, and `apply` forgets this
        connection's own (a search read them from SQL and JSON each time: issue 14)."""
        conn = self.connect()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        facts = getattr(self._local, "facts", None)
        if facts is None or facts.version != version:
            facts = self._local.facts = _Facts(version)
        return facts

    def _forget_facts(self) -> None:
        self._local.facts = None

    def _insert_collection(self, conn: sqlite3.Connection, dataset_id: str, version: int,
                           collection: dict, kinds: dict[str, str]) -> None:
        extent = collection["extent"]
        west, south, east, north = extent["spatial"]["bbox"][0][:4]
        start, end = extent["temporal"]["interval"][0]
        queryables = {name: schema_of(kind) for name, kind in sorted(kinds.items())}
        cursor = conn.execute(
            "INSERT INTO collections (id, dataset_id, version, theme, minx, miny, maxx, maxy, dt, "
            "dt_end, queryables, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (collection["id"], dataset_id, version, collection.get("taza:theme"), west, south,
             east, north, julian_or_none(start), julian_or_none(end), json.dumps(queryables),
             json.dumps(collection, ensure_ascii=False)))
        conn.execute("INSERT INTO collections_fts (rowid, text) VALUES (?, ?)",
                     (cursor.lastrowid, searchable_text(collection)))

    # reading: single objects ---------------------------------------------------------------

    def item(self, collection_id: str, item_id: str) -> dict | None:
        row = self.connect().execute(
            "SELECT content FROM items WHERE collection = ? AND id = ?", (collection_id, item_id)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def collection(self, collection_id: str) -> dict | None:
        row = self.connect().execute(
            "SELECT content FROM collections WHERE id = ?", (collection_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def collection_ids(self) -> set[str]:
        return {r[0] for r in self.connect().execute("SELECT id FROM collections")}

    def queryables(self, collection_id: str | None) -> dict[str, dict]:
        """Core queryables plus each property found in the (collection's) items."""
        return dict(self._facts().get(("queryables", collection_id),
                                      lambda: self._read_queryables(collection_id)))

    def _read_queryables(self, collection_id: str | None) -> dict[str, dict]:
        sql, params = "SELECT queryables FROM collections ORDER BY id", ()
        if collection_id is not None:
            sql, params = "SELECT queryables FROM collections WHERE id = ?", (collection_id,)
        rows = self.connect().execute(sql, params)
        return keyset.merged_queryables(CORE_QUERYABLES, (json.loads(r[0]) for r in rows))

    # reading: item search ------------------------------------------------------------------

    def search(self, query: ItemSearch, rendered: bool = False) -> Page:
        """A page of items; with `rendered`, as Page.rendered (the items' `page` texts) when
        every item of the page has one, else as Page.features."""
        signature = keyset.signature(query.sortby)
        if rendered:
            sql, params = self._search_sql(query, "page")
            rows = self._run(sql, params)
            if all(row[0] is not None for row in rows):
                page = keyset.keyset_page(rows, query.limit, signature, lambda text: text)
                return Page([], page.next_token, rendered=page.features)
        sql, params = self._search_sql(query)
        rows = self._run(sql, params)
        return keyset.keyset_page(rows, query.limit, signature, json.loads)

    def plan(self, query: ItemSearch) -> list[str]:
        """SQLite's plan of a search (EXPLAIN QUERY PLAN), one line per step: what
        docs/stac-api.md's plan notes and the tests check."""
        sql, params = self._search_sql(query)
        return [row[3] for row in self._run(f"EXPLAIN QUERY PLAN {sql}", params)]

    def _search_sql(self, query: ItemSearch, column: str = "content") -> tuple[str, list]:
        keys = self._sort_keys(query.sortby)
        drive_by_space = self._drive_by_space(query, keys)
        by_range = None if drive_by_space else self._range_plan(query, keys)
        indexed = self._sorted_by_index(query.sortby) | \
            (frozenset({by_range}) if by_range else frozenset())
        # A range plan tests boxes as a walk does, from each item's own bounds (no R-tree
        # subquery, which would gather every candidate of a large box).
        where, params = self._item_conditions(query, drive_by_space, indexed)
        if query.token is not None:
            signature = keyset.signature(query.sortby)
            condition, token_params = keyset.after(
                keys, keyset.decode_token(query.token, signature, keys), SQLITE_MARKS)
            where.append(condition)
            params += token_params
        key_sql = ", ".join(k.sql for k in keys)
        key_params = [p for k in keys for p in k.params]
        # Driven by the R-tree, the candidates are sorted: '+' keeps SQLite from walking a
        # time index in order instead (and testing every item it passes).
        plus = "+" if drive_by_space or by_range else ""
        source = f"items INDEXED BY {property_index(by_range)}" if by_range else "items"
        order = ", ".join(f"{plus if k.sql in _COLUMNS else ''}{k.sql} "
                          f"{'DESC' if k.descending else 'ASC'}" for k in keys)
        sql = (f"SELECT {column}, {key_sql} FROM {source} "  # noqa: S608 - fixed fragments only
               f"WHERE {' AND '.join(where) or '1'} ORDER BY {order} LIMIT ?")
        return sql, key_params + params + key_params + [query.limit + 1]

    def _drive_by_space(self, query: ItemSearch, keys: list[Key]) -> bool:
        """Whether the plan reads the R-tree's candidates first (then sorts them) rather than
        walking the sort order and testing each item: when the sort is by a JSON property
        (which reads every candidate anyway), or when a box or geometry narrows the search
        and the R-tree holds at most MAX_SPATIAL_CANDIDATES candidates (counted, that far).
        A box with more candidates walks the time order, tests each walked item's own bounds
        (items_spatial_sql's `walk`) and stops after a page of hits: reading and sorting
        thousands of candidates costs more (200,000 items, a CQL2 JSON box and cloud range,
        about 2,600 candidates), and the more candidates, the sooner a page is full. A box
        with few candidates is read from the R-tree even alone: walking the time order for
        it could pass every item before a page is full."""
        spatial = query.bbox is not None or query.intersects is not None
        in_filter = query.filter is not None and cql.has_spatial_term(query.filter)
        if not (spatial or in_filter):
            return False
        if any(k.nullable for k in keys):
            return True
        return any(self._few_candidates(box) for box in _search_boxes(query))

    def _range_plan(self, query: ItemSearch, keys: list[Key]) -> str | None:
        """The indexed number property whose range in the filter (top-level AND terms) holds
        the fewest items of the searched collections, when reading that range of its index
        (and sorting the hits) is cheaper than walking the sort order; else None.

        Estimated: the range holds `r` of the collections' `n` items (from a sample), a box
        keeps a share `b` of them (its area's share of the collections' extent). A walk
        passes about page * n / (r * b) items before a page is full, each tested for the box
        from the index, and reads the rows of the page * n / r of them in the box to test
        the range: page * n / r * (1 / b + ROW_READ_COST) index entries' worth. The range
        plan reads r entries. So: r * r < page * n * (1 / b + ROW_READ_COST), and r at most
        MAX_RANGE_CANDIDATES. The walk stays for sorts by a JSON property (nullable keys)."""
        if query.filter is None or not query.collections or keys[0].nullable:
            return None
        ranges = cql.number_ranges(query.filter)
        estimated = [(sum(self._estimate_range(c, name, bounds) for c in query.collections),
                      name)
                     for name, bounds in sorted(ranges.items())
                     if name in self.indexed_properties() and name not in cql.COLUMNS]
        if not estimated:
            return None
        in_range, name = min(estimated)
        total = sum(self._estimate_range(c, name, (float("-inf"), float("inf")))
                    for c in query.collections)
        walked = (query.limit + 1) * total * (1 / self._box_share(query) + ROW_READ_COST)
        return name if in_range <= MAX_RANGE_CANDIDATES and in_range * in_range < walked \
            else None

    def _box_share(self, query: ItemSearch) -> float:
        """The smallest share of the searched collections' extent that a box of the search
        covers (1 without a box; at least 1 %: a rough estimate, for plans only)."""
        boxes = _search_boxes(query)
        extent = self._facts().get(("extent", tuple(query.collections)), lambda: self._run(
            f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM collections "  # noqa: S608
            f"WHERE id IN ({_marks(query.collections)})", list(query.collections))[0])
        if not boxes or None in extent or extent[2] <= extent[0] or extent[3] <= extent[1]:
            return 1.0
        west, south, east, north = extent
        area = (east - west) * (north - south)
        shares = [max(0.0, min(east, b[2]) - max(west, b[0])) *
                  max(0.0, min(north, b[3]) - max(south, b[1])) / area for b in boxes]
        return min(1.0, max(0.01, min(shares)))

    def _estimate_range(self, collection: str, name: str,
                        bounds: tuple[float, float]) -> int:
        """About how many items of `collection` hold a value of `name` within `bounds`."""
        every, sample = self._facts().get(("sample", collection, name),
                                          lambda: self._sample_values(collection, name))
        low, high = bounds
        inside = bisect.bisect_right(sample, high) - bisect.bisect_left(sample, low)
        return max(inside, 0) * every

    def _sample_values(self, collection: str, name: str) -> tuple[int, list[float]]:
        """(k, the number values of every k-th item of the collection in order): about
        RANGE_SAMPLE_SIZE of them."""
        count = self.connect().execute("SELECT count(*) FROM items WHERE collection = ?",
                                       (collection,)).fetchone()[0]
        every = max(1, count // RANGE_SAMPLE_SIZE)
        expression = cql.indexed_property_sql(name)
        sql = (f"SELECT {expression} FROM items "  # noqa: S608 - fixed fragments only
               f"INDEXED BY {property_index(name)} WHERE collection = ? AND "
               f"typeof({expression}) IN ('integer', 'real') AND pk % ? = 0")
        return every, [row[0] for row in self.connect().execute(sql, (collection, every))]

    def _few_candidates(self, box: Sequence[float]) -> bool:
        """Whether the R-tree holds at most MAX_SPATIAL_CANDIDATES boxes meeting `box`."""
        west, south, east, north = box
        count = self.connect().execute(
            "SELECT count(*) FROM (SELECT 1 FROM items_rtree WHERE maxx >= ? AND minx <= ? "
            "AND maxy >= ? AND miny <= ? LIMIT ?)",
            (west, east, south, north, MAX_SPATIAL_CANDIDATES + 1)).fetchone()[0]
        return count <= MAX_SPATIAL_CANDIDATES

    def _sorted_by_index(self, sortby: Sequence[SortKey]) -> frozenset[str]:
        """The property of the first sort key when it has an expression index: a filter on it
        may then read that index (a range of it, already in order). Filters on other
        properties keep the plain expression, which no index matches: without per-value
        statistics SQLite would otherwise read the range of any filtered property and sort it,
        even when walking the sort key's index and stopping at the page is far cheaper."""
        if not sortby:
            return frozenset()
        name = sortby[0].field.removeprefix("properties.")
        return frozenset({name}) & self.indexed_properties()

    def _item_conditions(self, query: ItemSearch, drive_by_space: bool = False,
                         indexed: frozenset[str] = frozenset()) -> tuple[list[str], list]:
        where: list[str] = []
        params: list = []

        def add(sql: str, values: Sequence) -> None:
            where.append(sql)
            params.extend(values)

        if query.collections:
            column = "+collection" if drive_by_space else "collection"  # '+': no index
            add(f"{column} IN ({_marks(query.collections)})", query.collections)
        if query.ids:
            add(f"id IN ({_marks(query.ids)})", query.ids)
        walk = not drive_by_space
        if query.bbox is not None:
            add(*cql.items_spatial_sql("intersects", box_geometry(*query.bbox), walk=walk))
        if query.intersects is not None:
            add(*cql.items_spatial_sql("intersects", query.intersects, walk=walk))
        if query.datetime is not None:
            add(*keyset.overlap("dt", "dt_end", query.datetime, SQLITE_MARKS))
            if query.datetime.start is not None:
                # Implied by dt_end >= start (no item spans more than max_span): bounds the
                # time index's range from below too, so a window with few hits is not
                # followed by a walk through everything older.
                add("dt >= ?", [query.datetime.start - self._max_span() - _SPAN_MARGIN])
        if query.q:
            add("pk IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)",
                [fts_query(query.q)])
        if query.filter is not None:
            if walk and cql.has_spatial_term(query.filter):
                for bounds in cql.spatial_bounds(query.filter):
                    add(*cql.walk_prefilter(bounds))
            add(*cql.to_sql(query.filter, self._declared_kinds(), indexed, walk))
        return where, params

    def _max_span(self) -> float:
        return self._facts().get("max_span", lambda: float(self._meta("max_span") or 0))

    def _declared_kinds(self) -> dict[str, str]:
        return dict(self._facts().get("declared", lambda: keyset.declared_kinds(
            self.queryables(None))))

    def _sort_keys(self, sortby: Sequence[SortKey]) -> list[Key]:
        keys: list[Key] = []
        indexed = self.indexed_properties() if sortby else frozenset()
        for sort in sortby or (SortKey("datetime", True),):
            column = cql.COLUMNS.get(sort.field)
            name = sort.field.removeprefix("properties.")
            if column is not None:
                keys.append(Key(column, [], sort.descending, nullable=False))
            elif name in indexed:
                keys.append(Key(cql.indexed_property_sql(name), [], sort.descending, True))
            else:
                path = cql.json_path(sort.field, "sortby")
                keys.append(Key("json_extract(props, ?)", [path], sort.descending, True))
        keys.append(Key("pk", [], keys[0].descending, nullable=False))  # unique tie-break
        return keys

    def _run(self, sql: str, params: Sequence) -> list[tuple]:
        try:
            return self.connect().execute(sql, params).fetchall()
        except sqlite3.OperationalError as err:
            if "fts5" in str(err) or "MATCH" in str(err):
                raise InvalidQuery(f"q: cannot search for that text ({err})",
                                   message_code="q_unsearchable") from None
            raise

    # reading: collection search ------------------------------------------------------------

    def collections(self, query: CollectionSearch) -> Page:
        where: list[str] = []
        params: list = []
        if query.bbox is not None:
            west, south, east, north = query.bbox
            where.append("maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?")
            params += [west, east, south, north]
        if query.datetime is not None:
            sql, values = keyset.overlap("dt", "coalesce(dt_end, 1e9)", query.datetime,
                                         SQLITE_MARKS)
            where.append(sql)
            params += values
        if query.q:
            where.append("pk IN (SELECT rowid FROM collections_fts WHERE collections_fts MATCH ?)")
            params.append(fts_query(query.q))
        if query.themes:
            where.append(f"theme IN ({_marks(query.themes)})")
            params += list(query.themes)
        sql = (f"SELECT content FROM collections "  # noqa: S608 - fixed fragments only
               f"WHERE {' AND '.join(where) or '1'} ORDER BY id LIMIT ? OFFSET ?")
        rows = self._run(sql, [*params, query.limit + 1, query.offset])
        return keyset.offset_page(rows, query.limit, query.offset, json.loads)


class _Facts:
    """Values read from one version of the index file (SqliteBackend._facts). At most
    MAX_FACTS of them: keys include collection ids named by requests (any text), so past
    that, values are read again rather than kept."""

    def __init__(self, version: int):
        self.version = version
        self._values: dict[Any, Any] = {}

    def get(self, key: Any, read: Callable[[], Any]) -> Any:
        if key in self._values:
            return self._values[key]
        value = read()
        if len(self._values) < MAX_FACTS:
            self._values[key] = value
        return value


MAX_FACTS = 256


# -- SQL pieces ----------------------------------------------------------------------------


def _search_boxes(query: ItemSearch) -> list[tuple[float, ...]]:
    """The bounds of every box a search narrows by: the filter's top-level S_INTERSECTS and
    BBOX terms, `bbox`, and `intersects`."""
    boxes: list[tuple[float, ...]] = []
    if query.filter is not None and cql.has_spatial_term(query.filter):
        boxes += cql.spatial_bounds(query.filter)
    if query.bbox is not None:
        boxes.append(tuple(query.bbox))
    if query.intersects is not None and not query.intersects.is_empty:
        boxes.append(tuple(query.intersects.bounds))
    return boxes


def properties_to_index(kinds: dict[str, str], indexed: Sequence[str]) -> list[str]:
    """The number properties of `kinds` that get an expression index next to the `indexed`
    ones: in name order, up to MAX_PROPERTY_INDEXES in all (both backends pick the same)."""
    chosen: list[str] = []
    for name, kind in sorted(kinds.items()):
        if len(indexed) + len(chosen) >= MAX_PROPERTY_INDEXES:
            break
        if kind in _INDEXED_KINDS and name not in cql.COLUMNS and name not in indexed:
            chosen.append(name)
    return chosen


def property_index(name: str) -> str:
    """The name of a number property's expression index (a hash: property names are any
    text the items hold, index names are spliced into SQL)."""
    return "items_by_property_" + hashlib.sha256(name.encode()).hexdigest()[:16]


def _marks(values: Sequence) -> str:
    return ", ".join("?" * len(values))
