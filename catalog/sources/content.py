"""What a source file must look like before GDAL may open it, and the one driver it opens with.

GDAL picks a driver from a file's content, not its name: a `.kml` holding an OGR VRT opens
`CSV:/etc/passwd`, a SQLite file named `.geojson` runs a VirtualOGR table. So every untrusted
file is opened with the driver its format names (`DRIVERS`), and only after `check_file` found
its content to be that format, with plain Python (no GDAL):

- text formats (GeoJSON, CSV, KML) must not mention a VRT (`<OGRVRTDataSource`, `<VRTDataset`)
  or a GDAL virtual file system (`/vsi...`) anywhere;
- GeoJSON is a JSON object, and a `crs` member, if any, names a CRS (EPSG code or OGC URN):
  a `link`/`href` CRS would make GDAL fetch it. Checked by streaming, never the whole file in
  memory;
- CSV is UTF-8 text; KML is XML without a DTD, entities or external references (defusedxml),
  whose root element is `kml`;
- a GeoPackage holds no views, no virtual tables but R-tree indexes and no triggers but the
  standard ones (read with sqlite3, read-only and immutable);
- GeoTIFF, NetCDF, FlatGeobuf and Shapefile parts start with their format's magic number.

Problems are returned as plain messages; callers turn them into findings or problems.
"""

from __future__ import annotations

import codecs
import json
import re
import sqlite3
import xml.sax
import xml.sax.handler
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path, PurePosixPath

import defusedxml.sax
from defusedxml import DefusedXmlException

DRIVERS = {
    ".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".zip": "ESRI Shapefile",
    ".shp": "ESRI Shapefile", ".fgb": "FlatGeobuf", ".csv": "CSV", ".kml": "KML",
    ".tif": "GTiff", ".tiff": "GTiff", ".nc": "netCDF",
}
MAGIC = {
    ".gpkg": (b"SQLite format 3\x00",),
    ".tif": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    ".tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    ".nc": (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n"),
    ".fgb": (b"fgb\x03fgb",),
    ".shp": (b"\x00\x00\x27\x0a",),
    ".shx": (b"\x00\x00\x27\x0a",),
    # dBase III/IV/5/7 and FoxPro versions GDAL's Shapefile driver writes or reads.
    ".dbf": tuple(bytes([v]) for v in (0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63,
                                       0x83, 0x8B, 0xCB, 0xF5, 0xE5, 0xFB)),
}
TEXT_SUFFIXES = (".geojson", ".json", ".csv", ".kml", ".prj", ".cpg")
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
# Lower-cased: the markers of a GDAL VRT and of GDAL's virtual file systems.
INDIRECTIONS = (b"<ogrvrtdatasource", b"<vrtdataset", b"/vsi")
MARKER_NAMES = {b"<ogrvrtdatasource": "<OGRVRTDataSource", b"<vrtdataset": "<VRTDataset",
                b"/vsi": "/vsi..."}
CHUNK = 8 << 20
OVERLAP = 64  # longer than any marker or key pattern below
# A JSON key spelling "crs" (GDAL compares member names ignoring case), \u escapes included,
# in lower-cased text.
CRS_KEY = re.compile(rb'"(?:c|\\u00[46]3)(?:r|\\u00[57]2)(?:s|\\u00[57]3)"')
JSON_SPACE = b" \t\r\n"
MAX_CRS_BYTES = 64 << 10
NAMED_CRS = re.compile(r"^(?:urn:ogc:def:crs:(?:EPSG|OGC):[0-9.]*:[A-Za-z0-9]+|EPSG:\d+)$",
                       re.IGNORECASE)
UTF8_BOM = b"\xef\xbb\xbf"
# Triggers GDAL writes into GeoPackages: the R-tree index ones (GeoPackage 1.3 annex F.3) and
# its feature count, on the feature table they belong to; the standard's checks of the tile
# matrix and metadata tables.
RTREE_TRIGGER = re.compile(r"^.+_(?:insert|update[1-7]?|delete)$")  # after rtree_<table>_
GPKG_TABLE_TRIGGERS = {
    "gpkg_tile_matrix": re.compile(r"^gpkg_tile_matrix_(?:zoom_level|matrix_width|"
                                   r"matrix_height|pixel_x_size|pixel_y_size)_"
                                   r"(?:insert|update)$"),
    "gpkg_metadata": re.compile(r"^gpkg_metadata_md_scope_(?:insert|update)$"),
    "gpkg_metadata_reference": re.compile(r"^gpkg_metadata_reference_\w+_(?:insert|update)$"),
}
VIRTUAL_MODULE = re.compile(r"\bUSING\s+([A-Za-z0-9_]+)", re.IGNORECASE)


def driver_for(path: Path) -> str:
    """The GDAL driver that reads this format, from the file name's suffix."""
    return DRIVERS[path.suffix.lower()]


def check_file(path: Path) -> list[str]:
    """Everything that stops this file from being opened with its format's driver."""
    suffix = path.suffix.lower()
    try:
        if suffix in MAGIC and not _starts_with(path, MAGIC[suffix]):
            return [f"is not a {_FORMAT_NAMES.get(suffix, suffix)} file (its first bytes do "
                    "not match the format)"]
        problems = _indirections(path) if suffix in TEXT_SUFFIXES else []
        if problems:
            return problems
        check = _CHECKS.get(suffix)
        return check(path) if check else []
    except OSError as err:
        return [f"cannot be read: {err.strerror or err}"]


def check_shapefile_archive(path: Path) -> list[str]:
    """A zipped Shapefile read in place: each Shapefile part must be what its name says."""
    problems: list[str] = []
    try:
        with zipfile.ZipFile(path) as bundle:
            for member in bundle.infolist():
                suffix = PurePosixPath(member.filename).suffix.lower()
                if member.is_dir() or suffix not in SHAPEFILE_PARTS:
                    continue  # the Shapefile driver reads nothing else
                with bundle.open(member) as stream:
                    problems += [f"{member.filename}: {p}"
                                 for p in _check_stream(stream, suffix)]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        return [f"not a readable zip archive: {err}"]
    return problems


def check_shapefile_parts(paths: list[Path]) -> list[str]:
    """The extracted parts of an uploaded Shapefile, the same checks as in an archive."""
    problems = []
    for path in paths:
        with path.open("rb") as stream:
            problems += [f"{path.name}: {p}"
                         for p in _check_stream(stream, path.suffix.lower())]
    return problems


# -- per format --------------------------------------------------------------------------

def _check_geojson(path: Path) -> list[str]:
    with path.open("rb") as handle:
        head = handle.read(4096)
    text = head.removeprefix(UTF8_BOM).lstrip(JSON_SPACE)
    if not text.startswith(b"{"):
        return ["cannot be read as vector data: GeoJSON must be a JSON object (its text "
                "must start with '{')"]
    return _crs_problems(path)


def _check_csv(path: Path) -> list[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            if b"\x00" in chunk:
                return [f"is not CSV text: byte {offset + chunk.index(b'\x00')} is a NUL"]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                return [f"is not UTF-8 text: invalid byte at {offset + err.start}"]
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return ["is not UTF-8 text: it ends inside a character"]
    return []


class _RootFound(Exception):
    pass


class _RootElement(xml.sax.handler.ContentHandler):
    """Stops the parse at the root element: a DTD, and so any entity declaration or external
    reference, can only come before it (an undeclared entity later is a well-formedness
    error for GDAL's expat too), so the prolog is all there is to check."""

    def __init__(self) -> None:
        super().__init__()
        self.root: str | None = None

    def startElementNS(self, name, qname, attrs) -> None:  # noqa: N802 (SAX API)
        self.root = name[1]
        raise _RootFound


def _check_kml(path: Path) -> list[str]:
    handler = _RootElement()
    parser = defusedxml.sax.make_parser()
    parser.forbid_dtd = True
    parser.forbid_entities = True
    parser.forbid_external = True
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setFeature(xml.sax.handler.feature_external_pes, False)
    parser.setContentHandler(handler)
    try:
        parser.parse(str(path))
    except _RootFound:
        pass
    except DefusedXmlException as err:
        return ["KML with a DTD, entities or external references is refused "
                f"({type(err).__name__})"]
    except (xml.sax.SAXException, ValueError) as err:
        return [f"is not well-formed XML: {err}"]
    if handler.root != "kml":
        return [f"is not KML: its root element is {handler.root!r}, not 'kml'"]
    return []


def _check_geopackage(path: Path) -> list[str]:
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    except sqlite3.Error as err:
        return [f"is not a readable GeoPackage: {err}"]
    problems = []
    for kind, name, table, sql in rows:
        if kind == "view":
            problems.append(f"GeoPackage with a view ({name!r}) is refused: views run SQL "
                            "when read")
        elif kind == "trigger" and not _standard_trigger(name, table):
            problems.append(f"GeoPackage with a trigger that is not a standard GeoPackage "
                            f"one ({name!r}) is refused")
        elif kind == "table" and sql and sql.lstrip().upper().startswith("CREATE VIRTUAL"):
            module = VIRTUAL_MODULE.search(sql)
            if not (module and module.group(1).lower() == "rtree"
                    and name.startswith("rtree_")):
                problems.append(f"GeoPackage with a virtual table ({name!r}, module "
                                f"{module.group(1) if module else 'unknown'}) is refused: "
                                "only R-tree spatial indexes are accepted")
    return problems


def _standard_trigger(name: str, table: str) -> bool:
    if table in GPKG_TABLE_TRIGGERS:
        return bool(GPKG_TABLE_TRIGGERS[table].match(name))
    if name in (f"trigger_insert_feature_count_{table}", f"trigger_delete_feature_count_{table}"):
        return True
    rest = name.removeprefix(f"rtree_{table}_")
    return rest != name and bool(RTREE_TRIGGER.match(rest))


_CHECKS = {".geojson": _check_geojson, ".json": _check_geojson, ".csv": _check_csv,
           ".kml": _check_kml, ".gpkg": _check_geopackage, ".zip": check_shapefile_archive}
_FORMAT_NAMES = {".gpkg": "GeoPackage", ".tif": "GeoTIFF", ".tiff": "GeoTIFF", ".nc": "NetCDF",
                 ".fgb": "FlatGeobuf", ".shp": "Shapefile", ".shx": "Shapefile index",
                 ".dbf": "dBase"}


# -- GeoJSON crs members -----------------------------------------------------------------

def _crs_problems(path: Path) -> list[str]:
    """Every member named `crs` (at any depth: GDAL also reads one on a geometry) must be
    null or name a CRS GDAL resolves from its own database."""
    problems: list[str] = []
    with path.open("rb") as probe:
        for offset, _ in _matches(path, CRS_KEY):
            problem = _crs_value_problem(probe, offset)
            if problem:
                problems.append(problem)
                break  # one is enough to refuse the file
    return problems


def _crs_value_problem(probe, key_end: int) -> str | None:
    probe.seek(key_end)
    if _next_token(probe) != b":":
        return None  # a string value "crs", not a member name
    first = _next_token(probe)
    if first == b"n":
        return None  # null
    if first != b"{":
        return "GeoJSON crs member is not an object: only named CRSs are accepted"
    text = _object_text(probe, b"{")
    if text is None:
        return (f"GeoJSON crs member is larger than {MAX_CRS_BYTES // 1024} KiB: only named "
                "CRSs are accepted")
    try:
        crs = json.loads(text)
    except ValueError:
        return "GeoJSON crs member is not valid JSON"
    return _crs_object_problem(crs)


def _crs_object_problem(crs: dict) -> str | None:
    kind = str(crs.get("type", "")).lower()
    properties = crs.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    if kind == "name" and isinstance(properties.get("name"), str) and NAMED_CRS.match(
            properties["name"].strip()):
        return None
    if kind == "epsg" and isinstance(properties.get("code"), int):
        return None
    if kind == "link" or "href" in properties:
        return ("GeoJSON crs of type link (an href) is refused: the server never fetches a "
                "CRS; name it instead (for example urn:ogc:def:crs:EPSG::32643) or use "
                "WGS 84 coordinates without a crs member")
    return ("GeoJSON crs member does not name a CRS by EPSG code or OGC URN (for example "
            "urn:ogc:def:crs:EPSG::32643)")


def _next_token(probe) -> bytes:
    """The next non-whitespace byte ('' at the end of the file)."""
    while True:
        block = probe.read(4096)
        if not block:
            return b""
        stripped = block.lstrip(JSON_SPACE)
        if stripped:
            probe.seek(-len(stripped) + 1, 1)
            return stripped[:1]


def _object_text(probe, first: bytes) -> bytes | None:
    """The JSON object starting with `first`, read up to MAX_CRS_BYTES; None if longer."""
    data = first + probe.read(MAX_CRS_BYTES)
    depth, in_string, escaped = 0, False, False
    for index, byte in enumerate(data):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
        elif byte in (0x7D, 0x5D):
            depth -= 1
            if depth == 0:
                return data[: index + 1]
    return None


# -- shared helpers ----------------------------------------------------------------------

def _indirections(path: Path) -> list[str]:
    for _, marker in _markers(path):
        what = "a GDAL virtual file system path" if marker == b"/vsi" else "a GDAL VRT"
        return [f"holds {what} ({MARKER_NAMES[marker]}): files that make the server open "
                "other files or URLs are refused"]
    return []


def _markers(path: Path) -> Iterator[tuple[int, bytes]]:
    for offset, window in _windows(path):
        for marker in INDIRECTIONS:
            found = window.find(marker)
            if found >= 0:
                yield offset + found, marker


def _matches(path: Path, pattern: re.Pattern) -> Iterator[tuple[int, re.Match]]:
    """(offset just after the match, match) over the lower-cased file, each match once."""
    seen_until = -1
    for offset, window in _windows(path):
        for match in pattern.finditer(window):
            end = offset + match.end()
            if end > seen_until:
                seen_until = end
                yield end, match


def _windows(path: Path) -> Iterator[tuple[int, bytes]]:
    """Lower-cased chunks of the file, each starting with the previous one's last bytes."""
    tail = b""
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            window = tail + chunk.lower()
            yield offset - len(tail), window
            tail = window[-OVERLAP:]
            offset += len(chunk)


def _check_stream(stream, suffix: str) -> list[str]:
    """Magic number and, for text parts, indirection markers of one Shapefile part."""
    head = stream.read(16)
    if suffix in MAGIC and not any(head.startswith(m) for m in MAGIC[suffix]):
        return [f"is not a {_FORMAT_NAMES.get(suffix, suffix)} file (its first bytes do not "
                "match the format)"]
    if suffix in TEXT_SUFFIXES:
        tail = head.lower()
        while True:
            for marker in INDIRECTIONS:
                if marker in tail:
                    return ["holds a GDAL VRT or virtual file system path: refused"]
            chunk = stream.read(CHUNK)
            if not chunk:
                return []
            tail = tail[-OVERLAP:] + chunk.lower()
    return []


def _starts_with(path: Path, prefixes: tuple[bytes, ...]) -> bool:
    with path.open("rb") as handle:
        head = handle.read(16)
    return any(head.startswith(prefix) for prefix in prefixes)
