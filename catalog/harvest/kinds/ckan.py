"""A CKAN portal (HDX, national open-data portals): packages from the action API's
`package_search`, paged with `start`/`rows` up to remote.MAX_DATASETS.

CKAN licence ids are mapped to SPDX where the meaning is the same; any other licence is kept
only as an https `license_url`. A package's extent comes from the `spatial` extra (GeoJSON), as
ckanext-spatial writes it; its dates from `temporal_start`/`temporal_end` extras or HDX's
`dataset_date` ("[2020-01-01T00:00:00 TO 2020-12-31T23:59:59]").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from catalog.harvest import remote
from catalog.harvest.fetch import Fetcher, FetchError
from catalog.harvest.remote import RemoteDataset
from catalog.safe_parse import UnsafeInput, parse_json

PAGE_ROWS = 100
SPDX_OF_CKAN = {"cc-by": "CC-BY-4.0", "cc-by-sa": "CC-BY-SA-4.0", "cc-zero": "CC0-1.0",
                "odc-odbl": "ODbL-1.0", "odc-by": "ODC-By-1.0", "odc-pddl": "PDDL-1.0",
                "cc-by-igo": "CC-BY-3.0-IGO"}
HDX_DATE = re.compile(r"^\[(\S+) TO (\S+)\]$")


class CkanKind:
    name = "ckan"

    def __init__(self, query: str | None = None):
        self.query = query

    def datasets(self, fetcher: Fetcher, url: str) -> Iterator[RemoteDataset]:
        base = url.rstrip("/")
        search = f"{base}/api/3/action/package_search"
        start = 0
        while start < remote.MAX_DATASETS:
            params = {"rows": PAGE_ROWS, "start": start}
            if self.query:
                params["q"] = self.query
            result = _result(fetcher.json(search, params), search)
            packages = [p for p in result["results"] if isinstance(p, dict)]
            for package in packages[:remote.MAX_DATASETS - start]:
                if isinstance(package.get("name"), str):
                    yield _dataset(package, base)
            start += len(result["results"])
            if not result["results"] or start >= _count(result):
                return


def _result(document: object, url: str) -> dict:
    if not isinstance(document, dict) or document.get("success") is not True or \
            not isinstance(document.get("result"), dict) or \
            not isinstance(document["result"].get("results"), list):
        raise FetchError(f"{url}: not a CKAN package_search answer", code="not_ckan",
                         params={"url": url})
    return document["result"]


def _count(result: dict) -> int:
    count = result.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def _dataset(package: dict, base: str) -> RemoteDataset:
    extras = _extras(package)
    start, end = _dates(package, extras)
    organisation = package.get("organization")
    publisher = remote.text(organisation.get("title"), 200) \
        if isinstance(organisation, dict) else ""
    tags = [t.get("name") for t in package.get("tags", []) if isinstance(t, dict)] \
        if isinstance(package.get("tags"), list) else []
    resources = package.get("resources") if isinstance(package.get("resources"), list) else []
    formats = sorted({remote.text(r.get("format"), 20) for r in resources
                      if isinstance(r, dict) and r.get("format")})[:10]
    return RemoteDataset(
        remote_id=remote.text(package["name"], 200),
        title=remote.text(package.get("title"), remote.MAX_TITLE),
        description=remote.text(package.get("notes")),
        landing_url=f"{base}/dataset/{remote.text(package['name'], 200)}",
        keywords=remote.keywords(tags),
        licence=_licence(package),
        attribution=remote.text(package.get("dataset_source"), 500) or None,
        bbox=_bbox(extras.get("spatial")),
        start=start, end=end,
        publisher=publisher or None,
        extra={"kind": "ckan", "resource_formats": formats,
               "modified": remote.text(package.get("metadata_modified"), 40)})


def _extras(package: dict) -> dict[str, str]:
    extras = package.get("extras")
    if not isinstance(extras, list):
        return {}
    return {e["key"]: e["value"] for e in extras if isinstance(e, dict)
            and isinstance(e.get("key"), str) and isinstance(e.get("value"), str)}


def _licence(package: dict) -> str | None:
    spdx = SPDX_OF_CKAN.get(remote.text(package.get("license_id"), 50).lower())
    if spdx:
        return spdx
    url = remote.text(package.get("license_url"), 500)
    return url if url.startswith("https://") else None


def _bbox(spatial: str | None) -> tuple[float, float, float, float] | None:
    """The bounds of a GeoJSON geometry's coordinates (ckanext-spatial's `spatial` extra)."""
    if not spatial or len(spatial) > 100_000:
        return None
    try:
        geometry = parse_json(spatial, what="the spatial extra")
    except UnsafeInput:
        return None
    points = list(_positions(geometry.get("coordinates") if isinstance(geometry, dict) else None))
    if not points:
        return None
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return remote.bbox([min(lons), min(lats), max(lons), max(lats)])


def _positions(value: object) -> Iterator[tuple[float, float]]:
    if isinstance(value, list) and len(value) >= 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value[:2]):
        yield float(value[0]), float(value[1])
    elif isinstance(value, list):
        for part in value[:10_000]:
            yield from _positions(part)


def _dates(package: dict, extras: dict[str, str]):
    match = HDX_DATE.match(remote.text(package.get("dataset_date"), 80))
    if match:
        return remote.date(match[1]), remote.date(match[2])
    return remote.date(extras.get("temporal_start")), remote.date(extras.get("temporal_end"))
