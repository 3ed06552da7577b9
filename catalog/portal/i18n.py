"""Interface strings in Kyrgyz, Russian and English (catalog/portal/strings.yml)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import yaml

LANGUAGES = ("ky", "ru", "en")
STRINGS = Path(__file__).resolve().parent / "strings.yml"


@cache
def strings() -> dict[str, dict[str, str]]:
    """key -> {language: text}; every key has all three languages (checked by the tests)."""
    return yaml.safe_load(STRINGS.read_text(encoding="utf-8"))


def translator(language: str) -> Callable[..., str]:
    """t(key, **values): the string in `language` (English when missing), with {values} filled."""
    table = strings()

    def t(key: str, **values: object) -> str:
        entry = table.get(key)
        if entry is None:
            return key
        text = entry.get(language) or entry["en"]
        return text.format(**values) if values else text

    return t


def pick(texts: dict | str | None, language: str) -> str:
    """A metadata text in `language` from a {en, ru, ky} mapping (English as the fallback)."""
    if texts is None:
        return ""
    if isinstance(texts, str):
        return texts
    return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")
