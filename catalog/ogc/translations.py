"""The words of the /ogc HTML pages in each of the catalog's languages, as gettext catalogs.

pygeoapi's templates (ours in catalog/ogc/templates and the ones of its own we still show)
mark their words with `{% trans %}`, and pygeoapi reads translations for them from
`server.locale_dir` (its documented setting). The words live with the portal's, in
catalog/portal/strings.yml, under keys starting with `ogc.`: each entry's English text is the
template's message id. `write_catalogs` compiles them into that folder at start-up.
"""

from __future__ import annotations

import os
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from catalog.core.languages import LANGUAGES
from catalog.portal.i18n import strings

PREFIX = "ogc."
DOMAIN = "messages"  # the gettext domain pygeoapi loads


def page_words() -> dict[str, dict[str, str]]:
    """Message id (English text) -> {language: text}, for every `ogc.` entry of strings.yml."""
    return {entry["en"]: entry for key, entry in strings().items() if key.startswith(PREFIX)}


def write_catalogs(folder: Path) -> Path:
    """<folder>/<language>/LC_MESSAGES/messages.mo for each language; returns folder. Written
    to a temporary name and renamed, so a worker never reads another's half-written file."""
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
