"""The words of the /ogc HTML pages in each of the catalog's languages, as gettext catalogs.

pygeoapi's templates (ours in catalog/ogc/templates and the ones of its own we still show)
mark their words with `{% trans %}`, and pygeoapi reads their translations from
`server.locale_dir` (its documented setting). The words are in catalog/ogc/strings.yml, in the
portal's format (key -> ky, ru, en): each entry's English text is the template's message id.
`write_catalogs` compiles them into that folder at start-up.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import yaml
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES

STRINGS = Path(__file__).resolve().parent / "strings.yml"
DOMAIN = "messages"  # the gettext domain pygeoapi loads


@cache
def strings() -> dict[str, dict[str, str]]:
    """key -> {language: text}; every key has every language (checked by the tests)."""
    return yaml.safe_load(STRINGS.read_text(encoding="utf-8"))


def page_words() -> dict[str, dict[str, str]]:
    """Message id (the English text) -> {language: text}."""
    return {entry[FALLBACK_LANGUAGE]: entry for entry in strings().values()}


def write_catalogs(folder: Path) -> Path:
    """<folder>/<language>/LC_MESSAGES/messages.mo for each language; returns folder. Written
    to a temporary name and renamed, so a reader never sees a half-written file."""
    words = page_words()
    for language in LANGUAGES:
        catalog = Catalog(locale=language, domain=DOMAIN)
        for message_id, texts in words.items():
            catalog.add(message_id, texts.get(language) or message_id)
        target = folder / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{DOMAIN}.{os.getpid()}.mo")
        with partial.open("wb") as out:
            write_mo(out, catalog)
        partial.replace(target)
    return folder
