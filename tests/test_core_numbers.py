"""Numbers as each language writes them (catalog/core/languages.py format_number), which the
stewards' reports and `taza` use: checked against Python's own formatting and Babel's CLDR
data, an independent reference."""

from __future__ import annotations

from babel.numbers import format_decimal
from hypothesis import given
from hypothesis import strategies as st

from catalog.core.languages import LANGUAGES, format_number


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_an_integer_is_written_as_each_languages_readers_write_it(value):
    assert format_number(value, "en") == f"{value:,}"
    for language in ("ru", "ky"):
        assert format_number(value, language) == format_decimal(value, locale=language)


@given(st.decimals(min_value=-10**9, max_value=10**9, places=3, allow_nan=False))
def test_a_fraction_keeps_its_digits_with_each_languages_marks(decimal):
    value = float(decimal)
    for language in LANGUAGES:
        said = format_number(value, language)
        plain = said.replace(",", "") if language == "en" else \
            said.replace("\u00a0", "").replace(",", ".")
        assert float(plain) == value


def test_what_is_not_a_number_is_its_text():
    assert [format_number(v, "ru") for v in (True, None, "12")] == ["True", "None", "12"]
