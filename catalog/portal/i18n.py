"""Interface strings in Kyrgyz, Russian and English (catalog/portal/strings.yml)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import yaml

from catalog.core.field_titles import field_titles
from catalog.core.languages import FALLBACK_LANGUAGE, PORTAL_ORDER

# The portal's languages, in the order its switch offers them (catalog.core.languages).
LANGUAGES = PORTAL_ORDER
STRINGS = Path(__file__).resolve().parent / "strings.yml"


@cache
def strings() -> dict[str, dict[str, str]]:
    """key -> {language: text}; every key has every language (checked by the tests). The
    data's field titles (catalog.core.field_titles) come in as ``field.<name>``."""
    table = yaml.safe_load(STRINGS.read_text(encoding="utf-8"))
    return table | {f"field.{name}": titles for name, titles in field_titles().items()}


def translator(language: str) -> Callable[..., str]:
    """t(key, **values): the string in `language` (English when missing), with {values} filled."""
    table = strings()

    def t(key: str, **values: object) -> str:
        entry = table.get(key)
        if entry is None:
            return key
        text = entry.get(language) or entry[FALLBACK_LANGUAGE]
        return text.format(**values) if values else text

    return t


def pick(texts: dict | str | None, language: str) -> str:
    """A metadata text in `language` from a {language: text} mapping (English as the
    fallback)."""
    if texts is None:
        return ""
    if isinstance(texts, str):
        return texts
    return (texts.get(language) or texts.get(FALLBACK_LANGUAGE) or
            next(iter(texts.values()), ""))
