"""A published dataset version, typed: the contract between publishing and every reader.

Publishing (catalog/publish.py) writes one `record.json` into each version folder with
`write_record`; every reader gets a `Record` from `read_record` (through
`CatalogStore.record`). Nothing else parses or writes that file, so its shape is decided here.

`Record.from_json` accepts every shape the pipeline has written (tests/test_record.py keeps
one of each): pipeline 1 (before the stored feature text) and 2 have the same keys; keys added
later (the manifest's `role`) are optional, and keys a later pipeline adds are ignored, so an
old server can still read a newer record. A record that lacks a required key or has one of
the wrong type raises `RecordError` naming it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_FILE = "record.json"
# The manifest as published, copied beside the assets; served like them but not an asset.
MANIFEST_FILE = "manifest.yaml"
MANIFEST_MEDIA_TYPE = "application/yaml"
KINDS = ("vector", "raster")


class RecordError(ValueError):
    """A record.json this code cannot read: a required key missing or of the wrong type."""


# -- the manifest as published -------------------------------------------------------------

@dataclass(frozen=True)
class Steward:
    name: str
    organisation: str
    email: str


@dataclass(frozen=True)
class SourceReference:
    """An original dataset this one was derived from."""

    title: str
    href: str
    licence: str
    version: str | None = None
    package: str | None = None


@dataclass(frozen=True)
class Provenance:
    method: str
    derived_from: tuple[SourceReference, ...]
    limitations: str | None = None


@dataclass(frozen=True)
class TemporalExtent:
    start: dt.date
    end: dt.date | None = None  # None: ongoing

    def as_json(self) -> dict:
        return {"start": self.start.isoformat(),
                "end": self.end.isoformat() if self.end else None}


@dataclass(frozen=True)
class PublishedManifest:
    """The steward's manifest as it was published (no local paths). Text fields map language
    codes (catalog.core.languages) to text; English is always there."""

    id: str
    theme: str
    title: dict[str, str]
    description: dict[str, str]
    keywords: dict[str, list[str]]
    licence: str  # an SPDX identifier or an http(s) URL
    attribution: str
    steward: Steward
    nature: str  # observed, modelled or synthetic
    provenance: Provenance
    update_frequency: str
    temporal_extent: TemporalExtent
    id_field: str | None = None
    raster: dict[str, Any] = field(default_factory=dict)  # hints for rasters: band_name, unit
    role: str | None = None  # what the processes use it as (docs/manifest.md, "role")

    @property
    def licence_is_url(self) -> bool:
        return self.licence.startswith(("https://", "http://"))

    def as_json(self) -> dict:
        data = {
            "id": self.id, "theme": self.theme, "title": dict(self.title),
            "description": dict(self.description),
            "keywords": {lang: list(words) for lang, words in self.keywords.items()},
            "licence": self.licence, "attribution": self.attribution,
            "steward": dataclasses.asdict(self.steward), "nature": self.nature,
            "provenance": provenance_json(self.provenance),
            "update_frequency": self.update_frequency, "id_field": self.id_field,
            "raster": dict(self.raster), "temporal_extent": self.temporal_extent.as_json(),
        }
        if self.role is not None:  # records before roles had no such key
            data["role"] = self.role
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> PublishedManifest:
        extent = _mapping(data, "temporal_extent")
        return cls(
            id=_text(data, "id"), theme=_text(data, "theme"), title=_texts(data, "title"),
            description=_texts(data, "description"), keywords=_keywords(data),
            licence=_text(data, "licence"), attribution=_text(data, "attribution"),
            steward=_steward(_mapping(data, "steward")), nature=_text(data, "nature"),
            provenance=_provenance(_mapping(data, "provenance")),
            update_frequency=_text(data, "update_frequency"),
            temporal_extent=TemporalExtent(_date(extent, "start"),
                                           _date(extent, "end", optional=True)),
            id_field=_optional_text(data, "id_field"),
            raster=dict(data.get("raster") or {}), role=_optional_text(data, "role"),
        )


def provenance_json(provenance: Provenance) -> dict:
    """Provenance as published (and shown as is in STAC's taza:provenance)."""
    return dataclasses.asdict(provenance) | {
        "derived_from": [dataclasses.asdict(ref) for ref in provenance.derived_from]}


# -- files and facts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Asset:
    """One published file of a dataset version."""

    key: str  # the STAC asset key, e.g. 'geopackage'
    file: str  # file name inside the version folder
    title: str
    media_type: str
    roles: tuple[str, ...]
    size: int
    checksum: str  # multihash: sha2-256 code 0x12, length 0x20, then the hex digest

    def as_json(self) -> dict:
        return {"key": self.key, "file": self.file, "title": self.title,
                "media_type": self.media_type, "roles": list(self.roles), "size": self.size,
                "checksum": self.checksum}

    @classmethod
    def from_json(cls, data: Mapping) -> Asset:
        return cls(key=_text(data, "key"), file=_text(data, "file"), title=_text(data, "title"),
                   media_type=_text(data, "media_type"),
                   roles=tuple(_list(data, "roles")), size=_int(data, "size"),
                   checksum=_text(data, "checksum"))


@dataclass(frozen=True)
class VectorFacts:
    table: str  # the GeoPackage table
    bbox: tuple[float, float, float, float]  # EPSG:4326
    feature_count: int
    geometry_type: str
    fields: dict[str, str]  # name -> fiona type, in the layer's order

    def as_json(self) -> dict:
        return {"table": self.table, "bbox": list(self.bbox),
                "feature_count": self.feature_count, "geometry_type": self.geometry_type,
                "fields": dict(self.fields)}

    @classmethod
    def from_json(cls, data: Mapping) -> VectorFacts:
        return cls(table=_text(data, "table"), bbox=_bbox(data), feature_count=_int(
            data, "feature_count"), geometry_type=_text(data, "geometry_type"),
            fields=dict(_mapping(data, "fields")))


@dataclass(frozen=True)
class BandStatistics:
    minimum: float
    maximum: float
    mean: float
    stddev: float
    valid_percent: float

    @classmethod
    def from_json(cls, data: Mapping) -> BandStatistics:
        return cls(**{name: _number(data, name) for name in
                      ("minimum", "maximum", "mean", "stddev", "valid_percent")})


@dataclass(frozen=True)
class Band:
    data_type: str
    statistics: BandStatistics | None  # None: no valid cell
    spatial_resolution: float | None = None
    nodata: float | None = None
    unit: str | None = None
    name: str | None = None  # the band's description in the published file (None: none given)

    def as_json(self) -> dict:
        statistics = dataclasses.asdict(self.statistics) if self.statistics else {}  # no data
        data: dict[str, Any] = {"data_type": self.data_type, "statistics": statistics,
                                "spatial_resolution": self.spatial_resolution}
        if self.nodata is not None:  # written only when the raster has one
            data["nodata"] = self.nodata
        if self.unit:
            data["unit"] = self.unit
        if self.name:
            data["name"] = self.name
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> Band:
        statistics = data.get("statistics")
        return cls(data_type=_text(data, "data_type"),
                   statistics=BandStatistics.from_json(statistics) if statistics else None,
                   spatial_resolution=data.get("spatial_resolution"),
                   nodata=data.get("nodata"), unit=data.get("unit"), name=data.get("name"))


@dataclass(frozen=True)
class RasterFacts:
    item_id: str
    bbox: tuple[float, float, float, float]  # EPSG:4326
    epsg: int | None
    crs_wkt: str
    shape: tuple[int, int]  # rows, columns
    transform: tuple[float, ...]  # the six GDAL/affine coefficients a-f
    bands: tuple[Band, ...]
    asset: Asset | None = None  # the COG (set in a record; conversion reports it apart)
    # The time step an item of a time series stands for (manifest `items`); None: the
    # dataset's temporal extent (a single raster or a tile of a mosaic).
    start: dt.date | None = None
    end: dt.date | None = None

    def as_json(self) -> dict:
        data = {"item_id": self.item_id, "bbox": list(self.bbox), "epsg": self.epsg,
                "crs_wkt": self.crs_wkt, "shape": list(self.shape),
                "transform": list(self.transform),
                "bands": [band.as_json() for band in self.bands]}
        if self.asset is not None:
            data["asset"] = self.asset.as_json()
        if self.start is not None and self.end is not None:  # written only for time steps
            data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> RasterFacts:
        asset = data.get("asset")
        return cls(item_id=_text(data, "item_id"), bbox=_bbox(data),
                   epsg=data.get("epsg"), crs_wkt=str(data.get("crs_wkt") or ""),
                   shape=tuple(_list(data, "shape")), transform=tuple(_list(data, "transform")),
                   bands=tuple(Band.from_json(b) for b in _list(data, "bands")),
                   asset=Asset.from_json(asset) if asset else None,
                   start=_date(data, "start", optional=True),
                   end=_date(data, "end", optional=True))


@dataclass(frozen=True)
class Software:
    """What wrote the version; `pipeline` changes when conversion output changes."""

    catalog: str
    pipeline: str

    def as_json(self) -> dict:
        return {"taza-catalog": self.catalog, "pipeline": self.pipeline}


# -- the record ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One immutable dataset version: its manifest, files, and the facts read from its data."""

    id: str
    kind: str  # 'vector' or 'raster'
    version: int
    fingerprint: str  # same manifest, same source, same pipeline: same fingerprint
    published_at: dt.datetime  # UTC, whole seconds
    software: Software
    manifest: PublishedManifest
    source_file: str  # the steward's file name, without its folder
    assets: tuple[Asset, ...]
    vector: VectorFacts | None = None  # vector layers
    rasters: tuple[RasterFacts, ...] = ()  # rasters: one entry per item
    # A raster dataset of several items: the one layer the APIs serve (asset 'layer'): the
    # items' bands in time order for a time series, their mosaic for tiles. None: one item.
    layer: RasterFacts | None = None

    @property
    def is_vector(self) -> bool:
        return self.kind == "vector"

    @property
    def raster(self) -> RasterFacts:
        """The (first) raster of a raster dataset."""
        if not self.rasters:
            raise LookupError(f"{self.id} version {self.version} is not a raster dataset")
        return self.rasters[0]

    @property
    def coverage(self) -> RasterFacts:
        """The raster the APIs serve as this dataset's one layer (its only item, or the
        layer built from its items)."""
        return self.layer if self.layer is not None else self.raster

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """The layer's extent in EPSG:4326 longitude/latitude."""
        return self.vector.bbox if self.vector is not None else self.coverage.bbox

    @property
    def role(self) -> str | None:
        return self.manifest.role

    @property
    def published(self) -> str:
        """published_at as written: ISO 8601 with the UTC offset."""
        return self.published_at.isoformat()

    def asset(self, key: str) -> Asset:
        """The asset with this STAC key ('geopackage', 'geojson', 'data')."""
        for asset in self.assets:
            if asset.key == key:
                return asset
        raise LookupError(f"{self.id} version {self.version} has no asset {key!r}")

    def files(self) -> dict[str, str]:
        """Every file a client may fetch from this version: file name -> media type (the
        assets and the published manifest)."""
        return {a.file: a.media_type for a in self.assets} | {MANIFEST_FILE: MANIFEST_MEDIA_TYPE}

    def as_json(self) -> dict:
        data: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "fingerprint": self.fingerprint,
            "published_at": self.published, "software": self.software.as_json(),
            "manifest": self.manifest.as_json(), "source_file": self.source_file,
            "assets": [asset.as_json() for asset in self.assets],
        }
        if self.vector is not None:
            data["vector"] = self.vector.as_json()
        if self.rasters:
            data["rasters"] = [raster.as_json() for raster in self.rasters]
        if self.layer is not None:
            data["layer"] = self.layer.as_json()
        data["version"] = self.version
        return data

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """A Record from record.json's content; RecordError when it cannot be one."""
        if not isinstance(data, Mapping):
            raise RecordError("a record must be a JSON object")
        kind = _text(data, "kind")
        if kind not in KINDS:
            raise RecordError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
        software = data.get("software")
        if not isinstance(software, Mapping):  # optional: it only says what wrote the record
            software = {}
        vector = data.get("vector")
        record = cls(
            id=_text(data, "id"), kind=kind, version=_int(data, "version"),
            fingerprint=_text(data, "fingerprint"), published_at=_instant(data, "published_at"),
            software=Software(str(software.get("taza-catalog", "")),
                              str(software.get("pipeline", "1"))),
            manifest=PublishedManifest.from_json(_mapping(data, "manifest")),
            source_file=str(data.get("source_file") or ""),
            assets=tuple(Asset.from_json(a) for a in _list(data, "assets")),
            vector=VectorFacts.from_json(vector) if vector else None,
            rasters=tuple(RasterFacts.from_json(r) for r in data.get("rasters") or ()),
            layer=RasterFacts.from_json(data["layer"]) if data.get("layer") else None,
        )
        if kind == "vector" and record.vector is None:
            raise RecordError("vector: missing (required for a vector dataset)")
        if kind == "raster" and not record.rasters:
            raise RecordError("rasters: missing (required for a raster dataset)")
        return record


def read_record(path: Path) -> Record:
    """The record in a version folder's record.json (path: the file or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILE
    try:
        return Record.from_json(json.loads(path.read_text(encoding="utf-8")))
    except RecordError as err:
        raise RecordError(f"{path}: {err}") from err


def write_record(record: Record, folder: Path) -> Path:
    """Write record.json into a (staging) version folder; returns its path."""
    path = Path(folder) / RECORD_FILE
    path.write_text(json.dumps(record.as_json(), indent=2, ensure_ascii=False),
                    encoding="utf-8")
    return path


# -- reading JSON values, naming what is wrong ----------------------------------------------------

def _value(data: Mapping, key: str) -> Any:
    if not isinstance(data, Mapping):
        raise RecordError(f"{key}: its parent is not a JSON object")
    if data.get(key) is None:
        raise RecordError(f"{key}: missing")
    return data[key]


def _text(data: Mapping, key: str) -> str:
    value = _value(data, key)
    if not isinstance(value, str):
        raise RecordError(f"{key}: expected text, got {type(value).__name__}")
    return value


def _optional_text(data: Mapping, key: str) -> str | None:
    return _text(data, key) if data.get(key) is not None else None


def _int(data: Mapping, key: str) -> int:
    value = _value(data, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"{key}: expected an integer, got {value!r}")
    return value


def _number(data: Mapping, key: str) -> float:
    value = _value(data, key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RecordError(f"{key}: expected a number, got {value!r}")
    return value


def _mapping(data: Mapping, key: str) -> Mapping:
    value = _value(data, key)
    if not isinstance(value, Mapping):
        raise RecordError(f"{key}: expected an object")
    return value


def _list(data: Mapping, key: str) -> list:
    value = _value(data, key)
    if not isinstance(value, list):
        raise RecordError(f"{key}: expected a list")
    return value


def _texts(data: Mapping, key: str) -> dict[str, str]:
    texts = _mapping(data, key)
    if not all(isinstance(v, str) for v in texts.values()):
        raise RecordError(f"{key}: expected language -> text")
    return dict(texts)


def _keywords(data: Mapping) -> dict[str, list[str]]:
    keywords = _mapping(data, "keywords")
    if not all(isinstance(v, list) for v in keywords.values()):
        raise RecordError("keywords: expected language -> list of keywords")
    return {lang: list(words) for lang, words in keywords.items()}


def _bbox(data: Mapping) -> tuple[float, float, float, float]:
    bbox = _list(data, "bbox")
    if len(bbox) != 4:
        raise RecordError(f"bbox: expected 4 numbers, got {len(bbox)}")
    return tuple(bbox)


def _date(data: Mapping, key: str, optional: bool = False) -> dt.date | None:
    if optional and data.get(key) is None:
        return None
    try:
        return dt.date.fromisoformat(_text(data, key))
    except ValueError as err:
        raise RecordError(f"{key}: not an ISO date ({err})") from err


def _instant(data: Mapping, key: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(_text(data, key))
    except ValueError as err:
        raise RecordError(f"{key}: not an ISO 8601 instant ({err})") from err


def _steward(data: Mapping) -> Steward:
    return Steward(_text(data, "name"), _text(data, "organisation"), _text(data, "email"))


def _provenance(data: Mapping) -> Provenance:
    references = tuple(
        SourceReference(title=_text(ref, "title"), href=_text(ref, "href"),
                        licence=_text(ref, "licence"), version=_optional_text(ref, "version"),
                        package=_optional_text(ref, "package"))
        for ref in data.get("derived_from") or ())
    return Provenance(_text(data, "method"), references, _optional_text(data, "limitations"))
