"""A published layer's attribute columns in memory (numpy), read once per table version from
whichever engine holds it (a `ColumnReader`: the GeoPackage's SQLite in catalog/gpkg/columns.py,
the PostGIS table in catalog/postgis/columns.py): counts, filters and sorted pages of plain
attribute queries without scanning the table.

Why: numberMatched of a filter such as `land_use = 'pasture' AND area_m2 > 12345` with a new
threshold per request makes an engine visit every match. SQLite here has no STAT4 and no
counted B-trees (1M parcels: about 0.5 s, half of tipg's rate on PostGIS); PostgreSQL counts
10 million parcels' matches with a parallel scan of about a second, for us as for tipg. A
published version never changes, so its columns can be read once into arrays (about 13 bytes a
row per number column, 4 per text column) and a filter becomes a few vectorised comparisons
(1M rows: a few milliseconds), the page a selection of keys.

What it answers (anything else goes to SQL, whose answers these equal: tests compare both):

- filters made of AND and OR over comparisons (=, <>, <, <=, >, >=), [NOT] BETWEEN and
  [NOT] IN of one number column against number literals, and the same of one text column with
  few distinct values against text literals (ranks in code-point order). Without a NOT over
  them, SQL's three-valued logic keeps a row exactly when the condition is TRUE, and a NULL
  makes every comparison not TRUE: a NULL compares False here as it does there; NOT IN and
  NOT BETWEEN are TRUE only where the property is not NULL, as in SQL;
- sortby on one number or text column: NULLs first ascending, last descending, ties by the
  primary key, as in SQL (text in code-point order: SQLite's BINARY collation on UTF-8 and
  PostgreSQL's "C", which the PostGIS tables use);
- bbox and S_INTERSECTS, where the reader has each row's box (the GeoPackage's R-tree).

Columns whose stored values do not all have the declared type (SQLite is dynamically typed)
are left to SQL.

Reading a column costs about a second per 200,000 rows out of SQLite (a Python object per
value) and a second or two per 10 million out of PostgreSQL (COPY text parsed by numpy), in
every worker and again after every restart. Given a folder (the node's cache, `column_cache`),
each array is written there once per table version as a .npy file and memory-mapped by every
worker and later process: loading is then a file open, and the workers share the pages instead
of each holding a copy (`ColumnFiles`).

Without the arrays' files (a new node, a version just published) the first queries would read
every row's key and box and the columns they name (10 million parcels: about 40 s) while
their requests wait. So the stores query inside `engine_reads_deferred()` (unless
TAZA_COLUMN_LOADS=request): there an array that is not in memory or in a file is not read,
NotLoaded is raised, SQL answers, and the store has the same query's arrays read by a thread
of their own (`load_in_background`), one load at a time per process. Queries after it are
answered from memory.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import shapely
from pygeofilter import ast
from shapely.geometry.base import BaseGeometry

from catalog.core.cql2 import (
    NUMERIC_KINDS,
    Cql2Error,
    box_geometry,
    coerce_value,
    geometry_literal,
    is_rectangle,
)

LOGGER = logging.getLogger(__name__)

# Layers smaller than this are answered by SQL quickly enough; larger ones justify the memory.
MIN_ROWS = 50_000
MAX_CATEGORIES = 4096  # text columns with more distinct values are sortable, not filterable
CACHED_LAYERS = 4  # per process

_CACHE: OrderedDict[Hashable, Columns] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_LOADING: dict[Hashable, threading.Lock] = {}
_DEFERRED = threading.local()  # .on: this thread's queries leave engine reads to a loader
_LOADERS: dict[Hashable, threading.Thread] = {}  # running background loads, by layer
_LOAD_SLOT = threading.Lock()  # one background load reads an engine at a time per process

NO_ROWS = np.zeros(0, dtype=np.int64)
_OPS = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
        ast.GreaterThan: ">", ast.GreaterEqual: ">="}


class Unsupported(Exception):
    """The query needs SQL (internal: never leaves this module's callers)."""


class NotLoaded(Unsupported):
    """An array the query needs is neither in memory nor in a file, and engine reads are
    deferred in this thread: SQL answers, and the store loads it in the background."""


@contextlib.contextmanager
def engine_reads_deferred(deferred: bool = True) -> Iterator[None]:
    """Within: reading an array from the engine (or waiting for another thread that does)
    raises NotLoaded instead (arrays in memory or in files are used as always)."""
    before = getattr(_DEFERRED, "on", False)
    _DEFERRED.on = deferred
    try:
        yield
    finally:
        _DEFERRED.on = before


def _deferred() -> bool:
    return getattr(_DEFERRED, "on", False)


def _from_engine(read: Callable[..., Any]) -> Callable[..., Any]:
    """`read` (a ColumnReader method), refused with NotLoaded where engine reads are
    deferred."""
    def guarded(*args: Any) -> Any:
        if _deferred():
            raise NotLoaded(getattr(read, "__name__", "read"))
        return read(*args)
    return guarded


@contextlib.contextmanager
def _held(lock: threading.Lock) -> Iterator[None]:
    """`lock`, or NotLoaded where engine reads are deferred and another thread holds it (it
    is loading an array)."""
    if not lock.acquire(blocking=not _deferred()):
        raise NotLoaded("loading")
    try:
        yield
    finally:
        lock.release()


def load_in_background(layer: Hashable, load: Callable[[], object]) -> bool:
    """Run `load` (a query over the layer's Columns, engine reads allowed) in a thread of its
    own, unless one for `layer` runs already; whether it was started. Its errors are logged:
    the request that asked has had its answer from SQL."""
    with _CACHE_LOCK:
        if layer in _LOADERS:
            return False
        thread = threading.Thread(target=_run_background_load, args=(layer, load), daemon=True,
                                  name="column arrays")
        _LOADERS[layer] = thread
    thread.start()
    return True


def _run_background_load(layer: Hashable, load: Callable[[], object]) -> None:
    try:
        with _LOAD_SLOT, engine_reads_deferred(False):
            load()
    except Unsupported:
        pass  # what SQL answers stays with SQL
    except Exception:  # noqa: BLE001 - a thread's end: logged, the requests go on by SQL
        LOGGER.exception("reading the column arrays of %r in the background failed", layer)
    finally:
        with _CACHE_LOCK:
            _LOADERS.pop(layer, None)


def background_loads_done(timeout: float) -> bool:
    """Wait up to `timeout` seconds for the running background loads; whether none is left
    (for tests)."""
    deadline = time.monotonic() + timeout
    while True:
        with _CACHE_LOCK:
            running = list(_LOADERS.values())
        if not running:
            return True
        running[0].join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            with _CACHE_LOCK:
                return not _LOADERS


@dataclass
class Column:
    kind: str
    rank: np.ndarray | None  # dense rank of each row's value in sort order, NULL = 0 (int32);
    # None for text of many distinct values until a sort asks for it (then in SQLite's order)
    values: np.ndarray | None = None  # numbers as float64 (NULL: nan)
    categories: dict[str, int] | None = None  # text -> rank in rank order, for text filters


def box_share(extent: Sequence[float], box: Sequence[float]) -> float:
    """The share of `extent`'s area that `box` covers (1 for an extent without area)."""
    west, south, east, north = extent
    left, bottom, right, top = box
    width = max(0.0, min(right, east) - max(left, west))
    height = max(0.0, min(top, north) - max(bottom, south))
    area = (east - west) * (north - south)
    return width * height / area if area > 0 else 1.0


class Envelopes:
    """Each row's R-tree box (float64; nan where the row has no entry: a NULL or empty
    geometry), and the rows of narrow boxes sorted by minx, so a query box looks only at the
    rows whose minx lies between its left edge less the widest narrow box and its right edge
    (1M rows: about 1 ms instead of 30 ms for a full comparison); the few wide boxes are
    compared in full."""

    def __init__(self, bounds: np.ndarray, files: ColumnFiles | None = None):
        minx, miny, maxx, maxy = bounds
        self.minx, self.miny, self.maxx, self.maxy = minx, miny, maxx, maxy
        width = maxx - minx
        present = ~np.isnan(width)
        limit = float(np.percentile(width[present], 99)) if present.any() else 0.0
        # Rounding of minx + width may exceed maxx by a few units in the last place.
        largest = float(np.nanmax(np.abs(np.concatenate([minx, maxx])))) if present.any() \
            else 0.0
        self.reach = limit + 8 * float(np.spacing(largest))
        with np.errstate(invalid="ignore"):
            narrow = present & (width <= limit)
        self.wide = np.flatnonzero(present & ~narrow)
        self.boxed = int(present.sum())
        self.extent = (float(np.nanmin(minx)), float(np.nanmin(miny)), float(np.nanmax(maxx)),
                       float(np.nanmax(maxy))) if self.boxed else None
        positions = np.flatnonzero(narrow)
        self.by_minx = (files or ColumnFiles(None)).array(
            "narrow boxes by minx", positions.shape,
            lambda: positions[np.argsort(minx[positions], kind="stable")])
        self.sorted_minx = minx[self.by_minx]

    def expected(self, left: float, bottom: float, right: float, top: float) -> float:
        """How many rows a box would hold if they were spread evenly over their extent: its
        share of the extent's area times the rows with a box."""
        if self.extent is None:
            return 0.0
        return self.boxed * box_share(self.extent, (left, bottom, right, top))

    def overlapping(self, left: float, bottom: float, right: float, top: float) -> np.ndarray:
        """Positions (ascending) of the rows whose box meets the query box."""
        start = np.searchsorted(self.sorted_minx, left - self.reach, side="left")
        stop = np.searchsorted(self.sorted_minx, right, side="right")
        near = np.concatenate([self.by_minx[start:stop], self.wide])
        keep = (self.maxx[near] >= left) & (self.minx[near] <= right) & \
            (self.maxy[near] >= bottom) & (self.miny[near] <= top)
        return np.sort(near[keep])


NOT_STORED = object()  # ColumnFiles.column: no file yet (None means "SQL answers for it")


class ColumnFiles:
    """The arrays of one table version as .npy files in a folder of the node's cache: written
    once (a temporary file renamed into place, so a reader never sees half a file), then
    memory-mapped read-only by every worker and later process. A published version never
    changes and the folder's name is derived from the file's identity (inode, mtime, size),
    so a file is never stale. Without a folder, or when one cannot be written (logged), arrays
    stay in this process's memory only."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def array(self, name: str, shape: tuple | None,
              compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array `name` from its file, else computed (and kept in a file); `shape`: what
        it must measure (a file that does not is computed again)."""
        path = self._path(name, ".npy")
        found = _load(path, shape)
        if found is not None:
            return found
        value = compute()
        if path is None or not _save(path, lambda out: np.save(out, value, allow_pickle=False)):
            return value
        mapped = _load(path, value.shape)  # shared with the other workers, not a copy
        return value if mapped is None else mapped

    def column(self, name: str, kind: str, rows: int) -> Column | None | object:
        """The stored column `name`; None when SQL answers for it; NOT_STORED without files."""
        described = self._path(name, ".json")
        if described is None or not described.exists():
            return NOT_STORED
        try:
            state = json.loads(described.read_text())
        except (OSError, ValueError):
            return NOT_STORED
        if not isinstance(state, dict) or state.get("kind") != kind or \
                state.get("form") not in ("sql", "sortable", "categories", "numbers"):
            return NOT_STORED
        if state["form"] == "sql":
            return None
        if state["form"] == "sortable":
            return Column(kind, None)
        rank = _load(self._path(name, ".rank.npy"), (rows,))
        values = _load(self._path(name, ".values.npy"), (rows,)) \
            if state["form"] == "numbers" else None
        if rank is None or (state["form"] == "numbers" and values is None):
            return NOT_STORED
        categories = state.get("categories")
        return Column(kind, rank, values=values, categories=None if categories is None else
                      {value: number for number, value in enumerate(categories, start=1)})

    def save_column(self, name: str, kind: str, column: Column | None) -> None:
        """Keep a column read from SQLite: its arrays first, then the description that
        says they are complete."""
        described = self._path(name, ".json")
        if described is None:
            return
        if column is None:
            state: dict[str, Any] = {"form": "sql"}
        elif column.rank is None:
            state = {"form": "sortable"}
        else:
            state = {"form": "categories" if column.values is None else "numbers"}
            if column.categories is not None:
                state["categories"] = list(column.categories)  # in rank order
            for suffix, array in ((".rank.npy", column.rank), (".values.npy", column.values)):
                if array is not None and not _save(self._path(name, suffix), lambda out, a=array:
                                                   np.save(out, a, allow_pickle=False)):
                    return
        state["kind"] = kind
        _save(described, lambda out: out.write(json.dumps(state).encode()))

    def _path(self, name: str, suffix: str) -> Path | None:
        """A file name for any column name (names come from uploaded files)."""
        if self.folder is None:
            return None
        return self.folder / (hashlib.sha256(name.encode()).hexdigest()[:32] + suffix)


def _load(path: Path | None, shape: tuple | None) -> np.ndarray | None:
    if path is None:
        return None
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:  # cut short by a full disk: computed again
        LOGGER.warning("%s: unreadable, computed again: %s", path, err)
        return None
    if shape is not None and array.shape != shape:
        return None
    # A plain array over the same mapped pages: np.memmap's own indexing costs about 0.2 ms
    # a call (measured: a quarter of an S_INTERSECTS request).
    return array.view(np.ndarray)


def _save(path: Path, write: Callable[[Any], None]) -> bool:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as out:
            write(out)
        os.replace(temporary, path)
        return True
    except OSError as err:
        LOGGER.warning("%s: not kept (%s); held in memory only", path, err)
        with contextlib.suppress(OSError):  # never made, or its folder cannot be
            temporary.unlink()
        return False


class ColumnReader(Protocol):
    """How Columns reads one table version from its engine. Every array lines up with the
    rows as `keys()` returns them (any fixed order; Columns sorts by key)."""

    kinds: dict[str, str]  # the queryable columns and their kinds

    def keys(self) -> np.ndarray:
        """Every row's primary key (int64)."""

    def column(self, name: str, kind: str) -> Column | None:
        """The column `name` of kind `kind` in keys() order (number_column, text_column), or
        None when SQL must answer for it."""

    def is_geometry(self, name: str) -> bool:
        """Whether a CQL2 property names the geometry."""

    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The rows' keys and their boxes (4 x rows float64: minx, miny, maxx, maxy), rows
        without one left out; None when the reader has no boxes (spatial filters then go to
        SQL)."""

    def ranks_in_sql_order(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows' keys and the dense ranks (NULL = 0) of a text column's values in the
        engine's ORDER BY."""

    def geometries(self, keys: list[int]) -> np.ndarray:
        """The geometries of these rows (shapely; None where unreadable, as SQL skips)."""


class Columns:
    """The attribute columns of one table version, rows in primary-key order, each column
    read through its reader the first time a query names it."""

    def __init__(self, reader: ColumnReader, files: ColumnFiles | None = None):
        self._reader = reader
        self._kinds = reader.kinds
        self._files = files or ColumnFiles(None)
        keys = self._files.array("keys", None, _from_engine(reader.keys))
        rows = (len(keys),)
        self._order = self._files.array("order", rows,
                                        lambda: np.argsort(keys, kind="stable"))
        self.pks = self._files.array("pks", rows, lambda: keys[self._order])
        self._columns: dict[str, Column | None] = {}
        self._envelopes: Envelopes | None = None
        self._lock = threading.Lock()

    def column(self, name: str) -> Column | None:
        """The column (None when SQL must answer for it)."""
        if name not in self._columns:
            with _held(self._lock):
                if name not in self._columns:
                    self._columns[name] = self._load_column(name)
        return self._columns[name]

    def _load_column(self, name: str) -> Column | None:
        kind = self._kinds.get(name)
        if kind not in NUMERIC_KINDS and kind != "string":
            return None
        stored = self._files.column(name, kind, len(self.pks))
        if stored is not NOT_STORED:
            return stored
        column = _from_engine(self._reader.column)(name, kind)
        if column is not None:
            column = _in_key_order(column, self._order)
        self._files.save_column(name, kind, column)
        stored = self._files.column(name, kind, len(self.pks))  # the mapped copy, shared
        return column if stored is NOT_STORED else stored

    def envelopes(self) -> Envelopes:
        """Each row's box, read once (Unsupported when the reader has none)."""
        if self._envelopes is None:
            with _held(self._lock):
                if self._envelopes is None:
                    bounds = self._files.array("envelopes", (4, len(self.pks)),
                                               self._read_bounds)
                    self._envelopes = Envelopes(bounds, self._files)
        return self._envelopes

    def _read_bounds(self) -> np.ndarray:
        read = _from_engine(self._reader.bounds)()
        if read is None:
            raise Unsupported("no boxes")
        keys, boxes = read
        bounds = np.full((4, len(self.pks)), np.nan)
        bounds[:, np.searchsorted(self.pks, keys)] = boxes
        return bounds

    def _rank_in_sql_order(self, name: str) -> np.ndarray:
        keys, ranks = _from_engine(self._reader.ranks_in_sql_order)(name)
        result = np.zeros(len(self.pks), dtype=np.int32)
        result[np.searchsorted(self.pks, keys)] = ranks
        return result

    # filters --------------------------------------------------------------------------------

    def matching(self, tree: Any | None, box: BaseGeometry | None = None,
                 param: str = "filter") -> np.ndarray:
        """Ascending positions of the rows meeting `box` (bbox=) and the filter `tree`;
        Unsupported when SQL must answer. The box and the spatial conditions ANDed at the
        filter's top level are looked up first, by the rows' boxes; the rest of the filter is
        then evaluated on their matches only. A town-sized box so costs its few thousand
        candidates, where a mask costs a pass over every row (10 million parcels: tens of
        milliseconds a request)."""
        spatial = [] if box is None else [box]
        rest = []
        for node in _conjuncts(tree):
            if isinstance(node, ast.GeometryIntersects | ast.BBox):
                spatial.append(self._spatial_literal(node, param))
            else:
                rest.append(node)
        if not spatial:
            return np.flatnonzero(self._mask(tree, param)) if tree is not None else \
                np.arange(len(self.pks))
        for node in rest:  # Unsupported before any geometry is read, not after
            self._mask(node, param, NO_ROWS)
        positions = self.intersecting_positions(spatial[0])
        for literal in spatial[1:]:
            positions = np.intersect1d(positions, self.intersecting_positions(literal),
                                       assume_unique=True)
        for node in rest:
            positions = positions[self._mask(node, param, positions)]
        return positions

    def _mask(self, node: Any, param: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Whether the filter is TRUE for each row (of `rows`, positions, when given)."""
        if isinstance(node, ast.And | ast.Or):
            lhs, rhs = self._mask(node.lhs, param, rows), self._mask(node.rhs, param, rows)
            return lhs & rhs if isinstance(node, ast.And) else lhs | rhs
        if type(node) in _OPS:
            return self._compare(node.lhs, _OPS[type(node)], node.rhs, param, rows)
        if isinstance(node, ast.Between):
            mask = self._compare(node.lhs, ">=", node.low, param, rows) & \
                self._compare(node.lhs, "<=", node.high, param, rows)
            return self._negate(mask, node.lhs, rows) if node.not_ else mask
        if isinstance(node, ast.In):
            mask = np.zeros(len(self.pks) if rows is None else len(rows), dtype=bool)
            for option in node.sub_nodes:
                mask |= self._compare(node.lhs, "=", option, param, rows)
            return self._negate(mask, node.lhs, rows) if node.not_ else mask
        if isinstance(node, ast.GeometryIntersects | ast.BBox):
            literal = self._spatial_literal(node, param)
            if rows is not None and not len(rows):
                return np.zeros(0, dtype=bool)
            found = self.intersecting_positions(literal)
            if rows is not None:
                return np.isin(rows, found, assume_unique=True)
            mask = np.zeros(len(self.pks), dtype=bool)
            mask[found] = True
            return mask
        raise Unsupported(type(node).__name__)

    def _spatial_literal(self, node: Any, param: str) -> BaseGeometry:
        """The literal of `geometry INTERSECTS literal` or `BBOX(geometry, ...)`."""
        try:
            if isinstance(node, ast.BBox):
                if node.crs or not self._names_geometry(node.lhs):
                    raise Unsupported("BBOX")
                return box_geometry(node.minx, node.miny, node.maxx, node.maxy)
            sides = [node.lhs, node.rhs]
            literals = [side for side in sides if not self._names_geometry(side)]
            if len(literals) != 1:
                raise Unsupported("S_INTERSECTS")
            return geometry_literal(literals[0], param)
        except Cql2Error:
            raise Unsupported("a literal SQL reports") from None

    def _names_geometry(self, node: Any) -> bool:
        return isinstance(node, ast.Attribute) and self._reader.is_geometry(node.name)

    def intersecting_positions(self, geometry: BaseGeometry) -> np.ndarray:
        """Ascending positions of the rows whose geometry intersects `geometry`: their boxes
        compared in numpy; a box inside the literal (which is then certain to meet the
        feature) needs no exact test; the others are read and tested with GEOS in one
        vectorised call."""
        if geometry.is_empty:
            raise Unsupported("an empty literal")
        envelopes = self.envelopes()
        minx, miny, maxx, maxy = envelopes.minx, envelopes.miny, envelopes.maxx, envelopes.maxy
        left, bottom, right, top = geometry.bounds
        candidates = envelopes.overlapping(left, bottom, right, top)
        x0, y0, x1, y1 = minx[candidates], miny[candidates], maxx[candidates], maxy[candidates]
        outside = np.zeros(len(candidates), dtype=bool)
        if is_rectangle(geometry):
            certain = (x0 >= left) & (y0 >= bottom) & (x1 <= right) & (y1 <= top)
        else:
            shapely.prepare(geometry)
            certain = (x0 < x1) & (y0 < y1)  # boxes with an area; points and lines go exact
            certain &= _holds_boxes(geometry, x0, y0, x1, y1, certain)
            # A feature lies inside its R-tree box: a box the literal misses rules it out
            # without reading it (a polygon's bounds hold many such boxes near its corners).
            crossing = (x0 < x1) & (y0 < y1) & ~certain
            outside[crossing] = ~shapely.intersects(geometry, shapely.box(
                x0[crossing], y0[crossing], x1[crossing], y1[crossing]))
        hits = certain.copy()
        undecided = ~certain & ~outside
        if undecided.any():
            shapely.prepare(geometry)
            hits[undecided] = shapely.intersects(geometry,
                                                 self._geometries(candidates[undecided]))
        return candidates[hits]

    def _geometries(self, positions: np.ndarray) -> np.ndarray:
        """Geometries of rows (None where unreadable, as the SQL function skips)."""
        return self._reader.geometries(self.pks[positions].tolist())

    def _negate(self, mask: np.ndarray, attribute: ast.Attribute,
                rows: np.ndarray | None) -> np.ndarray:
        """NOT of a predicate of one property with literals: TRUE where the property is not
        NULL and the predicate is not TRUE (NULL NOT IN (...) is NULL, not TRUE)."""
        return ~mask & (_of(self.column(attribute.name).rank, rows) > 0)

    def _compare(self, lhs: Any, op: str, rhs: Any, param: str,
                 rows: np.ndarray | None) -> np.ndarray:
        if not isinstance(lhs, ast.Attribute):  # literal op property: turn it round
            lhs, rhs, op = rhs, lhs, {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if not isinstance(lhs, ast.Attribute) or isinstance(rhs, ast.Node | list | tuple):
            raise Unsupported("comparison of two properties or expressions")
        column = self.column(lhs.name)
        if column is None or isinstance(rhs, bool) or rhs is None:
            raise Unsupported(lhs.name)
        try:
            value = coerce_value(column.kind, rhs, name=lhs.name, param=param)
        except Cql2Error:
            raise Unsupported("a value SQL reports") from None  # the same message, from SQL
        if column.values is not None:
            return _number_mask(_of(column.values, rows), op, value)
        if column.categories is None:
            raise Unsupported(lhs.name)
        return _text_mask(_of(column.rank, rows), column.categories, op, value)

    # pages ----------------------------------------------------------------------------------

    def page(self, positions: np.ndarray, sortby: Sequence[tuple[str, bool]], offset: int,
             limit: int) -> list[int]:
        """Primary keys of the page of `positions` (ascending row positions) in query order."""
        if not sortby:
            return self.pks[positions[offset:offset + limit]].tolist()
        column = self.column(sortby[0][0]) if len(sortby) == 1 else None
        if column is None:
            raise Unsupported("sortby")
        if column.rank is None:
            with _held(self._lock):
                if column.rank is None:
                    name = sortby[0][0]
                    column.rank = self._files.array(f"rank in SQL order: {name}",
                                                    (len(self.pks),),
                                                    lambda: self._rank_in_sql_order(name))
        descending = sortby[0][1]
        rank = column.rank[positions].astype(np.int64)
        if descending:
            rank = rank.max(initial=0) - rank
        # Position in pk order breaks ties: one int64 key, sorted only as far as the page.
        key = rank * len(positions) + np.arange(len(positions), dtype=np.int64)
        wanted = min(offset + limit, len(key))
        if wanted <= 0 or offset >= len(key):
            return []
        first = np.argpartition(key, wanted - 1)[:wanted] if wanted < len(key) else \
            np.arange(len(key))
        ordered = first[np.argsort(key[first], kind="stable")][offset:]
        return self.pks[positions[ordered]].tolist()


def _holds_boxes(geometry: BaseGeometry, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray,
                 y1: np.ndarray, boxed: np.ndarray) -> np.ndarray:
    """Whether the (prepared) literal contains each box (only where `boxed`). A convex literal
    contains a box when it contains its four corners: four exact point tests, with no box
    geometry built (building them was the largest cost of an S_INTERSECTS request)."""
    if shapely.equals(geometry, geometry.convex_hull):
        return shapely.contains_xy(geometry, x0, y0) & shapely.contains_xy(geometry, x1, y0) & \
            shapely.contains_xy(geometry, x0, y1) & shapely.contains_xy(geometry, x1, y1)
    held = np.zeros(len(x0), dtype=bool)
    held[boxed] = shapely.contains(geometry, shapely.box(x0[boxed], y0[boxed], x1[boxed],
                                                         y1[boxed]))
    return held


def _of(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """A column's values of `rows` (positions), or all of them."""
    return values if rows is None else values[rows]


def _conjuncts(tree: Any | None) -> list[Any]:
    """The conditions a filter ANDs at its top level."""
    if tree is None:
        return []
    if isinstance(tree, ast.And):
        return _conjuncts(tree.lhs) + _conjuncts(tree.rhs)
    return [tree]


def _number_mask(values: np.ndarray, op: str, value: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if op == "=":
            return values == value
        if op == "<>":
            return (values != value) & ~np.isnan(values)
        if op == "<":
            return values < value
        if op == "<=":
            return values <= value
        if op == ">":
            return values > value
        return values >= value


def _text_mask(rank: np.ndarray, ordered: dict[str, int], op: str, value: str) -> np.ndarray:
    """Text against a literal through the ranks (`ordered`: categories in code-point order,
    NULL = 0)."""
    if op in ("=", "<>"):
        code = ordered.get(value, -1)
        return rank == code if op == "=" else (rank != code) & (rank > 0)
    names = list(ordered)  # in rank order
    below = bisect.bisect_left(names, value)  # categories < value
    through = bisect.bisect_right(names, value)  # categories <= value
    if op == "<":
        return (rank > 0) & (rank <= below)
    if op == "<=":
        return (rank > 0) & (rank <= through)
    if op == ">":
        return rank > through
    return rank > below


# --- reading ---------------------------------------------------------------------------------


def columns_of(identity: Hashable, reader: Callable[[], ColumnReader],
               cache: Path | None = None) -> Columns:
    """The Columns of one table version, one per process (shared by its threads). `identity`
    names the version and everything that shapes its columns (the kinds a store exposes):
    never the same for two different tables. With `cache`, the arrays are kept in files below
    it for every process (`ColumnFiles`); `reader` is called only on a miss."""
    with _CACHE_LOCK:
        found = _CACHE.get(identity)
        if found is not None:
            _CACHE.move_to_end(identity)
            return found
        loading = _LOADING.setdefault(identity, threading.Lock())
    with _held(loading):  # one thread reads the keys, the others wait for it
        with _CACHE_LOCK:
            if identity in _CACHE:
                return _CACHE[identity]
        # The folder also names the limit the descriptions were written under: a text column
        # described as "many values" under one MAX_CATEGORIES is not read back under another.
        folder = None if cache is None else Path(cache) / hashlib.sha256(
            repr((identity, MAX_CATEGORIES)).encode()).hexdigest()[:32]
        loaded = Columns(reader(), ColumnFiles(folder))
        with _CACHE_LOCK:
            _CACHE[identity] = loaded
            _LOADING.pop(identity, None)
            while len(_CACHE) > CACHED_LAYERS:
                _CACHE.popitem(last=False)
    return loaded


def _in_key_order(column: Column, order: np.ndarray) -> Column:
    """A column read in the reader's row order, put in primary-key order."""
    return Column(column.kind, None if column.rank is None else column.rank[order],
                  values=None if column.values is None else column.values[order],
                  categories=column.categories)


def column_from_values(kind: str, raw: np.ndarray) -> Column | None:
    """The Column of stored values (an object array; None for NULL), or None when they do not
    all have the declared kind (SQL then answers for it)."""
    present = np.array([v is not None for v in raw], dtype=bool)
    if kind in NUMERIC_KINDS:
        if not all(type(v) in (int, float) and abs(v) < 2**53 for v in raw[present]):
            return None  # text in a number column, or integers a float cannot hold exactly
        values = np.full(len(raw), np.nan)
        values[present] = raw[present].astype(np.float64)
        return number_column(kind, values)
    if not all(type(v) is str for v in raw[present]):
        return None
    codes: dict[str, int] = {}
    first = np.fromiter((codes.setdefault(v, len(codes)) for v in raw[present]),
                        dtype=np.int64, count=int(present.sum()))
    if len(codes) > MAX_CATEGORIES:
        return Column(kind, None)  # filters go to SQL; a sort reads the engine's order of it
    ordered = sorted(codes)
    remap = np.empty(len(codes), dtype=np.int32)
    for rank, value in enumerate(ordered, start=1):
        remap[codes[value]] = rank
    rank = np.zeros(len(raw), dtype=np.int32)
    rank[present] = remap[first] if len(first) else 0
    return Column(kind, rank, categories={v: r for r, v in enumerate(ordered, start=1)})


def number_column(kind: str, values: np.ndarray) -> Column:
    """The Column of numbers (float64, nan for NULL: the stores hold no NaN, SQLite turns it
    into NULL and the PostGIS tables are copied from it)."""
    present = ~np.isnan(values)
    _, inverse = np.unique(values[present], return_inverse=True)
    rank = np.zeros(len(values), dtype=np.int32)
    rank[present] = inverse + 1
    return Column(kind, rank, values=values)


def text_column(kind: str, ranks: np.ndarray, categories: Sequence[str]) -> Column:
    """The Column of text of few values, given each row's rank (1-based, in `categories`
    which are in code-point order; NULL = 0)."""
    return Column(kind, ranks.astype(np.int32, copy=False),
                  categories={value: rank for rank, value in enumerate(categories, start=1)})
