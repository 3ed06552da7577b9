"""A synthetic feature layer and an independent reference for querying it, shared by the
FeatureStore contract tests (tests/test_feature_store_contract.py) and the GeoPackage store's own
tests (tests/test_geopackage_store.py).

SYNTHETIC: 320 deterministic random points, lines and polygons with NULLs in every column,
written as a GeoPackage with fiona. Every query is checked against the same features
filtered, sorted and paged here in plain Python and shapely; CQL2 filters are small trees
rendered to CQL2 text and JSON and evaluated here with SQL's three-valued logic.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import fiona
import shapely
from fiona.crs import CRS
from hypothesis import strategies as st
from shapely.geometry import mapping

from catalog.core import columns as in_memory_columns

N = 320
WORDS = [
    "Bishkek",
    "Ош",
    "Нарын",
    "Каракол",
    "Talas",
    "Токмок",
    "Kant",
    "Кара-Балта",
    "Ысык-Көл",
    "Naryn_2",
    "50% zone",
    "Ak-Suu",
    "bishkek",
    "ОШ",
    "Bökönbaev",
    "Чолпон-Ата",
]
REGIONS = ["Chui", "Osh", "Naryn", "Talas", "Issyk-Kul", "Batken", "Jalal-Abad"]
SCHEMA = {
    "geometry": "Unknown",
    "properties": {
        "code": "str",
        "name": "str",
        "region": "str",
        "pop": "int",
        "area": "float",
        "founded": "date",
        "updated": "datetime",
        "active": "bool",
    },
}
TEXT = ["code", "name", "region"]
EXTENT = ["2015-01-01", "2024-12-31"]


# --- the source data and the GeoPackage -------------------------------------------------------


def _geometry(rng: random.Random) -> shapely.Geometry | None:
    x, y = rng.uniform(69, 80), rng.uniform(39, 43)
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.55:
        return shapely.Point(round(x, 4), round(y, 4))
    if roll < 0.7:
        pts = [(x, y)] + [
            (x + rng.uniform(-0.6, 0.6), y + rng.uniform(-0.4, 0.4)) for _ in range(2)
        ]
        return shapely.LineString(pts)
    w, h = rng.uniform(0.01, 0.8), rng.uniform(0.01, 0.5)
    if roll < 0.85:
        return shapely.box(x, y, x + w, y + h)
    return shapely.Polygon([(x, y), (x + w, y), (x, y + h)])


def _source() -> list[dict]:
    rng = random.Random(20240601)
    features = []
    for fid in range(1, N + 1):
        maybe = lambda value, p=0.08: None if rng.random() < p else value  # noqa: E731
        founded = maybe(date(2015, 1, 1) + timedelta(days=rng.randrange(3650)))
        updated = maybe(datetime(2019, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**8)))
        features.append(
            {
                "fid": fid,
                "geometry": _geometry(rng),
                "properties": {
                    "code": f"KG-{fid:04d}",
                    "name": maybe(f"{rng.choice(WORDS)} {rng.randint(1, 30)}"),
                    "region": rng.choice(REGIONS),
                    "pop": maybe(rng.choice([rng.randint(0, 100000), rng.randint(0, 50)])),
                    "area": round(rng.uniform(0, 1000), 3),
                    "founded": founded,
                    "updated": updated,
                    "active": rng.random() < 0.6,
                },
            }
        )
    return features


SOURCE = _source()
BY_FID = {f["fid"]: f for f in SOURCE}


def write_geopackage(path: str) -> str:
    """The synthetic layer as a GeoPackage table "places" (fiona: R-tree and triggers)."""
    with fiona.open(path, "w", driver="GPKG", schema=SCHEMA, crs=CRS.from_epsg(4326),
                    layer="places") as dst:
        for feature in SOURCE:
            props = dict(feature["properties"])
            props["founded"] = props["founded"] and props["founded"].isoformat()
            props["updated"] = props["updated"] and props["updated"].strftime("%Y-%m-%dT%H:%M:%SZ")
            geom = feature["geometry"]
            dst.write({"geometry": mapping(geom) if geom is not None else None,
                       "properties": props})
    return path


def ref_ids(predicate) -> list[int]:
    """The ids (fid) of the source features matching `predicate`, in id order."""
    return [f["fid"] for f in SOURCE if predicate(f)]


LON = st.floats(68.5, 80.5, allow_nan=False)
LAT = st.floats(38.5, 43.5, allow_nan=False)


@st.composite
def boxes(draw) -> tuple[float, float, float, float]:
    x1, x2, y1, y2 = draw(LON), draw(LON), draw(LAT), draw(LAT)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


SORTABLE = ["name", "region", "pop", "area", "founded", "updated", "active", "code"]


def sort_reference(keys: list[tuple[str, str]]) -> list[int]:
    rows = sorted(SOURCE, key=lambda f: f["fid"])
    for name, order in reversed(keys):  # stable sorts, least significant key first
        rows.sort(
            key=lambda f, n=name: (f["properties"][n] is not None, f["properties"][n]),
            reverse=order == "-",
        )
    return [f["fid"] for f in rows]


# One to three distinct properties, each ascending or descending.
SORT_KEYS = st.lists(st.tuples(st.sampled_from(SORTABLE), st.sampled_from("+-")),
                     min_size=1, max_size=3, unique_by=lambda k: k[0])


COLUMN_VALUES = {
    name: sorted({f["properties"][name] for f in SOURCE} - {None}, key=str) for name in SORTABLE
}
LIKE_PATTERNS = [
    "B%",
    "%ар%",
    "Ош%",
    "%1",
    "_a%",
    "Naryn\\_%",
    "%\\%%",
    "Kant _",
    "%",
    "bishkek%",
    "К%-%",
    "%Көл __",
    "Ak-Suu 1_",
]


def _literal(name: str):
    existing = st.sampled_from(COLUMN_VALUES[name])
    fresh = {
        "pop": st.integers(-5, 100005),
        "area": st.floats(0, 1000).map(lambda v: round(v, 3)),
        "founded": st.dates(date(2014, 6, 1), date(2025, 6, 1)),
        "updated": st.datetimes(datetime(2018, 6, 1), datetime(2022, 6, 1)).map(
            lambda d: d.replace(microsecond=0, tzinfo=UTC)
        ),
        "name": st.sampled_from(["Ош", "Talas 3", "zzz"]),
        "region": st.sampled_from(REGIONS),
        "code": st.sampled_from(["KG-0100", "KG-9"]),
        "active": st.booleans(),
    }[name]
    return st.one_of(existing, fresh)


@st.composite
def comparisons(draw):
    name = draw(st.sampled_from(SORTABLE))
    ops = ["=", "<>"] if name == "active" else ["=", "<>", "<", "<=", ">", ">="]
    return ("cmp", name, draw(st.sampled_from(ops)), draw(_literal(name)))


@st.composite
def in_lists(draw):
    name = draw(st.sampled_from(["pop", "region", "name", "founded", "code"]))
    return ("in", name, draw(st.lists(_literal(name), min_size=1, max_size=4)), draw(st.booleans()))


@st.composite
def betweens(draw):
    name = draw(st.sampled_from(["pop", "area", "founded", "updated", "name"]))
    lo, hi = sorted([draw(_literal(name)), draw(_literal(name))], key=lambda v: (str(type(v)), v))
    return ("between", name, lo, hi, draw(st.booleans()))


@st.composite
def likes(draw):
    name = draw(st.sampled_from(["name", "region", "code"]))
    return (
        "like",
        name,
        draw(st.sampled_from(LIKE_PATTERNS)),
        draw(st.booleans()),
        draw(st.booleans()),
    )


@st.composite
def spatials(draw):
    op = draw(st.sampled_from(["intersects", "within", "disjoint", "contains", "touches"]))
    return ("spatial", op, draw(boxes()), draw(st.sampled_from(["bbox", "box", "triangle"])))


LEAVES = st.one_of(
    comparisons(),
    in_lists(),
    betweens(),
    likes(),
    spatials(),
    st.tuples(st.just("isnull"), st.sampled_from(["name", "pop", "founded"]), st.booleans()),
)
FILTERS = st.recursive(
    LEAVES,
    lambda kids: st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), kids, kids),
        st.tuples(st.just("not"), kids),
    ),
    max_leaves=5,
)

# What column arrays in memory answer (catalog/core/columns.py): AND/OR over comparisons, IN and
# BETWEEN of number and text columns.
ATTRIBUTE_LEAVES = st.one_of(
    comparisons().filter(lambda leaf: leaf[1] in ("pop", "area", "name", "region", "code")),
    in_lists().filter(lambda leaf: leaf[1] != "founded"),
    betweens().filter(lambda leaf: leaf[1] in ("pop", "area")),
)
ATTRIBUTE_FILTERS = st.recursive(
    ATTRIBUTE_LEAVES, lambda kids: st.tuples(st.sampled_from(["and", "or"]), kids, kids),
    max_leaves=4)


def _text_literal(value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return f"TIMESTAMP('{value.strftime('%Y-%m-%dT%H:%M:%SZ')}')"
    if isinstance(value, date):
        return f"DATE('{value.isoformat()}')"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _json_literal(value):
    if isinstance(value, datetime):
        return {"timestamp": value.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if isinstance(value, date) and not isinstance(value, bool):
        return {"date": value.isoformat()}
    return value


def literal_shape(box: tuple, form: str) -> shapely.Geometry:
    if form == "triangle":  # not a rectangle: no R-tree "inside" shortcut allowed
        minx, miny, maxx, maxy = box
        return shapely.Polygon([(minx, miny), (maxx, miny), (minx, maxy)])
    return shapely.box(*box)


def to_text(node: tuple) -> str:  # one branch per node type
    kind = node[0]
    if kind == "cmp":
        return f"{node[1]} {node[2]} {_text_literal(node[3])}"
    if kind == "in":
        items = ", ".join(_text_literal(v) for v in node[2])
        return f"{node[1]} {'NOT ' if node[3] else ''}IN ({items})"
    if kind == "between":
        lo, hi = _text_literal(node[2]), _text_literal(node[3])
        return f"{node[1]} {'NOT ' if node[4] else ''}BETWEEN {lo} AND {hi}"
    if kind == "like":
        _, name, pattern, negate, casei = node
        lhs, rhs = (f"CASEI({name})", f"CASEI('{pattern}')") if casei else (name, f"'{pattern}'")
        return f"{lhs} {'NOT ' if negate else ''}LIKE {rhs}"
    if kind == "isnull":
        return f"{node[1]} IS {'NOT ' if node[2] else ''}NULL"
    if kind == "spatial":
        _, op, box, form = node
        literal = ("BBOX({}, {}, {}, {})".format(*box) if form == "bbox"
                   else literal_shape(box, form).wkt)
        return f"S_{op.upper()}(geometry, {literal})"
    if kind == "not":
        # pygeofilter 0.4's text grammar only negates a single predicate: push NOT down
        # (De Morgan and double negation hold in three-valued logic too). JSON keeps real NOTs.
        child = node[1]
        if child[0] == "not":
            return to_text(child[1])
        if child[0] in ("and", "or"):
            dual = "or" if child[0] == "and" else "and"
            return to_text((dual, ("not", child[1]), ("not", child[2])))
        return f"NOT ({to_text(child)})"
    return f"({to_text(node[1])}) {kind.upper()} ({to_text(node[2])})"


def to_json(node: tuple) -> dict:  # one branch per node type
    kind = node[0]
    prop = {"property": node[1]} if kind not in ("spatial", "not", "and", "or") else None
    if kind == "cmp":
        return {"op": node[2], "args": [prop, _json_literal(node[3])]}
    if kind == "in":
        expr = {"op": "in", "args": [prop, [_json_literal(v) for v in node[2]]]}
        return {"op": "not", "args": [expr]} if node[3] else expr
    if kind == "between":  # pygeofilter 0.4 wants [prop, [lo, hi]], not CQL2 1.0's 3 args
        expr = {"op": "between", "args": [prop, [_json_literal(node[2]), _json_literal(node[3])]]}
        return {"op": "not", "args": [expr]} if node[4] else expr
    if kind == "like":
        _, name, pattern, negate, casei = node
        lhs = {"op": "casei", "args": [prop]} if casei else prop
        rhs = {"op": "casei", "args": [pattern]} if casei else pattern
        expr = {"op": "like", "args": [lhs, rhs]}
        return {"op": "not", "args": [expr]} if negate else expr
    if kind == "isnull":
        expr = {"op": "isNull", "args": [prop]}
        return {"op": "not", "args": [expr]} if node[2] else expr
    if kind == "spatial":
        _, op, box, form = node
        literal = {"bbox": list(box)} if form == "bbox" else mapping(literal_shape(box, form))
        return {"op": f"s_{op}", "args": [{"property": "geometry"}, literal]}
    if kind == "not":
        return {"op": "not", "args": [to_json(node[1])]}
    return {"op": kind, "args": [to_json(node[1]), to_json(node[2])]}


def _like_regex(pattern: str) -> re.Pattern:
    out, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars)))
        else:
            out.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
    return re.compile("".join(out), re.DOTALL)


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def evaluate(node: tuple, feature: dict) -> bool | None:  # one branch per node type
    kind, props = node[0], feature["properties"]
    if kind == "and":
        a, b = evaluate(node[1], feature), evaluate(node[2], feature)
        return False if a is False or b is False else (None if None in (a, b) else True)
    if kind == "or":
        a, b = evaluate(node[1], feature), evaluate(node[2], feature)
        return True if a is True or b is True else (None if None in (a, b) else False)
    if kind == "not":
        return _not(evaluate(node[1], feature))
    if kind == "spatial":
        geom = feature["geometry"]
        literal = literal_shape(node[2], node[3])
        return None if geom is None else bool(getattr(geom, node[1])(literal))
    value = props[node[1]]
    if kind == "isnull":
        return (value is not None) if node[2] else (value is None)
    if value is None:
        return None
    if kind == "cmp":
        op, literal = node[2], node[3]
        return {
            "=": value == literal,
            "<>": value != literal,
            "<": value < literal,
            "<=": value <= literal,
            ">": value > literal,
            ">=": value >= literal,
        }[op]
    if kind == "in":
        return (value not in node[2]) if node[3] else (value in node[2])
    if kind == "between":
        inside = node[2] <= value <= node[3]
        return not inside if node[4] else inside
    if kind == "like":
        _, _, pattern, negate, casei = node
        text, pattern = (value.lower(), pattern.lower()) if casei else (value, pattern)
        match = _like_regex(pattern).fullmatch(text) is not None
        return not match if negate else match
    raise AssertionError(node)


def answered_by_sql_then_from_arrays(page: Callable[[], object],
                                     statements: Callable[[Callable[[], object]], list[str]],
                                     cache: Path) -> tuple[list, list[str], list[str]]:
    """A query asked of a store whose arrays are neither in memory nor in `cache`, then again
    once the thread that reads them is done: (both pages, the statements of each)."""
    pages: list = []
    first = statements(lambda: pages.append(page()))
    assert in_memory_columns.background_loads_done(60)
    assert list(cache.rglob("*.npy"))  # written for the node's other workers
    later = statements(lambda: pages.append(page()))
    return pages, first, later
