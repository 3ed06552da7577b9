"""Dataset manifests: the YAML file a steward writes to describe and publish one dataset.

`load_manifest` parses and checks a manifest and returns a typed `Manifest`, or raises
`ValidationFailed` listing every problem with the field and line it concerns.
The format is documented in docs/manifest.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES, listed
from catalog.core.record import (
    Provenance,
    PublishedManifest,
    SourceReference,
    Steward,
    TemporalExtent,
)
from catalog.problems import Problem, ValidationFailed
from catalog.safe_parse import UnsafeInput, compose_yaml, load_yaml

THEMES = ("land", "infrastructure", "coverage")
NATURES = ("observed", "modelled", "synthetic")
# ISO 19115 MD_MaintenanceFrequencyCode values.
UPDATE_FREQUENCIES = (
    "continual",
    "daily",
    "weekly",
    "fortnightly",
    "monthly",
    "quarterly",
    "biannually",
    "annually",
    "asNeeded",
    "irregular",
    "notPlanned",
    "unknown",
)
# The words an English title must carry so nobody mistakes a model or a fake for measurements.
HONESTY_LABELS = {"modelled": "modelled estimate", "synthetic": "synthetic"}
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb")
# Formats the stewards' API converts on upload (catalog/sources/uploads.py) but the pipeline
# does not read directly: CSV has no CRS of its own and fiona opens KML only when asked.
CONVERTED_ON_UPLOAD = (".csv", ".kml")
RASTER_SUFFIXES = (".tif", ".tiff", ".nc")
# A source is a local file. GDAL would also take a URL, a virtual file system path (/vsicurl/,
# /vsizip/...) or a DRIVER:connection string, and VRTs that open other files: all refused.
INDIRECT_SOURCE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:|/vsi", re.IGNORECASE)
REFUSED_SUFFIXES = {".vrt": "VRT files make GDAL open other files or URLs"}
DATASET_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62})[a-z0-9]$")
# Ids no dataset may take: the processes' ids (a dataset named like a process would hide it or
# be hidden by it, since both live under /ogc) and the words of the server's routes, where a
# dataset id would make a URL ambiguous. tests/test_stewards_access.py checks that every
# process id of catalog/processes is here (this module is below that layer: no import).
PROCESS_IDS = ("site-screening", "coverage-statistics", "zonal-statistics")
ROUTE_WORDS = (
    "admin", "aggregate", "api", "area", "assets", "asyncapi", "catalog", "collections",
    "conformance", "corridor", "coverage", "cube", "datasets", "execution", "features",
    "healthz", "instances", "items", "jobs", "latest", "locations", "map", "metadata", "ogc",
    "openapi", "portal", "position", "processes", "queryables", "radius", "results", "review",
    "schema", "schemas", "search", "sortables", "stac", "stac-api", "static", "stewards",
    "styles", "tilematrixsets", "tiles", "trajectory", "value", "vendor",
)
RESERVED_IDS = frozenset(PROCESS_IDS + ROUTE_WORDS)
SPDX_ID = re.compile(r"^[A-Za-z0-9.+-]+$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A class of a categorical raster: the STAC classification extension's name pattern, a colour.
CLASS_NAME = re.compile(r"^[0-9A-Za-z_-]+$")
COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
KNOWN_KEYS = {
    "id",
    "theme",
    "title",
    "description",
    "keywords",
    "licence",
    "attribution",
    "steward",
    "source",
    "nature",
    "provenance",
    "update_frequency",
    "temporal_extent",
    "id_field",
    "raster",
    "role",
    "items",
}
# A dataset of several source files (tiles of a mosaic, or a time series): each is an item.
MAX_ITEMS = 1000
ITEM_KEYS = {"id", "source", "start", "end"}


@dataclass(frozen=True)
class Role:
    """What the processes need of the dataset that holds a role (checked at publish)."""

    kind: str  # 'vector' or 'raster'
    geometry: str | None = None  # the geometry family of a vector layer
    fields: tuple[str, ...] = ()  # attributes the processes read
    purpose: str = ""


# The roles a dataset can play for the processes (catalog/processes), which find their inputs
# by role, never by dataset id. At most one live dataset holds each role (docs/manifest.md).
ROLES = {
    "boundary": Role("vector", "Polygon", (), "the country outline areas are clipped to"),
    "settlements": Role("vector", "Point", ("population", "region_iso"),
                        "places with population and region (region_en/ru/ky names)"),
    "airports": Role("vector", "Point", (), "airports and airfields"),
    "regions": Role("vector", "Polygon", ("region_iso",),
                    "first-level units (oblasts, cities) with region_iso and name_en/ru/ky"),
    "lakes": Role("vector", "Polygon", (), "lakes and reservoirs: never a site; distance to water"),
    "rivers": Role("vector", "LineString", (), "rivers: distance to water"),
    "coverage": Role("vector", "Polygon", ("coverage_class",),
                     "mobile coverage polygons, coverage_class '4G' or '3G'"),
    "elevation": Role("raster", purpose="the elevation model (metres) of the analysis grid"),
    "slope": Role("raster", purpose="slope in degrees on the elevation model's grid"),
    "land-cover": Role("raster", purpose="land cover classes (raster.classes) for screening"),
    "urbanisation": Role("raster", purpose="degree of urbanisation classes for screening"),
    "climate-zones": Role("raster", purpose="climate zone classes for screening"),
}


# Roles whose processes read class names (catalog/processes/class_criteria.py).
CLASS_ROLES = ("land-cover", "urbanisation", "climate-zones")


@dataclass(frozen=True)
class ItemSpec:
    """One source file of a dataset of several (`items:`): a tile of a mosaic (no dates) or a
    step of a time series (the dates it stands for)."""

    id: str
    source: Path
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class Manifest:
    """A validated dataset manifest. Text fields map language codes (LANGUAGES) to text."""

    path: Path
    id: str
    theme: str
    title: dict[str, str]
    description: dict[str, str]
    keywords: dict[str, list[str]]
    licence: str
    attribution: str
    steward: Steward
    sources: tuple[Path, ...]
    nature: str
    provenance: Provenance
    update_frequency: str
    temporal_start: dt.date
    temporal_end: dt.date | None
    id_field: str | None = None
    raster: dict[str, Any] = field(default_factory=dict)
    role: str | None = None
    items: tuple[ItemSpec, ...] = ()  # empty: one source, one item named like the dataset

    @property
    def kind(self) -> str:
        """'raster' or 'vector', from the source files' type."""
        return "raster" if self.sources[0].suffix.lower() in RASTER_SUFFIXES else "vector"

    @property
    def licence_is_url(self) -> bool:
        return self.licence.startswith(("https://", "http://"))

    def published(self) -> PublishedManifest:
        """The manifest as it goes into a version's record (no local paths)."""
        return PublishedManifest(
            id=self.id, theme=self.theme, title=self.title, description=self.description,
            keywords=self.keywords, licence=self.licence, attribution=self.attribution,
            steward=self.steward, nature=self.nature, provenance=self.provenance,
            update_frequency=self.update_frequency,
            temporal_extent=TemporalExtent(self.temporal_start, self.temporal_end),
            id_field=self.id_field, raster=self.raster, role=self.role)


def licence_url(licence: str) -> str:
    """A page describing the licence: the URL itself, or the SPDX page of an identifier."""
    if licence.startswith(("https://", "http://")):
        return licence
    return f"https://spdx.org/licenses/{licence}.html"


def reserved_id(dataset_id: str) -> str | None:
    """Why a dataset cannot take this id, or None when it can."""
    if dataset_id in PROCESS_IDS:
        return f"{dataset_id!r} is reserved: it is the id of a process (/ogc/processes)"
    if dataset_id in ROUTE_WORDS:
        return f"{dataset_id!r} is reserved: it is a word of the server's routes"
    return None


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest file; raise ValidationFailed with every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValidationFailed(
            [Problem("manifest", f"cannot read: {err}", file=str(path),
                     code="manifest_unreadable")]
        ) from err
    return parse_manifest(text, path)


def parse_manifest(text: str, path: Path) -> Manifest:
    """Check manifest text; `path` places the sources (relative to the manifest's folder)."""
    try:
        node = compose_yaml(text)
        data = load_yaml(text)
    except UnsafeInput as err:
        problem = Problem("manifest", err.detail, err.line, code="manifest_yaml_refused")
        raise ValidationFailed([_in_file(problem, path)]) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = Problem("manifest", f"not valid YAML: {getattr(err, 'problem', err)}", line,
                          code="manifest_not_yaml")
        raise ValidationFailed([_in_file(problem, path)]) from err
    if not isinstance(data, dict):
        raise ValidationFailed([Problem("manifest", "must be a YAML mapping", 1, str(path),
                                        code="manifest_not_mapping")])
    checker = _Checker(data, _line_index(node), path)
    manifest = checker.build()
    if checker.problems:
        raise ValidationFailed([_in_file(p, path) for p in checker.problems])
    assert manifest is not None
    return manifest


def _in_file(problem: Problem, path: Path) -> Problem:
    return dataclasses.replace(problem, file=str(path))


def _line_index(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Map dotted field paths ('title.en', 'provenance.derived_from.0') to 1-based lines."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            lines.update(_line_index(value_node, key + "."))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = f"{prefix}{index}"
            lines[key] = item.start_mark.line + 1
            lines.update(_line_index(item, key + "."))
    return lines


class _Checker:
    """Collects problems field by field instead of stopping at the first one."""

    def __init__(self, data: dict, lines: dict[str, int], path: Path):
        self.data = data
        self.lines = lines
        self.path = path
        self.problems: list[Problem] = []

    def problem(self, where: str, message: str, *, code: str,
                params: dict[str, str | int] | None = None) -> None:
        """A problem at `where`; `code` and `params` say it in every language (finding_texts.yml,
        tests/test_stewards_messages.py checks each code has its texts)."""
        line = self.lines.get(where)
        parent = where
        while line is None and "." in parent:
            parent = parent.rsplit(".", 1)[0]
            line = self.lines.get(parent)
        self.problems.append(Problem(where, message, line, code=code, params=dict(params or {})))

    def build(self) -> Manifest | None:
        for key in sorted(set(self.data) - KNOWN_KEYS):
            self.problem(key, f"unknown field (known fields: {', '.join(sorted(KNOWN_KEYS))})",
                         code="manifest_unknown_field",
                         params={"known": ", ".join(sorted(KNOWN_KEYS))})
        dataset_id = self.dataset_id()
        theme = self.choice("theme", THEMES)
        title = self.texts("title")
        description = self.texts("description")
        keywords = self.keyword_lists()
        licence = self.licence()
        attribution = self.text("attribution")
        steward = self.steward()
        items = self.items() if "items" in self.data else ()
        sources = tuple(item.source for item in items) if "items" in self.data \
            else self.sources()
        nature = self.choice("nature", NATURES)
        provenance = self.provenance(nature)
        frequency = self.choice("update_frequency", UPDATE_FREQUENCIES)
        start, end = self.temporal_extent()
        id_field = self.optional_text("id_field")
        raster = self.raster_block(sources)
        role = self.role(sources)
        if role in CLASS_ROLES and not raster.get("classes"):
            self.problem("role", f"{role!r} is read by class names: give raster.classes",
                         code="manifest_role_needs_classes", params={"role": str(role)})
        self.honesty(nature, title)
        self.items_fit(items, sources, start, end, role)
        if self.problems:
            return None
        return Manifest(
            path=self.path,
            id=dataset_id,
            theme=theme,
            title=title,
            description=description,
            keywords=keywords,
            licence=licence,
            attribution=attribution,
            steward=steward,
            sources=sources,
            nature=nature,
            provenance=provenance,
            update_frequency=frequency,
            temporal_start=start,
            temporal_end=end,
            id_field=id_field,
            raster=raster,
            role=role,
            items=items,
        )

    # -- single fields -------------------------------------------------------------------

    def required(self, key: str, container: dict | None = None, where: str | None = None) -> Any:
        container = self.data if container is None else container
        value = container.get(key)
        if value is None or value == "" or value == [] or value == {}:
            self.problem(where or key, "missing (required)", code="manifest_missing")
            return None
        return value

    def text(self, key: str, container: dict | None = None, where: str | None = None) -> str:
        value = self.required(key, container, where)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(where or key, "must be non-empty text", code="manifest_empty")
            return ""
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(key, "must be non-empty text when given", code="manifest_empty")
            return None
        return value.strip()

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.required(key)
        if value is not None and value not in allowed:
            self.problem(key, f"{value!r} is not one of: {', '.join(allowed)}",
                         code="manifest_not_one_of",
                         params={"value": repr(value), "allowed": ", ".join(allowed)})
        return value or ""

    def dataset_id(self) -> str:
        value = self.text("id")
        if value and not DATASET_ID.match(value):
            self.problem("id", "use 3-64 characters: lowercase letters, digits and '-'",
                         code="manifest_id_invalid")
        elif value and (reason := reserved_id(value)):
            self.problem("id", reason, code="manifest_id_reserved", params={"id": value})
        elif value and value != self.path.stem:
            self.problem("id", f"must equal the manifest's file name ({self.path.stem!r})",
                         code="manifest_id_mismatch", params={"dataset": self.path.stem})
        return value

    def texts(self, key: str, container: dict | None = None,
              where: str | None = None) -> dict[str, str]:
        """A {language: text} mapping with English required."""
        where = where or key
        value = self.required(key, container, where)
        if value is None:
            return {}
        if isinstance(value, str):
            value = {FALLBACK_LANGUAGE: value}
        if not isinstance(value, dict):
            self.problem(where, f"must map language codes ({listed()}) to text",
                         code="manifest_not_language_map", params={"languages": listed()})
            return {}
        result = {}
        for lang, text in value.items():
            if lang not in LANGUAGES:
                self.problem(f"{where}.{lang}", f"unknown language; use one of {listed()}",
                             code="manifest_unknown_language", params={"languages": listed()})
            elif not isinstance(text, str) or not text.strip():
                self.problem(f"{where}.{lang}", "must be non-empty text", code="manifest_empty")
            else:
                result[lang] = text.strip()
        if FALLBACK_LANGUAGE not in value:
            self.problem(f"{where}.{FALLBACK_LANGUAGE}", "missing (English is required)",
                         code="manifest_missing_english")
        return result

    def keyword_lists(self) -> dict[str, list[str]]:
        value = self.required("keywords")
        if value is None:
            return {}
        if isinstance(value, list):
            value = {FALLBACK_LANGUAGE: value}
        if not isinstance(value, dict):
            self.problem("keywords", "must map language codes to lists of keywords",
                         code="manifest_keywords_not_map")
            return {}
        result = {}
        for lang, words in value.items():
            where = f"keywords.{lang}"
            if lang not in LANGUAGES:
                self.problem(where, f"unknown language; use one of {listed()}",
                             code="manifest_unknown_language", params={"languages": listed()})
            elif not isinstance(words, list) or not words:
                self.problem(where, "must be a non-empty list of keywords",
                             code="manifest_keywords_empty")
            elif not all(isinstance(w, str) and w.strip() for w in words):
                self.problem(where, "every keyword must be non-empty text",
                             code="manifest_keyword_empty")
            else:
                result[lang] = [w.strip() for w in words]
        if FALLBACK_LANGUAGE not in value:
            self.problem(f"keywords.{FALLBACK_LANGUAGE}", "missing (English is required)",
                         code="manifest_missing_english")
        return result

    def licence(self) -> str:
        value = self.text("licence")
        if value and not (value.startswith("https://") or SPDX_ID.match(value)):
            self.problem("licence", "must be an SPDX identifier (e.g. CC-BY-4.0) or an https URL",
                         code="manifest_licence_invalid")
        return value

    def steward(self) -> Steward:
        value = self.required("steward")
        if value is None:
            return Steward("", "", "")
        if not isinstance(value, dict):
            self.problem("steward", "must be a mapping with name, organisation and email",
                         code="manifest_steward_not_map")
            return Steward("", "", "")
        name = self.text("name", value, "steward.name")
        organisation = self.text("organisation", value, "steward.organisation")
        email = self.text("email", value, "steward.email")
        if email and not EMAIL.match(email):
            self.problem("steward.email", f"{email!r} is not an e-mail address",
                         code="manifest_email_invalid", params={"email": email})
        return Steward(name, organisation, email)

    def sources(self) -> tuple[Path, ...]:
        """One source file per dataset (a coverage or a feature layer), relative to the manifest."""
        value = self.required("source")
        if value is None:
            return ()
        path = self.source_path(value, "source")
        return () if path is None else (path,)

    def source_path(self, value: Any, where: str) -> Path | None:
        """A source file relative to the manifest; None when it cannot be one."""
        if not isinstance(value, str) or not value.strip():
            self.problem(where, "must be one file path relative to the manifest",
                         code="manifest_source_not_path")
            return None
        if INDIRECT_SOURCE.search(value.strip()):
            self.problem(where, "must be a local file path: URLs, GDAL virtual file "
                                "systems (/vsi...) and DRIVER: prefixes are refused",
                                code="manifest_source_not_local")
            return None
        path = (self.path.parent / value).resolve()
        suffix = path.suffix.lower()
        if suffix in REFUSED_SUFFIXES:
            self.problem(where, f"{suffix} sources are refused: {REFUSED_SUFFIXES[suffix]}",
                         code="manifest_source_refused", params={"suffix": suffix})
        elif suffix in CONVERTED_ON_UPLOAD:
            self.problem(where, f"{suffix} files are converted when uploaded through the "
                                "stewards' API (/api); for `taza publish`, convert to "
                                "GeoPackage or GeoJSON first",
                                code="manifest_source_converted", params={"suffix": suffix})
        elif suffix not in VECTOR_SUFFIXES + RASTER_SUFFIXES:
            known = ", ".join(VECTOR_SUFFIXES + RASTER_SUFFIXES)
            self.problem(where, f"unsupported file type {suffix or '(none)'}; use one of {known}",
                         code="manifest_source_type",
                         params={"suffix": suffix or "-", "known": known})
        elif not path.is_file():
            self.problem(where, f"file not found: {value}",
                         code="manifest_source_not_found", params={"path": str(value)})
        return path

    def items(self) -> tuple[ItemSpec, ...]:
        """`items:` instead of `source:`: several source files, each an item of the dataset."""
        if "source" in self.data:
            self.problem("items", "give either source (one file) or items (several), not both",
                         code="manifest_source_and_items")
        value = self.data.get("items")
        if not isinstance(value, list) or not value or len(value) > MAX_ITEMS:
            self.problem("items", f"must be a list of 1 to {MAX_ITEMS} items "
                                  "({id, source, start, end})",
                                  code="manifest_items_list", params={"max": MAX_ITEMS})
            return ()
        items = tuple(self.item(entry, f"items.{index}") for index, entry in enumerate(value))
        items = tuple(item for item in items if item is not None)
        ids = [item.id for item in items]
        for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
            self.problem("items", f"item id {duplicate!r} is given more than once",
                         code="manifest_item_duplicate", params={"id": str(duplicate)})
        return items

    def item(self, entry: Any, where: str) -> ItemSpec | None:
        if not isinstance(entry, dict):
            self.problem(where, "must be a mapping with id and source (and start, end)",
                         code="manifest_item_not_map")
            return None
        for key in sorted(set(entry) - ITEM_KEYS):
            self.problem(f"{where}.{key}", f"unknown field (known: {', '.join(sorted(ITEM_KEYS))})",
                         code="manifest_unknown_field",
                         params={"known": ", ".join(sorted(ITEM_KEYS))})
        item_id = self.text("id", entry, f"{where}.id")
        if item_id and not DATASET_ID.match(item_id):
            self.problem(f"{where}.id", "use 3-64 characters: lowercase letters, digits and '-'",
                         code="manifest_id_invalid")
        path = self.source_path(entry.get("source"), f"{where}.source")
        start = self.date(entry.get("start"), f"{where}.start", required=False)
        end = self.date(entry.get("end"), f"{where}.end", required=False)
        if start and end and end < start:
            self.problem(f"{where}.end", "is before the start", code="manifest_end_before_start")
        if path is None or not item_id:
            return None
        return ItemSpec(item_id, path, start, end)

    def items_fit(self, items: tuple[ItemSpec, ...], sources: tuple[Path, ...],
                  start: dt.date, end: dt.date | None, role: str | None) -> None:
        """Items are rasters, all dated (a time series) or none (a mosaic), inside the
        dataset's temporal extent; a role's process reads one file, so no role."""
        if not items:
            return
        if any(source.suffix.lower() not in RASTER_SUFFIXES for source in sources):
            self.problem("items", "only raster datasets can have several items",
                         code="manifest_items_not_raster")
        if role is not None:
            self.problem("role", "a dataset of several items cannot hold a role",
                         code="manifest_items_role")
        dated = [item for item in items if item.start or item.end]
        if dated and len(dated) != len(items):
            self.problem("items", "give start and end to every item (a time series) or to "
                                  "none (tiles of a mosaic)", code="manifest_items_dates_mixed")
        for index, item in enumerate(items):
            if not (item.start or item.end):
                continue
            if item.start is None or item.end is None:
                self.problem(f"items.{index}", "a time step needs both start and end",
                             code="manifest_item_needs_dates")
            elif item.start < start or (end is not None and item.end > end):
                self.problem(f"items.{index}", "lies outside the dataset's temporal_extent",
                             code="manifest_item_outside_extent")

    def provenance(self, nature: str) -> Provenance:
        value = self.required("provenance")
        if value is None or not isinstance(value, dict):
            if value is not None:
                self.problem("provenance", "must be a mapping with method and derived_from",
                             code="manifest_provenance_not_map")
            return Provenance("", ())
        method = self.text("method", value, "provenance.method")
        references = []
        derived = self.required("derived_from", value, "provenance.derived_from")
        if derived is not None and not isinstance(derived, list):
            self.problem("provenance.derived_from", "must be a list of sources",
                         code="manifest_derived_not_list")
        for index, entry in enumerate(derived if isinstance(derived, list) else []):
            references.append(self.reference(entry, f"provenance.derived_from.{index}"))
        limitations = value.get("limitations")
        if nature in HONESTY_LABELS and not (isinstance(limitations, str) and limitations.strip()):
            self.problem(
                "provenance.limitations", f"required for {nature} data: say what it misses"
, code="manifest_limitations_required")
        return Provenance(method, tuple(references), limitations.strip() if limitations else None)

    def reference(self, entry: Any, where: str) -> SourceReference:
        if not isinstance(entry, dict):
            self.problem(where, "must be a mapping with title, href and licence",
                         code="manifest_reference_not_map")
            return SourceReference("", "", "")
        href = self.text("href", entry, f"{where}.href")
        if href and not href.startswith(("https://", "http://")):
            self.problem(f"{where}.href", "must be an http(s) URL", code="manifest_href_invalid")
        version = entry.get("version")
        return SourceReference(
            title=self.text("title", entry, f"{where}.title"),
            href=href,
            licence=self.text("licence", entry, f"{where}.licence"),
            version=str(version) if version is not None else None,
            package=entry.get("package"),
        )

    def temporal_extent(self) -> tuple[dt.date, dt.date | None]:
        value = self.required("temporal_extent")
        fallback = dt.date(1970, 1, 1)
        if value is None:
            return fallback, None
        if not isinstance(value, dict):
            self.problem("temporal_extent", "must be a mapping with start and end",
                         code="manifest_extent_not_map")
            return fallback, None
        start = self.date(value.get("start"), "temporal_extent.start", required=True)
        end = self.date(value.get("end"), "temporal_extent.end", required=False)
        if start and end and end < start:
            self.problem("temporal_extent.end", "is before the start",
                         code="manifest_end_before_start")
        return start or fallback, end

    def date(self, value: Any, where: str, required: bool) -> dt.date | None:
        if value is None:
            if required:
                self.problem(where, "missing (required)", code="manifest_missing")
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.problem(where, f"{value!r} is not an ISO date (YYYY-MM-DD)",
                         code="manifest_date_invalid", params={"value": str(value)})
            return None

    def raster_block(self, sources: tuple[Path, ...]) -> dict[str, Any]:
        value = self.data.get("raster")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem("raster", "must be a mapping (band_name, unit)",
                         code="manifest_raster_not_map")
            return {}
        if sources and sources[0].suffix.lower() not in RASTER_SUFFIXES:
            self.problem("raster", "given, but the source is not a raster",
                         code="manifest_raster_not_raster")
        block = dict(value)
        if "classes" in block:
            block["classes"] = self.class_table(block["classes"])
        return block

    def class_table(self, value: Any) -> list[dict]:
        """raster.classes: the codes of a categorical raster, each with a name, colour and
        ky/ru/en titles (legends, popups, STAC `classification:classes`)."""
        if not isinstance(value, list) or not value:
            self.problem("raster.classes", "must be a non-empty list of classes "
                                           "(value, name, colour, title)",
                                           code="manifest_classes_list")
            return []
        classes = [self.raster_class(entry, f"raster.classes.{index}")
                   for index, entry in enumerate(value)]
        for key in ("value", "name"):
            seen = [c[key] for c in classes if c.get(key) is not None]
            for duplicate in sorted({v for v in seen if seen.count(v) > 1}, key=str):
                self.problem("raster.classes", f"{key} {duplicate!r} is given more than once",
                             code="manifest_class_duplicate",
                             params={"key": key, "value": str(duplicate)})
        return classes

    def raster_class(self, entry: Any, where: str) -> dict:
        if not isinstance(entry, dict):
            self.problem(where, "must be a mapping with value, name, colour and title",
                         code="manifest_class_not_map")
            return {}
        for key in sorted(set(entry) - {"value", "name", "colour", "title"}):
            self.problem(f"{where}.{key}", "unknown field (known: value, name, colour, title)",
                         code="manifest_unknown_field",
                         params={"known": "colour, name, title, value"})
        code = entry.get("value")
        if isinstance(code, bool) or not isinstance(code, int):
            self.problem(f"{where}.value", "must be an integer (the pixel value)",
                         code="manifest_class_value_int")
        name = self.text("name", entry, f"{where}.name")
        if name and not CLASS_NAME.match(name):
            self.problem(f"{where}.name", "use letters, digits, '-' and '_' only",
                         code="manifest_class_name_invalid")
        colour = self.text("colour", entry, f"{where}.colour")
        if colour and not COLOUR.match(colour):
            self.problem(f"{where}.colour", f"{colour!r} is not a colour '#rrggbb'",
                         code="manifest_colour_invalid", params={"colour": colour})
        title = self.texts("title", entry, f"{where}.title")
        return {"value": code, "name": name, "colour": colour.lower(), "title": title}

    def role(self, sources: tuple[Path, ...]) -> str | None:
        value = self.data.get("role")
        if value is None:
            return None
        if not isinstance(value, str) or value not in ROLES:
            self.problem("role", f"{value!r} is not one of: {', '.join(ROLES)}",
                         code="manifest_not_one_of",
                         params={"value": repr(value), "allowed": ", ".join(ROLES)})
            return None
        kind = "raster" if sources and sources[0].suffix.lower() in RASTER_SUFFIXES else "vector"
        if sources and ROLES[value].kind != kind:
            self.problem("role", f"{value!r} is a {ROLES[value].kind} role; this source is a "
                                 f"{kind}", code="manifest_role_kind", params={"role": value})
        return value

    def honesty(self, nature: str, title: dict[str, str]) -> None:
        label = HONESTY_LABELS.get(nature)
        english = title.get("en", "")
        if label and english and label not in english.lower():
            self.problem("title.en", f"{nature} data must say {label!r} in its English title",
                         code="manifest_title_label", params={"label": label})


# SPDX licences the stewards' form offers first (any SPDX id or https URL stays valid); what each
# allows is said in the portal's strings (steward_licence_allows.<id>).
OFFERED_LICENCES = ("CC-BY-4.0", "CC0-1.0", "CC-BY-SA-4.0", "ODbL-1.0", "PDDL-1.0", "OGL-UK-3.0")


def form_schema() -> dict[str, Any]:
    """The manifest's fields for the stewards' form, from the very constants `_Checker` applies,
    so the form offers exactly what `taza validate` accepts. `source` is left out: the
    stewards' API sets it to the upload."""
    multilingual = {"languages": list(LANGUAGES), "required_language": FALLBACK_LANGUAGE}
    return {
        "id": {"pattern": DATASET_ID.pattern, "reserved": sorted(RESERVED_IDS)},
        "texts": {"title": multilingual, "description": multilingual},
        "keywords": multilingual,
        "choices": {"theme": list(THEMES), "nature": list(NATURES),
                    "update_frequency": list(UPDATE_FREQUENCIES)},
        "optional_choices": {"role": list(ROLES)},
        "licence": {"pattern": SPDX_ID.pattern, "offered": list(OFFERED_LICENCES)},
        "steward": ["name", "organisation", "email"],
        "provenance": {"method": "text", "limitations": "text",
                       "limitations_required_for": list(HONESTY_LABELS),
                       "derived_from": ["title", "href", "licence"]},
        "honesty_labels": HONESTY_LABELS,
        "temporal_extent": ["start", "end"],
        "text": ["attribution"],
        "optional_text": ["id_field"],
        "known_keys": sorted(KNOWN_KEYS - {"source"}),
    }
