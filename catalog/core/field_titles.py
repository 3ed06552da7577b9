"""Titles of the data's attributes in each language (field_titles.yml): the OGC API queryables
give them in the request's language; the portal adds them to its strings as ``field.<name>``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from catalog.core.languages import FALLBACK_LANGUAGE

FIELD_TITLES = Path(__file__).resolve().parent / "field_titles.yml"


@cache
def field_titles() -> dict[str, dict[str, str]]:
    """field name -> {language: title}; every field has every language (checked by the tests)."""
    return yaml.safe_load(FIELD_TITLES.read_text(encoding="utf-8"))


def field_title(name: str, language: str) -> str | None:
    """The field's title in `language` (English when missing), None for a field not listed."""
    titles = field_titles().get(name)
    return None if titles is None else titles.get(language) or titles[FALLBACK_LANGUAGE]
