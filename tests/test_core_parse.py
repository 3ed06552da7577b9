"""catalog/core/parse.py against independent references, with generated values (hypothesis).

- bbox: numbers as Python's `decimal` reads them (another parser than `float`), and the rules
  of each service written out here as plain comparisons;
- datetime: RFC 3339 as ciso8601 (a C parser) reads it, ISO 8601 as dateutil's isoparse reads
  it, intervals assembled from their ends;
- CRS: PROJ's own database (pyproj) for every EPSG code named by URI, and no other text ever
  reaching PROJ.
The answers of each service to these values are pinned by tests/test_parameter_answers.py.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

import ciso8601
import pyproj
import pytest
from dateutil.parser import isoparse
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from catalog.core.parse import (
    CRS84_URI,
    BBox,
    BBoxError,
    BBoxRules,
    CrsError,
    CrsRules,
    DatetimeError,
    DatetimeRules,
    TimeSpan,
    parse_bbox,
    parse_crs,
    parse_datetime,
    parse_instant,
    whole_number,
)
from catalog.ogc.adapters import BBOX_RULES as OGC_BBOX
from catalog.ogc.adapters import DATETIME_RULES as OGC_DATETIME
from catalog.processes.inputs import BBOX_RULES as PROCESS_BBOX
from catalog.processes.inputs import CRS_RULES as PROCESS_CRS
from catalog.stac_api.params import BBOX_JSON_RULES as STAC_BBOX_JSON
from catalog.stac_api.params import BBOX_RULES as STAC_BBOX
from catalog.stac_api.params import DATETIME_RULES as STAC_DATETIME
from catalog.stac_api.params import FILTER_CRS_RULES as STAC_CRS

MANY = settings(max_examples=400, deadline=None)

# --- bbox -----------------------------------------------------------------------------------

COORDINATE = st.floats(-300, 300, allow_nan=False, allow_infinity=False)
# Number-ish text, including what float() takes and what it does not.
TOKEN = st.one_of(
    COORDINATE.map(repr),
    st.integers(-400, 400).map(str),
    st.sampled_from(["", " 7", "7 ", "1_0", "1e400", "-1e400", "nan", "inf", "-Infinity", "a",
                     "0x10", "1,", "١٢", "+5", ".5", "5.", "1e5", "--1"]),
)


def decimal_number(token: object) -> Decimal | None:
    """The reference reading of one item: a Decimal, or None when it is not a number."""
    if isinstance(token, bool) or not isinstance(token, int | float | str):
        return None
    try:
        return Decimal(token) if not isinstance(token, float) else Decimal(repr(token))
    except InvalidOperation:
        return None


def finite(number: Decimal) -> bool:
    return number.is_finite() and abs(number) <= Decimal(sys.float_info.max)


def reference_bbox(items: list, sizes=(4, 6), lon_lat=False, antimeridian=False, empty=True,
                   z_ordered=True) -> tuple[str, tuple | None]:
    """('ok', numbers) or (the first problem, None), by the rules as the docs state them."""
    numbers = [decimal_number(item) for item in items]
    if any(n is None for n in numbers):
        return "number", None
    if len(items) not in sizes:
        return "count", None
    if not all(finite(n) for n in numbers):
        return "finite", None
    values = [float(n) for n in numbers]
    x0, y0, x1, y1 = (values[0], values[1], values[3], values[4]) if len(values) == 6 else values
    if lon_lat and not (-180 <= x0 <= 180 and -180 <= x1 <= 180):
        return "longitude", None
    if lon_lat and not (-90 <= y0 <= 90 and -90 <= y1 <= 90):
        return "latitude", None
    if y0 > y1:
        return "y_order", None
    if x0 > x1 and not antimeridian:
        return "x_order", None
    if not empty and (x0 == x1 or y0 == y1):
        return "empty", None
    if z_ordered and len(values) == 6 and values[2] > values[5]:
        return "z_order", None
    return "ok", tuple(values)


def parsed(items, rules: BBoxRules, text: bool) -> tuple[str, tuple | None]:
    try:
        box = parse_bbox(",".join(items) if text else items, "bbox", rules)
    except BBoxError as err:
        assert err.param == "bbox" and str(err).startswith("bbox")
        return err.problem, None
    return "ok", tuple(box.as_list())


@MANY
@given(items=st.lists(TOKEN, min_size=1, max_size=7))
def test_bbox_text_as_the_ogc_edge_reads_it(items):
    assume(all("," not in item for item in items))
    assert parsed(items, OGC_BBOX, text=True) == reference_bbox(items)


@MANY
@given(items=st.lists(st.one_of(COORDINATE, st.integers(-200, 200), TOKEN, st.booleans(),
                                st.none()), min_size=1, max_size=7))
def test_bbox_arrays_as_processes_read_them(items):
    """Only JSON numbers, four of them, in degrees, with some width and height."""
    numbers_only = [item if isinstance(item, int | float) and not isinstance(item, bool)
                    else None for item in items]
    want = reference_bbox(numbers_only, sizes=(4,), lon_lat=True, empty=False)
    got = parsed(items, PROCESS_BBOX, text=False)
    shape_problems = {"number", "count", "finite"}  # one message for the three
    if want[0] in shape_problems:
        assert got[0] in shape_problems
    else:
        assert got == want


@MANY
@given(items=st.lists(st.one_of(COORDINATE, TOKEN), min_size=1, max_size=7))
def test_bbox_as_the_stac_api_reads_it(items):
    """WGS84, no antimeridian crossing, heights unchecked; the count is checked first."""
    assume(all("," not in item for item in items if isinstance(item, str)))
    want = reference_bbox(items, lon_lat=True, z_ordered=False)
    if len(items) not in (4, 6):
        want = ("count", None)
    got = parsed(items, STAC_BBOX_JSON, text=False)
    if want[0] in ("number", "finite"):  # one message; the first bad item may differ
        assert got[0] in ("number", "finite")
    else:
        assert got == want
    if all(isinstance(item, str) for item in items):
        assert parsed(items, STAC_BBOX, text=True)[0] == got[0]


@MANY
@given(west=COORDINATE, south=COORDINATE, east=COORDINATE, north=COORDINATE)
def test_layer_boxes_may_cross_the_antimeridian(west, south, east, north):
    rules = BBoxRules(sizes=(4,), antimeridian=True)
    want = reference_bbox([west, south, east, north], sizes=(4,), antimeridian=True)
    assert parsed([west, south, east, north], rules, text=False) == want
    if want[0] == "ok":
        assert BBox(west, south, east, north).crosses_antimeridian == (west > east)


def test_bbox_messages_name_the_value_and_the_item():
    with pytest.raises(BBoxError) as err:
        parse_bbox("1,2,x,4", "bbox", BBoxRules(messages={"number": "{param}: {item!r} in "
                                                                     "{value!r}"}))
    assert str(err.value) == "bbox: 'x' in '1,2,x,4'" and err.value.problem == "number"
    with pytest.raises(BBoxError):
        parse_bbox({"bbox": 1}, "bbox")


# --- datetime -------------------------------------------------------------------------------

MOMENTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                  timezone(-timedelta(hours=11, minutes=45))]))


def rfc3339(moment: datetime, digits: int, t: str, z: str) -> str:
    fraction = f"{moment.microsecond:06d}"[:digits] + "7" * max(0, digits - 6)
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{t}"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
            + (f".{fraction}" if digits else ""))
    offset = moment.utcoffset()
    if offset == timedelta(0) and z:
        return text + z
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@MANY
@given(moment=MOMENTS, digits=st.integers(0, 9), t=st.sampled_from("Tt"),
       z=st.sampled_from(["Z", "z", ""]))
def test_rfc3339_instants_equal_ciso8601s_reading(moment, digits, t, z):
    text = rfc3339(moment, digits, t, z)
    reference = ciso8601.parse_rfc3339(text)
    span = parse_datetime(text, "datetime", STAC_DATETIME)
    assert span.start == span.end == reference.astimezone(UTC)


# Components of an RFC 3339 date-time: (good spellings, bad or doubtful ones).
RFC3339_PARTS = [
    (["2020", "1985", "0001", "9999"], ["20", "0000", "02020"]),
    (["-"], ["", "/"]),
    (["01", "12", "02"], ["13", "00", "1"]),
    (["-"], ["", "/"]),
    (["01", "28", "29", "30", "31"], ["32", "00", "1"]),
    # A space for T: RFC 3339's grammar says T; ciso8601 follows the note that lets
    # applications take a space, the STAC API never has.
    (["T", "t"], ["", "X"]),
    (["00", "23", "07"], ["24", "7"]),
    ([":"], [""]),
    (["00", "59"], ["60", "5"]),
    ([":00", ":59"], [":60", "", ":5"]),
    (["", ".5", ".1234567891"], ["."]),
    (["Z", "z", "+05:30", "-23:59", "-00:00"], ["+24:00", "+05:60", "+0530", "", "+5:30"]),
]
RFC3339_ISH = st.integers(-1, len(RFC3339_PARTS) - 1).flatmap(lambda broken: st.tuples(*(
    st.sampled_from(bad if i == broken else good) for i, (good, bad) in enumerate(RFC3339_PARTS)
))).map("".join)


@MANY
@given(text=RFC3339_ISH)
def test_rfc3339_accepts_what_ciso8601_accepts(text):
    try:
        reference = ciso8601.parse_rfc3339(text).astimezone(UTC)
    except (ValueError, OverflowError):
        reference = None
    try:
        ours = parse_datetime(text, "datetime", STAC_DATETIME).start
    except DatetimeError as err:
        assert err.problem in ("instant", "instant_value", "slashes", "open") and \
            str(err).startswith("datetime: ")
        ours = None
    assert ours == reference, text


ISO_TEXT = st.one_of(
    MOMENTS.map(lambda m: m.isoformat()),
    MOMENTS.map(lambda m: m.replace(tzinfo=None).isoformat(timespec="seconds")),
    MOMENTS.map(lambda m: m.astimezone(UTC).isoformat().replace("+00:00", "Z")),
)


@MANY
@given(text=ISO_TEXT)
def test_iso_instants_equal_dateutils_reading(text):
    """What OGC API items take: Python's ISO 8601 reader; naive times are UTC."""
    reference = isoparse(text)
    reference = (reference if reference.tzinfo else reference.replace(tzinfo=UTC)).astimezone(UTC)
    assert parse_instant(text, "datetime") == TimeSpan(reference, reference)
    parse_datetime(text, "datetime", OGC_DATETIME)  # the edge takes it too


@MANY
@given(day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_a_date_is_its_whole_day(day):
    span = parse_datetime(day.isoformat())
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    assert span.start == start
    assert span.end == start + (timedelta(days=1) - timedelta(milliseconds=1))
    with pytest.raises(DatetimeError):
        parse_datetime(day.isoformat(), "datetime", STAC_DATETIME)  # STAC wants date-times


ENDS = st.one_of(st.none(), MOMENTS)


@MANY
@given(start=ENDS, end=ENDS, open_text=st.sampled_from(["", ".."]))
def test_intervals_from_their_ends(start, end, open_text):
    text = "/".join(open_text if m is None else m.isoformat() for m in (start, end))
    cases = [(DatetimeRules(), True, True), (STAC_DATETIME, True, False),
             (OGC_DATETIME, False, True)]
    for rules, ordered, both_open in cases:
        want_start = start.astimezone(UTC) if start else None
        want_end = end.astimezone(UTC) if end else None
        try:
            span = parse_datetime(text, "datetime", rules)
        except DatetimeError as err:
            if start is None and end is None:
                assert not both_open or text in rules.forms_refused
                continue
            assert ordered and want_start > want_end and err.problem == "order"
            continue
        assert (span.start, span.end) == (want_start, want_end)
        assert not (ordered and want_start and want_end and want_start > want_end)


@pytest.mark.parametrize(("text", "rules", "problem"), [
    ("a/b/c", DatetimeRules(), "slashes"),
    ("", DatetimeRules(), "empty"),
    ("..", DatetimeRules(), "lone_open"),
    ("..", STAC_DATETIME, "lone_open"),
    ("", STAC_DATETIME, "empty"),
    ("/", OGC_DATETIME, "form"),
    ("2020-13-01", DatetimeRules(), "instant"),
    ("2020-01-01T00:00:00+05:60", STAC_DATETIME, "instant_value"),
    ("0001-01-01T00:00:00+01:00", DatetimeRules(), "instant"),  # before year 1 in UTC
    ("9999-12-31T23:00:00-05:00", STAC_DATETIME, "instant_value"),  # after year 9999
    (20200101, STAC_DATETIME, "type"),
])
def test_datetime_problems(text, rules, problem):
    with pytest.raises(DatetimeError) as err:
        parse_datetime(text, "datetime", rules)
    assert err.value.problem == problem and str(err.value).startswith("datetime")


def test_open_ends_and_lone_values():
    assert parse_datetime("../..").unbounded and parse_datetime("/").unbounded
    assert parse_datetime("", "datetime", OGC_DATETIME).unbounded
    assert parse_datetime("2020-01-01T00:00:00Z/..").end is None


# --- CRS ------------------------------------------------------------------------------------

EPSG_CODES = sorted(int(code) for code in pyproj.database.get_codes("EPSG", "CRS")
                    if code.isdigit())


@settings(max_examples=300, deadline=None)
@given(code=st.sampled_from(EPSG_CODES), https=st.booleans())
def test_epsg_uris_name_what_proj_knows(code, https):
    uri = f"{'https' if https else 'http'}://www.opengis.net/def/crs/EPSG/0/{code}"
    crs = parse_crs(uri, "crs")
    assert crs.epsg == code and crs.uri == f"http://www.opengis.net/def/crs/EPSG/0/{code}"
    assert crs.to_pyproj() == pyproj.CRS.from_user_input(f"EPSG:{code}")
    assert parse_crs(code, "crs", CrsRules(integers=True)) == crs


@settings(max_examples=300, deadline=None)
@given(code=st.integers(1, 999_999_999))
def test_unknown_epsg_codes_are_crs_errors(code):
    assume(code not in set(EPSG_CODES))
    crs = parse_crs(f"http://www.opengis.net/def/crs/EPSG/0/{code}", "bbox-crs")
    try:
        pyproj.CRS.from_user_input(f"EPSG:{code}")
        known = True
    except pyproj.exceptions.CRSError:
        known = False
    if not known:
        with pytest.raises(CrsError) as err:
            crs.to_pyproj("bbox-crs")
        assert err.value.problem == "unknown" and f"EPSG:{code}" in str(err.value)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_no_free_text_reaches_proj(text):
    """Only the URI forms parse; PROJ strings, WKT, names and near-misses do not."""
    try:
        crs = parse_crs(text, "crs")
    except CrsError as err:
        assert err.problem == "syntax"
        return
    assert text in (crs.uri, crs.uri.replace("http:", "https:"))


@pytest.mark.parametrize("text", [
    "+proj=longlat +datum=WGS84", "EPSG:4326", "CRS84", "urn:ogc:def:crs:EPSG::4326",
    CRS84_URI + "\n", CRS84_URI + "/", "http://www.opengis.net/def/crs/EPSG/0/04326",
    "http://www.opengis.net/def/crs/EPSG/0/0", 'GEOGCS["WGS 84"]',
])
def test_other_spellings_are_refused_by_default(text):
    with pytest.raises(CrsError):
        parse_crs(text, "crs")


def test_services_crs_rules():
    assert parse_crs(CRS84_URI, "filter-crs", STAC_CRS).is_crs84
    assert parse_crs(CRS84_URI.replace("http:", "https:"), "filter-crs", STAC_CRS).is_crs84
    for refused in ("http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326", 4326):
        with pytest.raises(CrsError):
            parse_crs(refused, "filter-crs", STAC_CRS)
    for taken in (CRS84_URI, "http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326",
                  "CRS84"):
        assert parse_crs(taken, "area", PROCESS_CRS).epsg in (None, 4326)
    for refused in (CRS84_URI.replace("http:", "https:"), "EPSG:3857", None, 5):
        with pytest.raises(CrsError) as err:
            parse_crs(refused, "area", PROCESS_CRS)
        assert str(err.value) == f"area: bbox crs {refused!r} is not supported; use CRS84 " \
                                 "(lon/lat)"


def test_crs84_is_longitude_first():
    axis = parse_crs(CRS84_URI).to_pyproj().axis_info
    assert [a.direction for a in axis] == ["east", "north"]
    assert math.isclose(parse_crs(CRS84_URI).to_pyproj().ellipsoid.semi_major_metre, 6378137)


# --- whole numbers ---------------------------------------------------------------------------

DIGITS_AND_OTHERS = st.text(st.sampled_from("0123456789²٣١ +-_.e"), max_size=30)


@given(st.one_of(DIGITS_AND_OTHERS, st.integers(0, 10**25).map(str), st.text(max_size=12)),
       st.integers(0, 10**6), st.integers(0, 10**12))
@MANY
def test_whole_number_is_ascii_digits_within_the_bounds(text, lowest, span):
    # The reference: a regular expression for the form and Decimal (no digit limit) for the value.
    highest = lowest + span
    expected = None
    if re.fullmatch(r"[0-9]+", text, flags=re.ASCII) and \
            lowest <= Decimal(text) <= highest:
        expected = int(Decimal(text))
    assert whole_number(text, lowest, highest) == expected


def test_whole_number_of_thousands_of_digits_is_refused_not_raised():
    assert whole_number("9" * 5000, 0, 10**9) is None
    assert whole_number("0" * 5000 + "7", 0, 10) == 7
