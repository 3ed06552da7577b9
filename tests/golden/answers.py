"""An HTTP answer as a golden entry (status, the headers that matter, the body normalised),
and the comparison of two entries field by field.

Normalisation removes only what differs between two correct runs (the server's address,
publish and answer times, random job ids, file times); each rule is in MASKING_RULES with the
reason it is safe. Bodies:

- JSON: the parsed value (key order is not part of JSON's meaning), with long arrays of
  numbers (coordinates, coverage values) replaced by their count, first values and SHA-256;
- HTML and other text: the lines, with each embedded JSON block (`<script type="application/
  json">`, JSON-LD) taken out and kept as JSON; text beyond TEXT_LIMIT as SHA-256, size and
  its first lines;
- binary (PNG, GeoTIFF, MVT, GeoPackage) and served files (CSS, JavaScript): SHA-256 and size,
  with the facts a reader needs when the hash changes (raster size, bands, pixel hash; vector
  tile layers and their features' properties).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mapbox_vector_tile
import rasterio
import requests
from rasterio.io import MemoryFile

from tests.golden.cases import Case

SERVER = "http://SERVER"
TEXT_LIMIT = 128 * 1024  # normalised text longer than this is kept as a digest
LONG_NUMBERS = 8  # arrays of numbers with more values than this are kept as a digest
LONG_TEXT = 2000  # JSON strings and text lines longer than this are kept as a digest
HEAD_LINES = 20
SHARED_SIZE = 2000  # values this large found twice in a group are written once
# The masking rules: each hides a value that differs between two correct runs, and nothing
# else. MASKING_RULES is their written form (docs/testing.md repeats it).
MASKING_RULES = {
    "server address": "http://127.0.0.1:<port> becomes http://SERVER (plain, percent-encoded "
                      "and as host:port): tests pick a free port per run.",
    "publish time": "the instants at which the sample datasets were published become "
                    "<published> wherever they appear (STAC created, updated, "
                    "processing:datetime, an open end_datetime, /api published_at, the "
                    "dataset pages' version tables). The instants are read from the public "
                    "/api/datasets/<id>/versions before comparing, so only they are masked.",
    "GeoPackage write time": "GDAL writes the time of conversion into each GeoPackage "
                             "(gpkg_contents.last_change): a .gpkg body is hashed with that "
                             "value blanked, and its checksum in STAC and /api (an object "
                             "whose media type is GeoPackage) becomes <GeoPackage checksum>.",
    "answer time": "features pages carry the time of the answer (timeStamp).",
    "job id": "processing jobs are named with random UUIDs (the Location of an execution).",
    "file time": "Last-Modified and Expires of served files, and werkzeug's file ETag "
                 "(\"<mtime>-<size>-<checksum of the name>\"), hold file or clock times. "
                 "A content ETag (tiles) is kept.",
    "unordered header lists": "Allow, Vary and the CORS method and header lists are sets: "
                              "their order follows Python's per-process hash seed, so they "
                              "are recorded sorted.",
    "dropped headers": "Date, Connection, Keep-Alive, Transfer-Encoding (transport), Server and "
                       "X-Powered-By (the software, not the answer), Server-Timing (timings "
                       "and tile cache state, for operators) and Content-Length (the body "
                       "determines it) are not recorded.",
}
DROPPED_HEADERS = {"date", "connection", "keep-alive", "transfer-encoding", "server",
                   "x-powered-by", "server-timing", "content-length"}
TEXT_TYPES = ("text/html", "text/plain", "text/csv", "application/yaml", "application/x-yaml",
              "text/yaml", "application/xml", "text/xml")
UNORDERED_HEADERS = {"allow", "vary", "access-control-allow-methods",
                     "access-control-allow-headers", "access-control-expose-headers"}
GEOPACKAGE = "application/geopackage+sqlite3"
FILE_ETAG = re.compile(r'^"\d+(\.\d+)?-\d+-\d+"$')  # werkzeug: "<mtime>-<size>-<adler32>"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
GPKG_TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
JSON_BLOCK = re.compile(r'(<script\b[^>]*\btype="application/(?:ld\+)?json"[^>]*>)(.*?)(</script>)',
                        re.DOTALL)


@dataclass(frozen=True)
class Run:
    """What differs between runs of the same catalog: the server's address and the instants
    its datasets were published (ISO 8601, seconds, UTC: '2026-12-03T12:16:38+00:00')."""

    base_url: str
    published: frozenset[str] = frozenset()

    def text(self, text: str) -> str:
        host = self.base_url.removeprefix("http://")
        text = text.replace(self.base_url, SERVER)
        text = text.replace(f"http%3A%2F%2F{host.replace(':', '%3A')}", "http%3A%2F%2FSERVER")
        text = text.replace(host, "SERVER")
        for instant in self.published:
            stem = instant.removesuffix("+00:00")
            for form in (instant, stem + "Z"):
                text = text.replace(form, "<published>")
        return UUID.sub("<uuid>", text)


def publish_instants(session: requests.Session, base_url: str) -> frozenset[str]:
    """When each live dataset was published, from the public /api (see "publish time")."""
    listing = session.get(f"{base_url}/api/datasets", timeout=30)
    listing.raise_for_status()
    instants = set()
    for dataset in listing.json()["datasets"]:
        versions = session.get(f"{base_url}/api/datasets/{dataset['id']}/versions", timeout=30)
        versions.raise_for_status()
        instants |= {v["published_at"] for v in versions.json()["versions"]}
    return frozenset(instants)


# -- capture ----------------------------------------------------------------------------------


def send(session: requests.Session, base_url: str, case: Case) -> requests.Response:
    request = requests.Request(case.method, base_url + case.path, headers=case.headers,
                               data=case.body)
    prepared = session.prepare_request(request)
    return session.send(prepared, allow_redirects=False, timeout=120)


def new_session() -> requests.Session:
    """A client whose own headers are fixed (requests' defaults name its version)."""
    session = requests.Session()
    session.headers = requests.structures.CaseInsensitiveDict(
        {"User-Agent": "taza-golden", "Accept": "*/*", "Accept-Encoding": "identity"})
    session.trust_env = False  # no proxy from the environment between us and 127.0.0.1
    return session


def entry(case: Case, response: requests.Response, run: Run) -> dict:
    """The golden entry of one answer."""
    headers = {}
    for name, value in response.headers.items():
        if name.lower() not in DROPPED_HEADERS:
            headers[_header_name(name)] = _header_value(name, value, run)
    result = {"status": response.status_code, "headers": headers,
              "body": body(response.content, response.headers.get("Content-Type", ""), run)}
    if case.body is not None:
        result["request_body"] = case.body_text
    return result


def _header_name(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _header_value(name: str, value: str, run: Run) -> str:
    lower = name.lower()
    if lower == "last-modified" or lower == "expires":
        return "<time>"  # a file's time, or now + max-age
    if lower == "etag" and FILE_ETAG.match(value.removeprefix("W/")):
        return "<file etag>"  # holds the file's modification time (see FILE_ETAG)
    if lower in UNORDERED_HEADERS:
        value = ", ".join(sorted(part.strip() for part in value.split(",")))
    return run.text(value)


def body(content: bytes, content_type: str, run: Run) -> dict:
    if not content:
        return {"kind": "empty"}
    media = content_type.split(";")[0].strip().lower()
    if media.endswith("/json") or media.endswith("+json"):
        try:
            text = content.decode("utf-8")
            value = json.loads(run.text(text))
        except (UnicodeDecodeError, ValueError):
            pass
        else:
            return {"kind": "json", "json": normalise_json(value)}
    if media in TEXT_TYPES:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return text_body(run.text(text))
    return binary_body(content, media)


def normalise_json(value: Any) -> Any:
    if isinstance(value, dict):
        geopackage = GEOPACKAGE in (value.get("type"), value.get("media_type"))
        return {key: _masked_member(key, geopackage) or normalise_json(item)
                for key, item in value.items()}
    if isinstance(value, list):
        count = _numbers(value)
        if count is not None and count > LONG_NUMBERS:
            return {"~numbers": count, "~first": list(_flat(value))[:4], "~sha256": digest(value)}
        return [normalise_json(item) for item in value]
    if isinstance(value, str) and len(value) > LONG_TEXT:  # WKT in JSON-LD, for example
        return {"~text": value[:120], "~length": len(value), "~sha256": digest(value)}
    return value


def _masked_member(key: str, geopackage: bool) -> str | None:
    if key == "timeStamp":
        return "<timeStamp>"  # "answer time"
    if geopackage and key in ("file:checksum", "checksum"):
        return "<GeoPackage checksum>"  # "GeoPackage write time"
    return None


def _numbers(value: Any) -> int | None:
    """How many numbers an array (of arrays) of numbers and nulls holds; None if it holds
    anything else."""
    if isinstance(value, list):
        total = 0
        for item in value:
            count = _numbers(item)
            if count is None:
                return None
            total += count
        return total
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return 1
    return None


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flat(item)
    else:
        yield value


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_body(text: str) -> dict:
    blocks = []

    def take_block(match: re.Match) -> str:
        try:
            blocks.append(normalise_json(json.loads(match[2])))
        except ValueError:
            return match[0]  # not JSON after all: stays in the text
        return f"{match[1]}@json-block-{len(blocks) - 1}{match[3]}"

    text = JSON_BLOCK.sub(take_block, text)
    if len(text) > TEXT_LIMIT:
        data = text.encode("utf-8")
        return {"kind": "text-digest", "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data), "head": _lines(text)[:HEAD_LINES],
                "json_blocks": blocks}
    result: dict[str, Any] = {"kind": "text", "lines": _lines(text)}
    if blocks:
        result["json_blocks"] = blocks
    return result


def _lines(text: str) -> list[str]:
    return [line if len(line) <= LONG_TEXT else
            f"{line[:120]}... [a line of {len(line)} characters, SHA-256 {digest(line)}]"
            for line in text.split("\n")]


def binary_body(content: bytes, media: str) -> dict:
    if media == GEOPACKAGE:  # "GeoPackage write time"
        content = GPKG_TIME.sub(b"0000-00-00T00:00:00.000Z", content)
    result: dict[str, Any] = {"kind": "binary", "sha256": hashlib.sha256(content).hexdigest(),
                              "size": len(content)}
    facts = None
    if media in ("image/png", "image/tiff", "image/jpeg"):
        facts = raster_facts(content)
    elif media == "application/vnd.mapbox-vector-tile":
        facts = vector_tile_facts(content)
    if facts is not None:
        result["facts"] = facts
    return result


def raster_facts(content: bytes) -> dict | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a PNG tile has no georeferencing, as expected
        try:
            with MemoryFile(content) as memory, memory.open() as dataset:
                pixels = dataset.read()
                return {"width": dataset.width, "height": dataset.height,
                        "bands": dataset.count, "dtypes": list(dataset.dtypes),
                        "crs": dataset.crs.to_string() if dataset.crs else None,
                        "transform": list(dataset.transform)[:6], "nodata": dataset.nodata,
                        "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
        except rasterio.errors.RasterioError:
            return None  # a part of a file (Range), not an image


def vector_tile_facts(content: bytes) -> dict:
    layers = mapbox_vector_tile.decode(content)
    facts = {}
    for name, layer in sorted(layers.items()):
        features = layer["features"]
        facts[name] = {
            "extent": layer.get("extent"), "features": len(features),
            "geometry_types": sorted({f["geometry"]["type"] for f in features}),
            "properties": sorted((f["properties"] for f in features),
                                 key=lambda p: json.dumps(p, sort_keys=True))[:30],
        }
    return facts


# -- golden files -----------------------------------------------------------------------------


def golden_file(entries: dict[str, dict], group: str) -> dict:
    """The document of one group. Headers every answer in it carries are written once, and so
    is each large value found more than once (the portal's strings in every page, a document
    served under two URLs): entries point to it with {"~shared": id}."""
    common = None
    for item in entries.values():
        pairs = set(item["headers"].items())
        common = pairs if common is None else common & pairs
    common_headers = dict(sorted(common or ()))
    seen: dict[str, int] = {}
    for item in entries.values():
        _count_values(item["body"], seen)
    shared: dict[str, Any] = {}
    answers = {}
    for key, item in sorted(entries.items()):
        own = {k: v for k, v in item["headers"].items() if k not in common_headers}
        answers[key] = {**item, "headers": own,
                        "body": _share_values(item["body"], seen, shared)}
    return {"about": f"Golden answers of the group {group!r}: written by `python -m "
                     "tests.golden record`, compared by tests/test_golden.py (see "
                     "tests/golden/__init__.py).",
            "headers_in_every_answer": common_headers, "shared_values": shared,
            "answers": answers}


def _value_id(value: Any) -> tuple[str, int]:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], len(text)


def _count_values(value: Any, seen: dict[str, int]) -> None:
    if isinstance(value, dict | list):
        value_id, size = _value_id(value)
        if size >= SHARED_SIZE:
            seen[value_id] = seen.get(value_id, 0) + 1
        for item in value.values() if isinstance(value, dict) else value:
            _count_values(item, seen)


def _share_values(value: Any, seen: dict[str, int], shared: dict[str, Any]) -> Any:
    if not isinstance(value, dict | list):
        return value
    value_id, size = _value_id(value)
    if size >= SHARED_SIZE and seen.get(value_id, 0) > 1:
        shared[value_id] = value
        return {"~shared": value_id}
    if isinstance(value, dict):
        return {key: _share_values(item, seen, shared) for key, item in value.items()}
    return [_share_values(item, seen, shared) for item in value]


def _expand(value: Any, shared: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"~shared"}:
            return shared[value["~shared"]]
        return {key: _expand(item, shared) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, shared) for item in value]
    return value


def expected_entry(document: dict, key: str) -> dict | None:
    answer = document["answers"].get(key)
    if answer is None:
        return None
    return {**answer, "headers": {**document["headers_in_every_answer"], **answer["headers"]},
            "body": _expand(answer["body"], document["shared_values"])}


def dumps(document: dict) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# -- comparison -------------------------------------------------------------------------------


def differences(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Each difference as 'path: expected ..., got ...'."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(expected.keys() | actual.keys(), key=str):
            path = f"{where}.{key}" if where else str(key)
            if key not in actual:
                found.append(f"{path}: missing (expected {_show(expected[key])})")
            elif key not in expected:
                found.append(f"{path}: unexpected {_show(actual[key])}")
            elif key == "lines" and isinstance(expected[key], list):
                found += _line_diff(path, expected[key], actual[key])
            else:
                found += differences(expected[key], actual[key], path)
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=False)):
            found += differences(left, right, f"{where}[{index}]")
        if len(expected) != len(actual):
            found.append(f"{where}: expected {len(expected)} items, got {len(actual)}"
                         + (f"; extra: {_show(actual[len(expected):])}"
                            if len(actual) > len(expected)
                            else f"; missing: {_show(expected[len(actual):])}"))
        return found
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: expected {_show(expected)}, got {_show(actual)}"]
    return []


def _line_diff(path: str, expected: list, actual: list) -> list[str]:
    if expected == actual:
        return []
    diff = list(difflib.unified_diff(expected, actual, "expected", "got", n=1, lineterm=""))
    shown = diff[2:42] + ([f"... {len(diff) - 42} more diff lines"] if len(diff) > 42 else [])
    return [f"{path}: text differs:"] + ["    " + line for line in shown]


def _show(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
