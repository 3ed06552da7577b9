"""CQL2 text TIMESTAMP literals in the plain RFC 3339 form are read by the standard library,
not by dateparser (issue 14: about 5 ms of CPU a literal, most of a STAC search's cost), and
the tree is the one pygeofilter makes of the same text.

pygeofilter's own parse of each text is the reference (the real parser, nothing replaced):
trees compare equal (datetimes compare as instants), and errors stay errors. Texts are drawn
by hypothesis around the literal: offsets, fractions, invalid dates, literals inside quoted
text and names, and stand-in collisions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygeofilter import ast
from pygeofilter.parsers.cql2_text import parse as pygeofilter_parse

from catalog.core.cql2 import Cql2Error, parse_filter


def reference(text: str) -> object:
    try:
        return pygeofilter_parse(text)
    except Exception:
        return "error"


def ours(text: str) -> object:
    try:
        return parse_filter(text, "cql2-text")
    except Cql2Error:
        return "error"


offsets = st.sampled_from(["Z", "+00:00", "+05:00", "-03:30", "+14:00", "-12:00"])
fractions = st.sampled_from(["", ".5", ".123", ".123456"])
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))


@st.composite
def literal(draw) -> str:
    moment = draw(moments)
    text = f"{moment:%Y-%m-%dT%H:%M:%S}{draw(fractions)}{draw(offsets)}"
    if draw(st.integers(0, 9)) == 0:  # an impossible date the regular form still matches
        text = text[:8] + "30" + text[10:] if text[5:7] == "02" else text[:5] + "13" + text[7:]
    return f"TIMESTAMP('{text}')"


@st.composite
def filters(draw) -> str:
    stamps = [draw(literal()) for _ in range(draw(st.integers(1, 3)))]
    shapes = [
        "datetime >= {0}",
        "\"eo:cloud_cover\" < 3.5 AND datetime >= {0}",
        "datetime BETWEEN {0} AND {1}",
        "T_AFTER(datetime, {0})",
        "updated IN ({0}, {1}, {2})",
        "title = '{0}' AND datetime < {1}",  # a literal inside quoted text stays text
        "title LIKE {0}",
        "datetime > DATE('0001-01-02') AND datetime < {0}",  # the stand-ins' year
        "datetime >= {0} OR (datetime <= {1} AND NOT datetime = {2})",
        "xTIMESTAMP = 1 AND datetime >= {0}",
    ]
    shape = draw(st.sampled_from(shapes))
    return shape.format(*(stamps * 3))


@settings(max_examples=150, deadline=None, database=None)
@given(filters())
def test_trees_equal_pygeofilters_own(text: str) -> None:
    assert ours(text) == reference(text), text


def test_plain_timestamps_skip_dateparser() -> None:
    """dateparser gives its own tzinfo class; the standard library's is datetime.timezone:
    the fast path was taken (a regression to dateparser would cost ~5 ms a literal)."""
    tree = parse_filter("datetime >= TIMESTAMP('2021-06-01T12:30:00.250+05:00')", "cql2-text")
    assert isinstance(tree, ast.GreaterEqual)
    assert type(tree.rhs.tzinfo) is timezone
    assert tree.rhs == datetime(2021, 6, 1, 7, 30, 0, 250000, tzinfo=UTC)
    assert tree.rhs.utcoffset() == timedelta(hours=5)


@pytest.mark.parametrize("text", [
    "datetime > TIMESTAMP('2021-02-30T00:00:00Z')",  # not a date: pygeofilter's error
    "datetime > TIMESTAMP('2021-06-01T00:00:00Z'",  # unbalanced
    "title LIKE 'TIMESTAMP(''2021-06-01T00:00:00Z'')'",
])
def test_refusals_and_quoted_text_are_pygeofilters(text: str) -> None:
    assert ours(text) == reference(text)


def json_reference(document: dict) -> object:
    from pygeofilter.parsers.cql2_json import parse

    from catalog.core.cql2 import between_as_pygeofilter_reads
    try:
        return parse(between_as_pygeofilter_reads(document))
    except Exception:
        return "error"


def json_ours(document: dict) -> object:
    try:
        return parse_filter(document, "cql2-json")
    except Cql2Error:
        return "error"


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(literal(), min_size=3, max_size=3), st.integers(0, 4))
def test_cql2_json_trees_equal_pygeofilters_own(stamps: list[str], shape: int) -> None:
    values = [{"timestamp": s.removeprefix("TIMESTAMP('").removesuffix("')")} for s in stamps]
    prop = {"property": "datetime"}
    documents = [
        {"op": ">=", "args": [prop, values[0]]},
        {"op": "and", "args": [{"op": "<", "args": [{"property": "eo:cloud_cover"}, 3]},
                               {"op": "between", "args": [prop, values[0], values[1]]}]},
        {"op": "in", "args": [{"property": "updated"}, values]},
        {"op": "t_after", "args": [prop, values[2]]},
        {"op": "=", "args": [{"property": "title"}, {"timestamp": values[0]["timestamp"],
                                                     "extra": 1}]},
    ]
    document = documents[shape]
    assert json_ours(document) == json_reference(document), document


def test_plain_json_timestamps_skip_dateparser() -> None:
    tree = parse_filter({"op": "<", "args": [{"property": "datetime"},
                                             {"timestamp": "2021-06-01T12:30:00Z"}]}, "cql2-json")
    assert type(tree.rhs.tzinfo) is timezone
    assert tree.rhs == datetime(2021, 6, 1, 12, 30, tzinfo=UTC)
