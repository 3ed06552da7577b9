"""The controlled vocabularies DCAT-AP asks for, and how the catalog's values map onto them.

DCAT-AP takes languages, file types, frequencies, data themes and countries from the EU
Publications Office's authority tables; media types are IANA's. Each concept is written into
the graph with its scheme (`skos:inScheme`), so the DCAT-AP vocabulary shapes can be checked
offline against the document alone.
"""

from __future__ import annotations

AUTHORITY = "http://publications.europa.eu/resource/authority"
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types"

# Each table maps the catalog's value to (the table's code, its English label): the vocabulary
# shapes want a label on every concept used.

# catalog.core.languages codes -> EU language table (ISO 639-3 codes in upper case).
LANGUAGES = {"en": ("ENG", "English"), "ru": ("RUS", "Russian"), "ky": ("KIR", "Kyrgyz")}

# The manifest's ISO 19115 maintenance frequencies -> EU frequency table.
FREQUENCIES = {
    "continual": ("CONT", "continuous"), "daily": ("DAILY", "daily"),
    "weekly": ("WEEKLY", "weekly"), "fortnightly": ("BIWEEKLY", "biweekly"),
    "monthly": ("MONTHLY", "monthly"), "quarterly": ("QUARTERLY", "quarterly"),
    "biannually": ("ANNUAL_2", "semiannual"), "annually": ("ANNUAL", "annual"),
    "asNeeded": ("AS_NEEDED", "as needed"), "irregular": ("IRREG", "irregular"),
    "notPlanned": ("NEVER", "never"), "unknown": ("UNKNOWN", "unknown"),
}

# The catalog's themes -> EU data themes (several where a theme spans them).
DATA_THEMES = {
    # terrain and the boundary
    "land": (("ENVI", "Environment"), ("REGI", "Regions and cities")),
    # airports; settlements
    "infrastructure": (("TRAN", "Transport"), ("REGI", "Regions and cities")),
    # mobile network coverage
    "coverage": (("TECH", "Science and technology"),),
}

# The published media types (catalog/convert) -> EU file types.
FILE_TYPES = {
    "application/geopackage+sqlite3": ("GPKG", "GeoPackage"),
    "application/geo+json": ("GEOJSON", "GeoJSON"),
    "image/tiff": ("TIFF", "TIFF"),  # a GeoTIFF (COG): the table has no COG entry
    "application/yaml": ("YAML", "YAML"),
}

COUNTRY = ("KGZ", "Kyrgyzstan")  # in the EU country table
PUBLIC_ACCESS = ("PUBLIC", "public")  # in the EU access right table


def authority(table: str, code: str) -> str:
    """The IRI of a concept in one of the EU authority tables."""
    return f"{AUTHORITY}/{table}/{code}"


def scheme(table: str) -> str:
    return f"{AUTHORITY}/{table}"


def bare_media_type(media_type: str) -> str:
    """'image/tiff; application=geotiff' -> 'image/tiff' (IANA registers the bare type)."""
    return media_type.split(";", 1)[0].strip()


def file_type(media_type: str) -> tuple[str, str] | None:
    """The EU file type (code, label) of a media type, or None when the table has none."""
    return FILE_TYPES.get(bare_media_type(media_type))


def iana_media_type(media_type: str) -> str:
    return f"{IANA_MEDIA_TYPES}/{bare_media_type(media_type)}"
