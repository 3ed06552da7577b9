"""A CSW 2.0.2 catalogue (GeoNetwork, pycsw, ESRI Geoportal): GetRecords in Dublin Core
(`csw:Record`, element set `full`) by HTTP GET, paged with startPosition/nextRecord. The URL is
the service endpoint. A record's page for people is its GetRecordById URL (provenance points
there). Dublin Core carries no temporal extent, so no dates are read; `dc:rights` is a licence
only when it is an https URL (CSW servers often put "otherRestrictions" there).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode
from xml.etree.ElementTree import Element

from catalog.harvest import remote
from catalog.harvest.fetch import Fetcher, FetchError
from catalog.harvest.remote import RemoteDataset

CSW = "http://www.opengis.net/cat/csw/2.0.2"
NS = {"csw": CSW, "dc": "http://purl.org/dc/elements/1.1/", "dct": "http://purl.org/dc/terms/",
      "ows": "http://www.opengis.net/ows"}
PAGE_SIZE = 50


class CswKind:
    name = "csw"

    def datasets(self, fetcher: Fetcher, url: str) -> Iterator[RemoteDataset]:
        position, seen = 1, 0
        while seen < remote.MAX_DATASETS:
            root = fetcher.xml(url, {
                "service": "CSW", "version": "2.0.2", "request": "GetRecords",
                "typeNames": "csw:Record", "elementSetName": "full",
                "resultType": "results", "outputSchema": CSW,
                "startPosition": position, "maxRecords": PAGE_SIZE})
            results = root.find("csw:SearchResults", NS)
            if root.tag != f"{{{CSW}}}GetRecordsResponse" or results is None:
                raise FetchError(f"{url}: not a CSW 2.0.2 GetRecords answer", code="not_csw",
                                 params={"url": url})
            for record in results.findall("csw:Record", NS)[:remote.MAX_DATASETS - seen]:
                found = _dataset(record, url)
                if found is not None:
                    seen += 1
                    yield found
            following = _integer(results.get("nextRecord"))
            if not following or following <= position:
                return
            position = following


def _dataset(record: Element, url: str) -> RemoteDataset | None:
    identifier = _text(record, "dc:identifier", 200)
    if not identifier:
        return None
    rights = _text(record, "dc:rights", 500)
    return RemoteDataset(
        remote_id=identifier,
        title=_text(record, "dc:title", remote.MAX_TITLE),
        description=_text(record, "dct:abstract") or _text(record, "dc:description"),
        landing_url=f"{url}?" + urlencode({
            "service": "CSW", "version": "2.0.2", "request": "GetRecordById",
            "id": identifier, "elementSetName": "full", "outputSchema": CSW}),
        keywords=remote.keywords([element.text for element in record.findall("dc:subject", NS)
                                  if not element.get("scheme")]),
        licence=rights if rights.startswith("https://") else None,
        bbox=_bbox(record),
        publisher=_text(record, "dc:publisher", 200) or _text(record, "dc:creator", 200) or None,
        extra={"kind": "csw", "type": _text(record, "dc:type", 50)})


def _text(record: Element, path: str, limit: int = remote.MAX_TEXT) -> str:
    element = record.find(path, NS)
    return remote.text(element.text if element is not None else None, limit)


def _bbox(record: Element) -> tuple[float, float, float, float] | None:
    """ows:WGS84BoundingBox (longitude first) or ows:BoundingBox in EPSG:4326 (latitude first,
    as the EPSG axis order says; CRS84 is longitude first)."""
    for tag, latitude_first in (("ows:WGS84BoundingBox", False), ("ows:BoundingBox", None)):
        box = record.find(tag, NS)
        if box is None:
            continue
        crs = box.get("crs") or ""
        if latitude_first is None:
            if "CRS84" in crs.upper():
                latitude_first = False
            elif crs.endswith(":4326"):
                latitude_first = True
            else:
                continue  # another CRS: not read
        lower, upper = _corner(box, "ows:LowerCorner"), _corner(box, "ows:UpperCorner")
        if lower is None or upper is None:
            continue
        if latitude_first:
            lower, upper = lower[::-1], upper[::-1]
        return remote.bbox([lower[0], lower[1], upper[0], upper[1]])
    return None


def _corner(box: Element, tag: str) -> list[float] | None:
    element = box.find(tag, NS)
    parts = (element.text or "").split() if element is not None else []
    try:
        values = [float(part) for part in parts]
    except ValueError:
        return None
    return values if len(values) == 2 else None


def _integer(value: str | None) -> int:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 10 else 0
