"""What a harvester reads from a remote catalog, whatever its kind: one `RemoteDataset` per
remote dataset, and the protocol every kind of source implements (one file per kind).

Values are checked as they are read: remote text is cut to sane lengths, a bbox must be four
finite numbers in WGS 84 ranges, dates must be ISO dates; anything else is left out (and the
mapping to a manifest says what is missing rather than inventing it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from catalog.harvest.fetch import Fetcher

MAX_TEXT = 4000
MAX_TITLE = 300
MAX_KEYWORDS = 30
MAX_DATASETS = 500  # per source and run: a larger answer is cut, and the report says so


@dataclass(frozen=True)
class RemoteDataset:
    remote_id: str
    title: str
    description: str
    landing_url: str  # where a person reads the remote record (provenance points here)
    keywords: tuple[str, ...] = ()
    licence: str | None = None  # an SPDX id or an https URL, when the remote gives one
    attribution: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    publisher: str | None = None
    extra: dict = field(default_factory=dict)  # kind-specific facts kept in provenance

    def fingerprint(self) -> str:
        """What decides 'changed' between runs: every field read from the remote."""
        data = asdict(self)
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class SourceKind(Protocol):
    """A kind of remote catalog: reads every dataset it lists, bounded by the fetcher."""

    name: str

    def datasets(self, fetcher: Fetcher, url: str) -> Iterable[RemoteDataset]: ...


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """A remote string, stripped of control characters and cut to `limit`; '' otherwise."""
    if isinstance(value, dict):  # a language map: English first
        value = value.get("en") or next((v for v in value.values() if isinstance(v, str)), "")
    if not isinstance(value, str):
        return ""
    cleaned = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", value).strip()
    return cleaned[:limit]


def keywords(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    found = [text(v, 80) for v in values[:MAX_KEYWORDS]]
    return tuple(dict.fromkeys(k for k in found if k))


def bbox(value: Any) -> tuple[float, float, float, float] | None:
    """A WGS 84 [west, south, east, north] (the first box of a list of boxes), or None."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        value = value[0]
    if not isinstance(value, list) or len(value) not in (4, 6):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in value):
        return None
    west, south, east, north = (value[0], value[1], value[3], value[4]) if len(value) == 6 \
        else value
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        return None
    return float(west), float(south), float(east), float(north)


def date(value: Any) -> dt.date | None:
    """The day of an ISO 8601 date or date-time, or None."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None
