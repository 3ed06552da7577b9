"""What a request asks for: the format (`f`, else Accept) and the language (`lang`, else
Accept-Language), with the rules /ogc has always followed.

- Format: `f` wins (any value; an unknown one is refused by the route); otherwise the first
  media type of Accept, in preference order, that names a format the route serves; no match
  means the route's default (JSON).
- Language: `lang` wins when it names a catalog language, and an unknown `lang` means the
  default language; otherwise the first language of Accept-Language, in preference order,
  that the catalog has. Languages are matched on their language subtag ('ru', 'ru-RU',
  'ru_KG' all mean Russian); the answer names the catalog's locale ('ru-RU').
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from catalog.core.languages import FALLBACK_LANGUAGE, LOCALES

HTML, JSON, JSONLD, CSV = "html", "json", "jsonld", "csv"
MEDIA_TYPES = {HTML: "text/html", JSONLD: "application/ld+json", JSON: "application/json"}
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
DEFAULT_LOCALE = LOCALES[FALLBACK_LANGUAGE]
_CHOICE = re.compile(r"^([^;]+)(?:;q=([\d.]+))?$")


@dataclass(frozen=True)
class Negotiated:
    format: str | None  # None: the default (JSON)
    locale: str  # the catalog locale of the answer, e.g. 'ru-RU'
    requested_locale: str | None  # the raw `lang` or Accept-Language value, if any

    @property
    def language(self) -> str:
        return self.locale.split("-")[0]

    def rel(self, format_: str) -> str:
        """'self' for the link to this format (JSON when none was asked), else 'alternate'."""
        return "self" if format_ == self.format or (format_ == JSON and not self.format) \
            else "alternate"


def negotiate(args: Mapping[str, str], headers: Mapping[str, str],
              extra_formats: Mapping[str, str] | None = None) -> Negotiated:
    """The format and language of a request; `extra_formats` (name -> media type) are the
    route's formats beyond HTML, JSON-LD and JSON (CSV for items)."""
    locale, raw = _locale(args, headers)
    return Negotiated(_format(args, headers, extra_formats or {}), locale, raw)


def choices(value: str | None) -> list[str]:
    """The values of an Accept-style header, most preferred first (q=0 means 'not this')."""
    ranked = []
    for index, part in enumerate((value or "").split(",")):
        match = _CHOICE.match(part.strip())
        if match:
            quality = float(match[2]) if match[2] else 1.0
            if 0 < quality <= 1:
                ranked.append((-quality, index, match[1]))
    return [choice for _, _, choice in sorted(ranked)]


def _format(args: Mapping[str, str], headers: Mapping[str, str],
            extra: Mapping[str, str]) -> str | None:
    requested = (args.get("f") or "").strip()
    if requested:
        return requested
    known = {media.split(";")[0]: name for name, media in {**MEDIA_TYPES, **extra}.items()}
    for media in choices(headers.get("Accept")):
        if media in known:
            return known[media]
    return None


def _locale(args: Mapping[str, str], headers: Mapping[str, str]) -> tuple[str, str | None]:
    raw = None
    for value, is_parameter in ((args.get("lang"), True), (headers.get("Accept-Language"), False)):
        tags = choices(value)
        if not tags:
            continue
        raw = raw if raw is not None else value
        locale = best_locale(tags)
        if locale != DEFAULT_LOCALE or is_parameter:
            return locale, raw
    return DEFAULT_LOCALE, raw


def best_locale(tags: list[str]) -> str:
    """The catalog locale of the first tag whose language the catalog has, else the default."""
    for tag in tags:
        language = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
        if language in LOCALES:
            return LOCALES[language]
    return DEFAULT_LOCALE


def text(value: object, language: str) -> object:
    """A {language: text} mapping in one language: that language's entry, else the first
    (English comes first in metadata); anything else as it is."""
    if isinstance(value, Mapping) and value and \
            not any(isinstance(item, Mapping) for item in value.values()):
        return value[language] if language in value else next(iter(value.values()))
    return value
