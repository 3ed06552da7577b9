"""Uploaded files made ready for the publishing pipeline, with every finding on the way.

`stage` takes the file a steward uploaded and writes, into a work folder, one source the
pipeline reads (catalog.sources.vector / raster): GeoPackage, GeoJSON, GeoTIFF and single-
variable NetCDF are used as they are (hard-linked); a zipped Shapefile is checked as an archive
(catalog.sources.archives) and re-zipped with only its own parts; CSV (lon/lat or WKT columns,
WGS 84) and KML are converted to GeoPackage; one variable of a multi-variable NetCDF is
extracted to GeoTIFF. Then every feature or band is checked (catalog.sources.scan).

Before GDAL opens anything, the file's content must be the format its name says
(catalog.sources.content), and GDAL then opens it with that format's driver only. This module
reads hostile bytes: it runs in the isolated reader process (catalog.sources.reader), never in
a server worker.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import fiona
import rasterio
import rasterio.shutil
from fiona.errors import FionaError
from rasterio.errors import RasterioError

from catalog.sources.archives import ArchiveRefused, ZipLimits, extract, safe_members
from catalog.sources.content import check_file, check_shapefile_parts
from catalog.sources.findings import Finding, blocking, has_blocking, notice
from catalog.sources.preview import NoPreview, write_preview
from catalog.sources.raster import DEFAULT_MAX_PIXELS, max_raster_pixels, size_problems
from catalog.sources.scan import scan_raster, scan_vector
from catalog.sources.vector import list_layers, open_vector

FORMATS = {".zip": "zipped Shapefile", ".gpkg": "GeoPackage", ".geojson": "GeoJSON",
           ".json": "GeoJSON", ".csv": "CSV", ".kml": "KML", ".tif": "GeoTIFF",
           ".tiff": "GeoTIFF", ".nc": "NetCDF"}
RASTER_SUFFIXES = (".tif", ".tiff", ".nc")
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
CSV_WKT_NAMES = ("wkt", "geometry", "geom", "the_geom")
CSV_X_NAMES = ("lon", "longitude", "long", "lng", "x")
CSV_Y_NAMES = ("lat", "latitude", "y")
BATCH = 2000
GiB = 1 << 30


class UnsupportedFormat(ValueError):
    """The file name does not end in a format the service reads."""


@dataclass(frozen=True)
class UploadLimits:
    max_upload_bytes: int = 2 * GiB
    max_unzipped_bytes: int = 4 * GiB
    max_attribute_bytes: int = 64 * 1024
    max_raster_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def from_environment(cls) -> UploadLimits:
        """TAZA_UPLOAD_MAX_BYTES, TAZA_UNZIPPED_MAX_BYTES, TAZA_ATTRIBUTE_MAX_BYTES,
        TAZA_RASTER_MAX_PIXELS."""
        defaults = cls()
        return cls(
            int(os.environ.get("TAZA_UPLOAD_MAX_BYTES", defaults.max_upload_bytes)),
            int(os.environ.get("TAZA_UNZIPPED_MAX_BYTES", defaults.max_unzipped_bytes)),
            int(os.environ.get("TAZA_ATTRIBUTE_MAX_BYTES", defaults.max_attribute_bytes)),
            max_raster_pixels(),
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class UploadOptions:
    repair_geometry: bool = False
    variable: str | None = None  # NetCDF variable to publish

    def as_dict(self) -> dict:
        return {"repair": ["geometry"] if self.repair_geometry else [],
                "variable": self.variable}


@dataclass
class Staged:
    """What the pipeline will read, and what was found on the way there."""

    format: str
    kind: str | None = None  # 'vector' | 'raster'; None when nothing usable came out
    source: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    @property
    def publishable(self) -> bool:
        return self.source is not None and not has_blocking(self.findings)


def format_of(filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in FORMATS:
        raise UnsupportedFormat(
            f"unsupported file type {suffix or '(none)'}: upload a zipped Shapefile (.zip), "
            "GeoPackage (.gpkg), GeoJSON (.geojson, .json), CSV (.csv), KML (.kml), "
            "GeoTIFF (.tif, .tiff) or NetCDF (.nc)")
    return FORMATS[suffix]


def stage(original: Path, workdir: Path, options: UploadOptions, limits: UploadLimits,
          id_field: str | None = None) -> Staged:
    """Normalise `original` into workdir/source and check it; never raises on bad data."""
    source_dir = workdir / "source"
    source_dir.mkdir(parents=True, exist_ok=True)
    staged = Staged(format_of(original.name))
    suffix = original.suffix.lower()
    try:
        if suffix == ".zip":
            _stage_zip(original, workdir, source_dir, options, limits, staged)
        else:
            _stage_file(original, source_dir, options, limits, staged)
    except ArchiveRefused as refused:
        staged.findings += refused.findings
        staged.source = None
    if staged.source is not None and not has_blocking(staged.findings):
        _scan(staged, source_dir, options, limits, id_field)
        if staged.facts:  # the scan could read the data: the map can show it
            _preview(staged, workdir)
    return staged


def _preview(staged: Staged, workdir: Path) -> None:
    """The map preview's files in workdir, and the extent among the facts."""
    try:
        staged.facts["extent"] = write_preview(staged.source, staged.kind, workdir)
    except NoPreview as reason:
        staged.findings.append(notice(f"no map preview: {reason}", code="no_preview"))
    except Exception as err:  # noqa: BLE001 - GDAL's errors have no common base; a preview
        # is optional, so a failure to draw it must never refuse an upload the scan passed.
        staged.findings.append(notice("no map preview: the data could not be drawn "
                                      f"({type(err).__name__})", code="no_preview"))


def _stage_file(path: Path, source_dir: Path, options: UploadOptions, limits: UploadLimits,
                staged: Staged) -> None:
    suffix = path.suffix.lower()
    option_problem = _option_problem(suffix, options)
    if option_problem:
        staged.findings.append(option_problem)
        return
    refused = check_file(path)
    if refused:
        staged.findings += [blocking(message, file=path.name) for message in refused]
        return
    staged.kind = "raster" if suffix in RASTER_SUFFIXES else "vector"
    if suffix == ".csv":
        staged.source = _csv_to_geopackage(path, source_dir, staged.findings)
    elif suffix == ".kml":
        staged.source = _kml_to_geopackage(path, source_dir, staged.findings)
    elif suffix == ".nc":
        staged.source = _netcdf_source(path, source_dir, options.variable,
                                       limits.max_raster_pixels, staged.findings)
    else:
        staged.source = _in_source_dir(path, source_dir)


def _option_problem(suffix: str, options: UploadOptions) -> Finding | None:
    if options.repair_geometry and suffix in RASTER_SUFFIXES:
        return blocking("repair=geometry applies to vector uploads, not rasters")
    if options.variable and suffix != ".nc":
        return blocking("variable= applies to NetCDF uploads only")
    return None


def _scan(staged: Staged, source_dir: Path, options: UploadOptions, limits: UploadLimits,
          id_field: str | None) -> None:
    assert staged.source is not None
    if staged.kind == "raster":
        result = scan_raster(staged.source, limits.max_raster_pixels)
    else:
        repair_to = (source_dir / f"{staged.source.stem}.repaired.gpkg"
                     if options.repair_geometry else None)
        result = scan_vector(staged.source, id_field, limits.max_attribute_bytes, repair_to,
                             rows=staged.format == "CSV")
        if result.repaired_source is not None:
            result.findings.append(notice("repaired features are published from a GeoPackage "
                                          "copy; the uploaded file is kept unchanged",
                                          code="repaired_copy"))
            staged.source = result.repaired_source
    staged.findings += result.findings
    staged.facts.update(result.facts)


# -- archives ------------------------------------------------------------------------------

def _stage_zip(archive: Path, workdir: Path, source_dir: Path, options: UploadOptions,
               limits: UploadLimits, staged: Staged) -> None:
    zip_limits = ZipLimits(limits.max_unzipped_bytes)
    members = safe_members(archive, zip_limits)
    shapefiles = [m for m in members if m.filename.lower().endswith(".shp")]
    if len(shapefiles) > 1:
        names = ", ".join(m.filename for m in shapefiles)
        raise ArchiveRefused([blocking(f"holds {len(shapefiles)} Shapefiles ({names}); "
                                       "upload one dataset per archive", file=archive.name)])
    unzipped = workdir / "unzipped"
    try:
        if shapefiles:
            _stage_shapefile(archive, members, shapefiles[0], unzipped, source_dir, zip_limits,
                             options, staged)
        else:
            _stage_single_member(archive, members, unzipped, source_dir, limits, options,
                                 staged)
    finally:
        shutil.rmtree(unzipped, ignore_errors=True)


def _stage_shapefile(archive: Path, members: list[zipfile.ZipInfo], shp: zipfile.ZipInfo,
                     unzipped: Path, source_dir: Path, limits: ZipLimits,
                     options: UploadOptions, staged: Staged) -> None:
    if options.variable:
        staged.findings.append(blocking("variable= applies to NetCDF uploads only"))
        return
    stem = PurePosixPath(shp.filename).stem
    parts = [m for m in members
             if PurePosixPath(m.filename).stem == stem
             and PurePosixPath(m.filename).suffix.lower() in SHAPEFILE_PARTS]
    found = {PurePosixPath(m.filename).suffix.lower() for m in parts}
    for suffix, why in ((".shx", "its index"), (".dbf", "its attributes")):
        if suffix not in found:
            staged.findings.append(blocking(f"the Shapefile has no {suffix} ({why})",
                                            member=shp.filename))
    if ".prj" not in found:
        staged.findings.append(blocking(
            "the Shapefile has no .prj, so its coordinate reference system is unknown: add "
            "the .prj your GIS wrote next to the .shp", member=shp.filename,
            code="shapefile_without_prj"))
    if has_blocking(staged.findings):
        return
    extracted = extract(archive, parts, unzipped, limits)
    refused = check_shapefile_parts(list(extracted.values()))
    if refused:
        staged.findings += [blocking(message, file=archive.name) for message in refused]
        return
    target = source_dir / f"{_safe_stem(stem)}.zip"
    # A clean archive of just this Shapefile's parts, at its root: what the pipeline reads.
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as bundle:
        for name, path in sorted(extracted.items()):
            suffix = Path(name).suffix.lower()
            bundle.write(path, f"{_safe_stem(stem)}{suffix}")
    staged.kind, staged.source = "vector", target
    ignored = sorted(m.filename for m in members if m not in parts)
    if ignored:
        staged.findings.append(notice(f"other archive members ignored: {', '.join(ignored)}",
                                      file=archive.name, code="members_ignored",
                                      params={"members": ", ".join(ignored)}))


def _stage_single_member(archive: Path, members: list[zipfile.ZipInfo], unzipped: Path,
                         source_dir: Path, limits: UploadLimits, options: UploadOptions,
                         staged: Staged) -> None:
    usable = [m for m in members
              if PurePosixPath(m.filename).suffix.lower() in FORMATS
              and not m.filename.lower().endswith(".zip")]
    if len(usable) != 1:
        raise ArchiveRefused([blocking(
            "the archive must hold one Shapefile (.shp with .shx, .dbf, .prj) or one file in "
            f"a supported format; found: {', '.join(m.filename for m in members)}",
            file=archive.name)])
    inner = extract(archive, usable, unzipped, ZipLimits(limits.max_unzipped_bytes))
    path = next(iter(inner.values()))
    staged.format = FORMATS[path.suffix.lower()]
    staged.findings.append(notice(f"read {usable[0].filename} from the archive",
                                  file=archive.name, code="read_from_archive",
                                  params={"member": usable[0].filename}))
    _stage_file(path, source_dir, options, limits, staged)


# -- conversions ---------------------------------------------------------------------------

def _csv_to_geopackage(path: Path, source_dir: Path, findings: list[Finding]) -> Path | None:
    """CSV with a WKT column, or lon/lat columns (WGS 84), to a GeoPackage layer."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        findings.append(blocking(f"cannot be read as UTF-8 CSV: {err}", file=path.name))
        return None
    open_options, described = _csv_geometry_columns(header)
    if open_options is None:
        findings.append(blocking(
            "CSV needs a WKT column (wkt, geometry, geom) or longitude and latitude columns "
            f"(lon/lat, longitude/latitude, x/y); found: {', '.join(header) or 'no header'}",
            file=path.name))
        return None
    target = source_dir / f"{_safe_stem(path.stem)}.gpkg"
    try:
        with fiona.open(path, driver="CSV", KEEP_GEOM_COLUMNS="NO", AUTODETECT_TYPE="YES",
                        AUTODETECT_SIZE_LIMIT="0", **open_options) as source:
            _copy_features(source, target, _safe_stem(path.stem), "EPSG:4326")
    except (FionaError, OSError, ValueError, RuntimeError) as err:
        findings.append(blocking(f"cannot be read as CSV: {err}", file=path.name))
        return None
    findings.append(notice(f"CSV: geometry from {described}, read as WGS 84 "
                           "(EPSG:4326); rows are numbered from 1 after the header",
                           file=path.name, code="csv_geometry",
                           params={"columns": described.rsplit(" ", 1)[-1]}))
    return target


def _csv_geometry_columns(header: list[str]) -> tuple[dict | None, str]:
    by_name = {name.strip().lower(): name.strip() for name in header}
    for candidate in CSV_WKT_NAMES:
        if candidate in by_name:
            return {"GEOM_POSSIBLE_NAMES": by_name[candidate]}, f"WKT column {by_name[candidate]!r}"
    x = next((by_name[n] for n in CSV_X_NAMES if n in by_name), None)
    y = next((by_name[n] for n in CSV_Y_NAMES if n in by_name), None)
    if x and y:
        return {"X_POSSIBLE_NAMES": x, "Y_POSSIBLE_NAMES": y}, f"columns {x!r}/{y!r}"
    return None, ""


def _kml_to_geopackage(path: Path, source_dir: Path, findings: list[Finding]) -> Path | None:
    try:
        layers = list_layers(path)
        counts = {}
        for layer in layers:
            with open_vector(path, layer) as source:
                counts[layer] = len(source)
        filled = [layer for layer, count in counts.items() if count]
        if len(filled) != 1:
            findings.append(blocking(
                f"KML with {len(filled)} folders holding placemarks "
                f"({', '.join(filled) or 'none'}); upload one layer per dataset",
                file=path.name))
            return None
        target = source_dir / f"{_safe_stem(path.stem)}.gpkg"
        with open_vector(path, filled[0]) as source:
            _copy_features(source, target, _safe_stem(path.stem), "EPSG:4326")
    except (FionaError, OSError, ValueError, RuntimeError) as err:
        findings.append(blocking(f"cannot be read as KML: {err}", file=path.name))
        return None
    findings.append(notice(f"KML: placemarks of folder {filled[0]!r} converted to GeoPackage",
                           file=path.name, code="kml_converted",
                           params={"folder": filled[0]}))
    return target


def _copy_features(source, target: Path, layer: str, crs: str) -> None:
    schema = {"geometry": "Unknown", "properties": dict(source.schema["properties"])}
    with fiona.open(target, "w", driver="GPKG", layer=layer, schema=schema, crs=crs) as sink:
        batch = []
        for feature in source:
            batch.append({"geometry": feature.geometry,
                          "properties": dict(feature.properties)})
            if len(batch) == BATCH:
                sink.writerecords(batch)
                batch = []
        sink.writerecords(batch)


def _netcdf_source(path: Path, source_dir: Path, variable: str | None, max_pixels: int,
                   findings: list[Finding]) -> Path | None:
    try:
        with rasterio.open(path, driver="netCDF") as dataset:
            subdatasets = list(dataset.subdatasets)
            count = dataset.count
    except (RasterioError, OSError) as err:
        findings.append(blocking(f"cannot be read as NetCDF: {err}", file=path.name))
        return None
    if count and not subdatasets:
        if variable:
            findings.append(blocking("this NetCDF holds a single variable: leave out variable=",
                                     file=path.name))
            return None
        return _in_source_dir(path, source_dir)
    names = {sub.rsplit(":", 1)[-1]: sub for sub in subdatasets}
    if variable not in names:
        findings.append(blocking(
            f"NetCDF with variables {', '.join(names) or 'none'}: choose one with "
            "variable=NAME", file=path.name, variable=variable or "(none)"))
        return None
    target = source_dir / f"{_safe_stem(path.stem)}-{_safe_stem(variable)}.tif"
    try:
        with rasterio.open(names[variable], driver="netCDF") as grid:
            too_large = size_problems(grid, path.name, max_pixels)
            if too_large:
                findings += [blocking(p.message, variable=variable) for p in too_large]
                return None
            rasterio.shutil.copy(grid, target, driver="GTiff", COMPRESS="DEFLATE",
                                 TILED="YES", BIGTIFF="IF_SAFER")
    except (RasterioError, OSError) as err:
        findings.append(blocking(f"variable cannot be read: {err}", variable=variable))
        return None
    findings.append(notice(f"NetCDF variable {variable!r} extracted to GeoTIFF",
                           variable=variable, code="netcdf_extracted",
                           params={"variable": variable}))
    return target


# -- helpers -------------------------------------------------------------------------------

def _in_source_dir(path: Path, source_dir: Path) -> Path:
    """A file used as it is: hard-linked into source_dir when it is one of ours (a member
    extracted from an archive); the uploaded file itself stays where it is, and the caller
    outside the reader's sandbox links it (`place_original`): Landlock refuses a link from a
    read-only folder into a writable one, and copying 2 GB is no answer."""
    if path.is_relative_to(source_dir.parent):
        return link(path, source_dir / path.name)
    return path


def place_original(original: Path, workdir: Path) -> Path:
    """Where a source used in place belongs: workdir/source/<its name>, hard-linked."""
    return link(original, workdir / "source" / original.name)


def link(path: Path, target: Path) -> Path:
    """Hard-link (same filesystem: no copy of a 2 GB file); copy where links are refused."""
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return target


def _safe_stem(stem: str) -> str:
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in stem)
    return cleaned[:80] or "upload"
