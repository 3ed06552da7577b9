"""The STAC index on PostgreSQL: pgstac's tables, searched with the embedded index's semantics.

Chosen when TAZA_DATABASE_URL is set (catalog.stac_index.sync.open_index). Collections and items
are stored by pgstac itself (`pypgstac migrate` installs its schema; `pgstac.create_collection`
loads collections and pypgstac's `Loader`, as `pypgstac load`, bulk-loads items; items are read
back hydrated by `pgstac.content_hydrate`),
so pgstac's own tools and stac-fastapi-pgstac can read the same database.

Searches do not go through pgstac's `search()`: its free text is an English tsvector and its
paging, sort tie-breaks and CQL2 details differ from the embedded index, and the STAC API must
answer alike on both profiles. Nor do they read pgstac's tables: its items are dehydrated
(each read rebuilds the item in PL/pgSQL) and its properties unindexed, so a search joined to
them cost a scan and a hydration per candidate (200,000 items: a property filter 8 req/s
against stac-fastapi-pgstac's 48). A side schema, `taza_stac`, holds what our searches read:

- `items`: per pgstac item, the insertion rank (`pk`, the final sort tie-break, as SQLite's
  rowid), the time span as Julian days (`dt`, `dt_end`, computed as the SQLite index does),
  the words of its searchable text, folded as SQLite's FTS5 `unicode61 remove_diacritics 2`
  folds them, for the multilingual prefix search `q` (see docs/stac-api.md), its geometry
  (GiST), its properties (an expression index per number property, as the SQLite index has)
  and the item as the API writes it (`rendered`, as SQLite's `page`): a search reads this
  table alone, and pgstac's only for a page asked for as objects (the fields extension);
- `collections`: dataset, version, theme, extent, queryables and words per collection;
- `meta`: the release the index reflects, the schema version, the indexed properties.

Every value from a request is bound; identifiers are fixed names quoted through psycopg.sql,
and CQL2 property names travel as bound JSON keys.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import psycopg
import shapely
import shapely.geometry
from psycopg import sql
from psycopg.types.json import Jsonb
from shapely.geometry.base import BaseGeometry

from catalog.core.cql2 import POSTGRESQL, SPATIAL_OPS, Cql2Error, Property, box_geometry
from catalog.core.cql2 import to_sql as translate
from catalog.postgis.database import connect, connection
from catalog.postgis.schema import ensure_schema as ensure_function_schema
from catalog.stac_index import cql, keyset
from catalog.stac_index.backend import CollectionSearch, InvalidQuery, ItemSearch, Page, SortKey
from catalog.stac_index.documents import rendered_item
from catalog.stac_index.keyset import POSTGRESQL_MARKS, Key
from catalog.stac_index.sqlite_backend import (
    CORE_QUERYABLES,
    item_span,
    julian_or_none,
    note_kinds,
    properties_to_index,
    property_index,
    schema_of,
    searchable_text,
)

LOGGER = logging.getLogger(__name__)
SCHEMA = "taza_stac"
SCHEMA_VERSION = "2"  # a different one found: rebuilt (`_upgrade`)
LOAD_CHUNK = 20_000  # items loaded per pgstac Loader call: bounds the memory of a large load
# Julian days as the SQLite index computes them (milliseconds since 1970 + SQLite's offset).
_JULIAN_SQL = ("((floor(extract(epoch FROM {}) * 1000) + 210866760000000) / 86400000.0)"
               "::double precision")
DIALECT = replace(POSTGRESQL, instant="taza_stac.instant({})")
_TOKEN = re.compile(r"[^\W_]+")  # FTS5 unicode61: letters and digits; '_' separates
_LATIN_END = 0x250  # FTS5 strips diacritics of Latin letters only (Cyrillic й, ё, ө stay)
SPATIAL_FUNCTIONS = {name: f"ST_{name.capitalize()}" for name in SPATIAL_OPS.values()}

_DDL = [
    "CREATE SCHEMA IF NOT EXISTS taza_stac",
    "CREATE TABLE IF NOT EXISTS taza_stac.meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS taza_stac.collections ("
    " id text COLLATE \"C\" PRIMARY KEY, dataset_id text NOT NULL, version integer NOT NULL,"
    " theme text, minx float8, miny float8, maxx float8, maxy float8, dt float8, dt_end float8,"
    " queryables jsonb NOT NULL, words text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS taza_stac.items ("
    " collection text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL,"
    " pk bigint NOT NULL UNIQUE, dt float8 NOT NULL, dt_end float8 NOT NULL,"
    " words text NOT NULL, geometry geometry(Geometry, 4326), properties jsonb NOT NULL,"
    " rendered text, PRIMARY KEY (collection, id))",
    # A search is a page (LIMIT): parallel workers, started per query, cost more than they
    # save, and more so under load (200,000 items, bbox: 187 req/s with them, 520 without).
    "ALTER TABLE taza_stac.items SET (parallel_workers = 0)",
    # (dt, pk): the default order (newest first, then pk) walked from the index.
    "CREATE INDEX IF NOT EXISTS items_by_dt ON taza_stac.items (dt, pk)",
    # Place and time in one GiST (btree_gist): a box with a time window is one index scan
    # whose matches are the rows to read, not an AND of a box's and a window's bitmaps (the
    # window's is most of the table); a box alone reads its leading column.
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    "CREATE INDEX IF NOT EXISTS items_by_place_time ON taza_stac.items USING gist "
    "(geometry, dt, dt_end)",
    "CREATE INDEX IF NOT EXISTS items_by_id ON taza_stac.items (id)",
    # `q` is LIKE '% word%' over the words: trigram GIN indexes answer it without a scan.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS items_by_words ON taza_stac.items USING gin "
    "(words gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS collections_by_words ON taza_stac.collections USING gin "
    "(words gin_trgm_ops)",
    # Time as Julian days (float8 passes through): temporal CQL2 compares as SQLite's julianday.
    "CREATE OR REPLACE FUNCTION taza_stac.instant(value float8) RETURNS float8 "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN value",
    # Text that is no time is NULL, as in SQLite. The exception block opens a subtransaction,
    # which PostgreSQL refuses anywhere in parallel mode (the leader too): PARALLEL UNSAFE.
    "CREATE OR REPLACE FUNCTION taza_stac.instant(value text) RETURNS float8 "
    "LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE SET timezone = 'UTC' AS $$ "
    "BEGIN RETURN " + _JULIAN_SQL.format("value::timestamptz") + "; "
    "EXCEPTION WHEN others THEN RETURN NULL; END $$",
    # pgstac's hydration resolves its helpers through the search path: pin it for that call.
    "CREATE OR REPLACE FUNCTION taza_stac.hydrate(item pgstac.items) RETURNS jsonb "
    "LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pgstac, public "
    "RETURN pgstac.content_hydrate(item)",
    # Item properties typed as SQLite's json_extract types them; other JSON types are NULL.
    "CREATE OR REPLACE FUNCTION taza_stac.prop_text(value jsonb) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN "
    "CASE WHEN jsonb_typeof(value) = 'string' THEN value #>> '{}' END",
    "CREATE OR REPLACE FUNCTION taza_stac.prop_number(value jsonb) RETURNS float8 "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN CASE jsonb_typeof(value) "
    "WHEN 'number' THEN (value #>> '{}')::float8 "
    "WHEN 'boolean' THEN (value::boolean)::int END",
]


# -- words -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)  # indexing folds the same few thousand words again
def fold(word: str) -> str:
    """Lower case, Latin letters without diacritics: what FTS5's tokenizer keeps of a word."""
    out = []
    for char in word.lower():
        if ord(char) < _LATIN_END or 0x1E00 <= ord(char) <= 0x1EFF:
            base = unicodedata.normalize("NFD", char)
            char = "".join(c for c in base if not unicodedata.combining(c))
        out.append(char)
    return "".join(out)


def words_of(text: str) -> str:
    """' word1 word2 ... ': every folded word once, each after a space (prefix search)."""
    return " " + " ".join(dict.fromkeys(fold(w) for w in _TOKEN.findall(text))) + " "


def _text_condition(column: str, terms: Sequence[str], param: str = "q") -> tuple[str, list]:
    """Terms OR-ed, words of a term AND-ed, each word a prefix of some indexed word: LIKE
    '% word%' (the words column is ' word1 word2 '), which the pg_trgm index serves. A word is
    letters and digits only (_TOKEN), so it holds no LIKE wildcard to escape."""
    clauses, params = [], []
    for term in terms:
        words = [fold(w) for w in _TOKEN.findall(term)]
        if not words:
            raise InvalidQuery(f"{param}: '{term}' has no words to search for",
                               message_code="q_no_words", params={"term": term[:80]})
        clauses.append("(" + " AND ".join([f"{column} LIKE %s"] * len(words)) + ")")
        params += [f"% {w}%" for w in words]
    return "(" + " OR ".join(clauses) + ")", params


# -- the CQL2 target -------------------------------------------------------------------------

_PROPERTY = "(t.properties -> %s)"
_PROPERTY_SQL = {
    "string": f'(taza_stac.prop_text{_PROPERTY} COLLATE "C")',
    "date-time": f"taza_stac.prop_text{_PROPERTY}",
    "integer": f"taza_stac.prop_number{_PROPERTY}",
    "number": f"taza_stac.prop_number{_PROPERTY}",
    "boolean": f"taza_stac.prop_number{_PROPERTY}",
}
COLUMNS = {"id": "t.id", "collection": "t.collection", "datetime": "t.dt"}
# An item as an object: pgstac's, hydrated (only for the rows of a page: see search_statement).
# Our ids are in the "C" collation, pgstac's in the database's: compared in pgstac's, which
# its index on the items is built in (in "C", pgstac's table is scanned for each item).
_HYDRATED = ("(SELECT taza_stac.hydrate(i) FROM pgstac.items i"
             ' WHERE i.collection = t.collection COLLATE "default"'
             ' AND i.id = t.id COLLATE "default")')
TIME_PROPERTIES = ("datetime", "start_datetime", "end_datetime", "created", "updated")


class PgstacItemsTarget:
    """pgstac's items joined to taza_stac.items as a catalog.core.cql2.FilterTarget."""

    time_field = "datetime"

    def __init__(self, kinds: dict[str, str]):
        self.kinds = kinds

    def resolve(self, name: str, param: str, spatial: bool = False) -> Property:
        if name == "geometry":
            return Property("t.geometry", "geometry", name="geometry")
        if spatial:
            if name not in cql.COLUMN_KINDS:
                raise Cql2Error(f"{param}: unknown property '{name}'", param)
            return Property(COLUMNS[name], cql.COLUMN_KINDS[name], name=name)
        try:
            name = cql.property_name(name, param)
        except InvalidQuery as err:
            raise Cql2Error(str(err), param) from None
        if name in COLUMNS:
            return Property(COLUMNS[name], cql.COLUMN_KINDS[name], name=name)
        kind = self.kinds.get(name, "string")
        return Property(_PROPERTY_SQL.get(kind, _PROPERTY_SQL["string"]), kind, (name,),
                        name=name)

    def spatial_sql(self, op: str, geometry: BaseGeometry,
                    null_safe: bool = False) -> tuple[str, list]:
        return _spatial(op, geometry)

    def time_span_sql(self, name: str) -> tuple[str, str]:
        if name not in TIME_PROPERTIES:
            raise Cql2Error(f"filter: temporal predicates apply to {', '.join(TIME_PROPERTIES)}")
        if name == "datetime":
            return "t.dt", "t.dt_end"
        # Span SQL takes no parameters: the (fixed, listed) name goes in as a quoted literal.
        literal = sql.Literal(name).as_string(None)
        expression = f"taza_stac.instant(taza_stac.prop_text(t.properties -> {literal}))"
        return expression, expression


def _spatial(op: str, geometry: BaseGeometry) -> tuple[str, list]:
    if not shapely.is_valid(geometry):  # as the PostGIS feature store: answer as shapely does
        geometry = shapely.make_valid(geometry)
    wkb = shapely.to_wkb(geometry, flavor="iso")
    return f"{SPATIAL_FUNCTIONS[op]}(t.geometry, ST_GeomFromWKB(%s, 4326))", [wkb]


def filter_sql(node: Any, declared: dict[str, str]) -> tuple[str, list]:
    try:
        kinds = {**cql.literal_kinds(node), **declared, **cql.COLUMN_KINDS}
        return translate(node, PgstacItemsTarget(kinds), "filter", dialect=DIALECT)
    except Cql2Error as err:
        raise InvalidQuery.of(err) from None
    except RecursionError:
        raise InvalidQuery("filter: expression is nested too deeply") from None


# -- the backend -----------------------------------------------------------------------------


_MIGRATED: set[str] = set()  # database URLs whose schemas this process has checked
_MIGRATE_LOCK = threading.Lock()


class PgstacBackend:
    """`StacBackend` over pgstac in the database at `url`. The schemas are installed or
    upgraded (`migrate`) on this process's first use, not on construction: a server starts
    while the database is down and serves once it is up."""

    def __init__(self, url: str):
        self.url = url

    def _ready(self) -> None:
        if self.url in _MIGRATED:
            return
        with _MIGRATE_LOCK:
            if self.url not in _MIGRATED:
                self.migrate(self.url)
                _MIGRATED.add(self.url)

    @staticmethod
    def migrate(url: str) -> str:
        """Install or upgrade pgstac's schema (pypgstac) and ours; returns pgstac's version."""
        from pypgstac.db import PgstacDB
        from pypgstac.migrate import Migrate

        # Nodes and workers starting at once would each run pgstac's migration, whose
        # CREATE ROLE collides; one session-level lock held around it makes them take turns.
        with connect(url) as lock, PgstacDB(dsn=url) as db:
            lock.execute("SELECT pg_advisory_lock(hashtext('taza pgstac migration'))")
            version = Migrate(db).run_migration()
        with connect(url) as conn, conn.transaction():
            ensure_function_schema(conn)
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('taza_stac schema'))")
            _upgrade(conn)
            for statement in _DDL:
                conn.execute(statement)
            conn.execute("INSERT INTO taza_stac.meta VALUES ('schema_version', %s) "
                         "ON CONFLICT (key) DO NOTHING", (SCHEMA_VERSION,))
        return version

    def _rows(self, query: str, params: Sequence = ()) -> list[tuple]:
        self._ready()
        with connection(self.url) as conn:
            return conn.execute(query, params).fetchall()

    # state ---------------------------------------------------------------------------------

    def indexed_release(self) -> int | None:
        rows = self._rows("SELECT value FROM taza_stac.meta WHERE key = 'release'")
        return int(rows[0][0]) if rows else None

    def indexed_versions(self) -> dict[str, int]:
        return dict(self._rows("SELECT dataset_id, version FROM taza_stac.collections"))

    # writing -------------------------------------------------------------------------------

    def apply(self, release: int, upserts: Sequence[tuple[str, int, dict, Iterable[dict]]],
              removals: Sequence[str], expected_release: int | None = -1) -> bool:
        """One transaction; a row lock on the release entry serialises concurrent writers."""
        started = time.perf_counter()
        self._ready()
        with connect(self.url) as conn, conn.transaction():
            conn.execute("INSERT INTO taza_stac.meta VALUES ('lock', '') "
                         "ON CONFLICT (key) DO NOTHING")
            conn.execute("SELECT value FROM taza_stac.meta WHERE key = 'lock' FOR UPDATE")
            row = conn.execute("SELECT value FROM taza_stac.meta WHERE key = 'release'")
            found = row.fetchone()
            current = int(found[0]) if found else None
            if expected_release != -1 and current != expected_release:
                return False
            counts = {}
            for dataset_id in [*removals, *(u[0] for u in upserts)]:
                self._delete_dataset(conn, dataset_id)
            for dataset_id, version, collection, items in upserts:
                counts[dataset_id] = self._insert_dataset(conn, dataset_id, version,
                                                          collection, items)
            # Rows loaded wait in the GIN indexes' pending lists, which the planner costs as
            # a scan of them: merge them now rather than at the next autovacuum.
            for index in ("items_by_words", "collections_by_words"):
                conn.execute("SELECT gin_clean_pending_list(%s::regclass)",
                             (f"{SCHEMA}.{index}",))
            for key, value in (("release", str(release)), ("last_update", json.dumps({
                    "release": release, "indexed": counts, "removed": list(removals),
                    "seconds": round(time.perf_counter() - started, 3)}))):
                conn.execute("INSERT INTO taza_stac.meta VALUES (%s, %s) ON CONFLICT (key) "
                             "DO UPDATE SET value = EXCLUDED.value", (key, value))
            if upserts or removals:  # the planner's row counts and value spreads, at once
                conn.execute("ANALYZE taza_stac.items, taza_stac.collections")
        if upserts:
            # Out of the transaction (VACUUM runs in none): the new rows' hint bits and the
            # visibility map set now, not by the first searches that read them (200,000
            # items: a box with a time window read 3 times as many pages before).
            with connect(self.url) as conn:
                conn.execute("VACUUM taza_stac.items")
        return True

    def scrub(self) -> None:
        """Deleted rows stay in PostgreSQL's pages until vacuumed: vacuum both schemas' tables."""
        self._ready()
        with connect(self.url) as conn:
            for table in ("taza_stac.items", "taza_stac.collections", "pgstac.items",
                          "pgstac.collections"):
                schema, name = table.split(".")
                conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(schema, name)))

    @staticmethod
    def _delete_dataset(conn: psycopg.Connection, dataset_id: str) -> None:
        rows = conn.execute("DELETE FROM taza_stac.collections WHERE dataset_id = %s "
                            "RETURNING id", (dataset_id,)).fetchall()
        for (collection_id,) in rows:
            conn.execute("DELETE FROM taza_stac.items WHERE collection = %s", (collection_id,))
            conn.execute("SELECT pgstac.delete_collection(%s)", (collection_id,))

    @staticmethod
    def _insert_dataset(conn: psycopg.Connection, dataset_id: str, version: int,
                        collection: dict, items: Iterable[dict]) -> int:
        conn.execute("SELECT pgstac.create_collection(%s)", (Jsonb(collection),))
        collection_words = words_of(searchable_text(collection))
        kinds: dict[str, str] = {}
        next_pk = conn.execute("SELECT coalesce(max(pk), 0) + 1 FROM taza_stac.items"
                               ).fetchone()[0]
        count = 0
        for chunk in itertools.batched(items, LOAD_CHUNK):
            geometries, centres = _places(chunk)
            rows = [_side_row(collection["id"], pk, item, collection_words, kinds, geometry)
                    for pk, item, geometry in zip(itertools.count(next_pk + count), chunk,
                                                  geometries)]
            _load_items(conn, chunk)
            with conn.cursor().copy("COPY taza_stac.items (collection, id, pk, dt, dt_end, "
                                    "words, geometry, properties, rendered) FROM STDIN") as copy:
                for position in z_order(centres):
                    copy.write_row(rows[position])
            count += len(chunk)
        extent = collection["extent"]
        west, south, east, north = extent["spatial"]["bbox"][0][:4]
        span_start, span_end = extent["temporal"]["interval"][0]
        queryables = {name: schema_of(kind) for name, kind in sorted(kinds.items())}
        conn.execute(
            "INSERT INTO taza_stac.collections VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s)", (collection["id"], dataset_id, version, collection.get("taza:theme"),
                        west, south, east, north, julian_or_none(span_start),
                        julian_or_none(span_end), Jsonb(queryables), collection_words))
        _index_properties(conn, kinds)
        return count

    # reading: single objects ---------------------------------------------------------------

    def item(self, collection_id: str, item_id: str) -> dict | None:
        if "\x00" in collection_id + item_id:  # no id holds one (PostgreSQL cannot bind it)
            return None
        rows = self._rows("SELECT taza_stac.hydrate(i) FROM pgstac.items i "
                          "WHERE i.collection = %s AND i.id = %s", (collection_id, item_id))
        return _restored(rows[0][0]) if rows else None

    def collection(self, collection_id: str) -> dict | None:
        if "\x00" in collection_id:  # no id holds one (PostgreSQL cannot bind it)
            return None
        rows = self._rows("SELECT content FROM pgstac.collections WHERE id = %s",
                          (collection_id,))
        return rows[0][0] if rows else None

    def queryables(self, collection_id: str | None) -> dict[str, dict]:
        query, params = "SELECT queryables FROM taza_stac.collections ORDER BY id", ()
        if collection_id is not None:
            query = "SELECT queryables FROM taza_stac.collections WHERE id = %s"
            params = (collection_id,)
        rows = self._rows(query, params)
        return keyset.merged_queryables(CORE_QUERYABLES, (r[0] for r in rows))

    # reading: item search ------------------------------------------------------------------

    def search(self, query: ItemSearch, rendered: bool = False) -> Page:
        """A page of items; with `rendered`, as Page.rendered (the items as the API writes
        them) when every item of the page has one, else as Page.features."""
        if rendered:
            statement, params, signature = self.search_statement(query, rendered=True)
            rows = self._run(statement, params)
            if all(row[0] is not None for row in rows):
                page = keyset.keyset_page(rows, query.limit, signature, lambda text: text)
                return Page([], page.next_token, rendered=page.features)
        statement, params, signature = self.search_statement(query)
        rows = self._run(statement, params)
        return keyset.keyset_page(rows, query.limit, signature, _restored)

    def search_statement(self, query: ItemSearch,
                         rendered: bool = False) -> tuple[str, list, str]:
        """The SQL of one page of `query`, its bound values and the sort's token signature
        (apart from `search` so that its plan can be read with EXPLAIN). It reads
        taza_stac.items alone; an item asked for as an object is hydrated from pgstac's
        table, after the sort and limit (PostgreSQL evaluates a costly select-list
        expression above them)."""
        declared = keyset.declared_kinds(self.queryables(None))
        keys = _sort_keys(query.sortby, declared)
        where, params = self._item_conditions(query, declared)
        signature = keyset.signature(query.sortby)
        if query.token is not None:
            condition, token_params = keyset.after(
                keys, keyset.decode_token(query.token, signature, keys), POSTGRESQL_MARKS)
            where.append(condition)
            params += token_params
        key_sql = ", ".join(k.sql for k in keys)
        key_params = [p for k in keys for p in k.params]
        order = ", ".join(f"{k.sql} {_direction(k)}" for k in keys)
        payload = "t.rendered" if rendered else _HYDRATED
        # Fixed fragments of this module only; every value is a bound parameter.
        statement = ("SELECT " + payload + ", " + key_sql +  # noqa: S608
                     " FROM taza_stac.items t"
                     " WHERE " + (" AND ".join(where) or "TRUE") +
                     " ORDER BY " + order + " LIMIT %s")
        return statement, key_params + params + key_params + [query.limit + 1], signature

    def _item_conditions(self, query: ItemSearch, declared: dict[str, str]
                         ) -> tuple[list[str], list]:
        where: list[str] = []
        params: list = []

        def add(condition: str, values: Sequence) -> None:
            where.append(condition)
            params.extend(values)

        if query.collections:
            add("t.collection = ANY(%s)", [list(query.collections)])
        if query.ids:
            add("t.id = ANY(%s)", [list(query.ids)])
        if query.bbox is not None:
            add(*_spatial("intersects", box_geometry(*query.bbox)))
        if query.intersects is not None:
            add(*_spatial("intersects", query.intersects))
        if query.datetime is not None:
            add(*keyset.overlap("t.dt", "t.dt_end", query.datetime, POSTGRESQL_MARKS))
        if query.q:
            add(*_text_condition("t.words", query.q))
        if query.filter is not None:
            add(*filter_sql(query.filter, declared))
        return where, params

    def _run(self, statement: str, params: Sequence) -> list[tuple]:
        try:
            return self._rows(statement, params)
        except psycopg.errors.DataException as err:  # e.g. a number out of range
            raise InvalidQuery(f"filter: cannot be applied ({err.diag.message_primary})") from None

    # reading: collection search ------------------------------------------------------------

    def collections(self, query: CollectionSearch) -> Page:
        where: list[str] = []
        params: list = []
        if query.bbox is not None:
            west, south, east, north = query.bbox
            where.append("c.maxx >= %s AND c.minx <= %s AND c.maxy >= %s AND c.miny <= %s")
            params += [west, east, south, north]
        if query.datetime is not None:
            condition, values = keyset.overlap("c.dt", "coalesce(c.dt_end, 1e9)", query.datetime,
                                               POSTGRESQL_MARKS)
            where.append(condition)
            params += values
        if query.q:
            condition, values = _text_condition("c.words", query.q)
            where.append(condition)
            params += values
        if query.themes:
            where.append("c.theme = ANY(%s)")
            params.append(list(query.themes))
        statement = ("SELECT p.content FROM taza_stac.collections c "  # noqa: S608 - fixed
                     "JOIN pgstac.collections p"
                     " ON p.id = c.id WHERE " + (" AND ".join(where) or "TRUE") +
                     " ORDER BY c.id LIMIT %s OFFSET %s")
        rows = self._rows(statement, [*params, query.limit + 1, query.offset])
        return keyset.offset_page(rows, query.limit, query.offset, dict)


def _load_items(conn: psycopg.Connection, items: Iterable[dict]) -> None:
    """Bulk-load items as `pypgstac load` does (dehydrated in Python, COPY per partition),
    inside the caller's open transaction: pgstac's Loader runs on `conn` (its own
    transactions become savepoints) and its unqualified names resolve through a local
    search path. Its pool is never used for a connection and is closed at once."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    conn.execute("SET LOCAL search_path TO pgstac, public")
    database = PgstacDB(dsn="", connection=conn, commit_on_exit=False)
    try:
        Loader(database).load_items(items, insert_mode=Methods.insert)
    finally:
        database.close()
    conn.execute("SET LOCAL search_path TO DEFAULT")


def _side_row(collection_id: str, pk: int, item: dict, collection_words: str,
              kinds: dict[str, str], geometry: str | None) -> tuple:
    """The taza_stac.items row of one item (its kinds noted in `kinds` on the way), with its
    geometry as `_places` wrote it."""
    properties = item["properties"]
    start, end = item_span(properties)
    note_kinds(properties, kinds)
    return (collection_id, item["id"], pk, start, end,
            words_of(searchable_text(item)) + collection_words, geometry,
            Jsonb(properties), rendered_item(item))


def _places(items: Sequence[dict]) -> tuple[list[str | None], np.ndarray]:
    """Each item's geometry as hex EWKB in SRID 4326 (None without one) and the centre of its
    box (NaN without a place or for an empty one), for a chunk at once: shapely writes and
    measures an array of geometries in one call, a quarter of the time one by one."""
    shapes = np.empty(len(items), dtype=object)
    shapes[:] = [shapely.geometry.shape(item["geometry"]) if item.get("geometry") else None
                 for item in items]
    geometries = shapely.to_wkb(shapely.set_srid(shapes, 4326), hex=True, include_srid=True)
    west, south, east, north = shapely.bounds(shapes).T
    return list(geometries), np.column_stack(((west + east) / 2, (south + north) / 2))


def z_order(centres: np.ndarray | Sequence[tuple[float, float]]) -> np.ndarray:
    """Positions that list the points (an n x 2 array of longitude and latitude, or a sequence
    of pairs) in Z-order (Morton) on a 65,536 x 65,536 grid; points without a place (NaN)
    first. Items are written to the
    table in this order, so the items of a small area share pages: a search reads the pages
    of its matches, and items written in arrival order had one match per page (200,000
    items: 494 matches of a box with a cloud range on 493 pages)."""
    points = np.nan_to_num(np.asarray(centres, dtype=np.float64).reshape(-1, 2), nan=-1000.0)
    cells = ((points + (180.0, 90.0)) / (360.0, 180.0) * 65535).clip(0, 65535)
    x, y = (cells[:, 0].astype(np.uint64), cells[:, 1].astype(np.uint64))
    return np.argsort(_spread_bits(x) | (_spread_bits(y) << np.uint64(1)), kind="stable")


def _spread_bits(values: np.ndarray) -> np.ndarray:
    """The 16 bits of each value moved to the even bit positions (0, 2, 4, ...)."""
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        values = (values | (values << np.uint64(shift))) & np.uint64(mask)
    return values


def _index_properties(conn: psycopg.Connection, kinds: dict[str, str]) -> None:
    """An expression index for each new number property, the same ones as the SQLite index
    (`properties_to_index`): a range or sort on it reads the index instead of every item's
    JSON. The name is a literal in the index's expression and a bound value in the query:
    PostgreSQL plans each query for its bound values, so the two match."""
    found = conn.execute("SELECT value FROM taza_stac.meta WHERE key = 'indexed_properties'"
                         ).fetchone()
    indexed = list(json.loads(found[0])) if found else []
    for name in properties_to_index(kinds, indexed):
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON taza_stac.items "
                             "((taza_stac.prop_number(properties -> {})) NULLS FIRST, pk)")
                     .format(sql.Identifier(property_index(name)), sql.Literal(name)))
        indexed.append(name)
    conn.execute("INSERT INTO taza_stac.meta VALUES ('indexed_properties', %s) "
                 "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                 (json.dumps(indexed),))


def _upgrade(conn: psycopg.Connection) -> None:
    """An index of an older schema is dropped with the pgstac collections it indexed: the
    next update (sync.ensure_current) rebuilds both from the releases, the source of truth."""
    if conn.execute("SELECT to_regclass('taza_stac.meta')").fetchone()[0] is None:
        return
    found = conn.execute("SELECT value FROM taza_stac.meta WHERE key = 'schema_version'"
                         ).fetchone()
    if found is None or found[0] == SCHEMA_VERSION:
        return
    LOGGER.warning("the STAC index's schema %s is rebuilt as %s", found[0], SCHEMA_VERSION)
    conn.execute("SELECT pgstac.delete_collection(id) FROM taza_stac.collections")
    conn.execute("DROP SCHEMA taza_stac CASCADE")


# -- SQL pieces ------------------------------------------------------------------------------


def _direction(key: Key) -> str:
    """NULL sorts as the smallest value, as in SQLite. A key that is never NULL takes
    PostgreSQL's default NULLS place, so that an index in either direction serves it (the
    planner does not know that a NOT NULL column's NULLS place is moot)."""
    if not key.nullable:
        return "DESC" if key.descending else "ASC"
    return "DESC NULLS LAST" if key.descending else "ASC NULLS FIRST"


def _restored(item: dict) -> dict:
    """pgstac's hydration drops null members; STAC requires `datetime` (null with a range)."""
    item["properties"].setdefault("datetime", None)
    return item


def _sort_keys(sortby: Sequence[SortKey], declared: dict[str, str]) -> list[Key]:
    keys: list[Key] = []
    for sort in sortby or (SortKey("datetime", True),):
        column = COLUMNS.get(sort.field)
        if column is not None:
            keys.append(Key(column, [], sort.descending, nullable=False))
        else:
            name = cql.property_name(sort.field, "sortby")
            kind = declared.get(name, "string")
            keys.append(Key(_PROPERTY_SQL.get(kind, _PROPERTY_SQL["string"]), [name],
                             sort.descending, nullable=True))
    keys.append(Key("t.pk", [], keys[0].descending, nullable=False))
    return keys
