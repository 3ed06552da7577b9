"""The catalog's languages: the one place they are listed.

Every text a person reads exists in each of them: manifests give titles, descriptions and
keywords per language (English required), the portal's strings (catalog/portal/strings.yml)
have every key in each, pygeoapi is told them as locales, STAC carries the non-English texts
as translations. Adding a language here is where that starts (docs/manifest.md).
"""

from __future__ import annotations

# Language code -> the locale pygeoapi announces it as (Content-Language). English comes
# first: it is required in every manifest text, stands in for a missing translation and is
# pygeoapi's default (its first locale). Metadata mappings list languages in this order.
LOCALES = {"en": "en-US", "ru": "ru-RU", "ky": "ky-KG"}
LANGUAGES: tuple[str, ...] = tuple(LOCALES)
FALLBACK_LANGUAGE = LANGUAGES[0]
# The portal's language switch lists the state language first, English last.
PORTAL_ORDER: tuple[str, ...] = tuple(reversed(LANGUAGES))


def listed(separator: str = ", ") -> str:
    """The language codes as text for messages: 'en, ru, ky'."""
    return separator.join(LANGUAGES)


def format_number(value: object, language: str) -> str:
    """1234567.5 as '1,234,567.5' (en) or '1 234 567,5' (ru, ky: no-break spaces, a decimal
    comma, as their readers write numbers); anything but a number as its text."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    text = f"{value:,.6f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
    if language == FALLBACK_LANGUAGE:
        return text
    return text.replace(",", "\u00a0").replace(".", ",")
