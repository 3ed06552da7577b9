"""Conversion of untrusted sources in the isolated reader (catalog.sources.reader): the
parent-side functions the publishing pipeline calls, and the child-side tasks the reader runs
by name (it imports this module before it confines itself, so the sources floor never imports
this one)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from catalog.convert.raster import convert_raster
from catalog.convert.vector import convert_vector, table_name, write_stored_feature_text
from catalog.core.record import Asset, RasterFacts, VectorFacts
from catalog.sources.isolation import run_task
from catalog.sources.reader import asset_from, malformed_answer, require_safe, source_files
from catalog.sources.vector import VectorInfo

# -- parent side: what publish calls -------------------------------------------------------


def convert_vector_source(info: VectorInfo, dataset_id: str, out_dir: Path,
                          id_field: str | None = None) -> tuple[list[Asset], VectorFacts]:
    """convert_vector in the isolated reader (writes into out_dir only); then, here, the
    stored feature text of the GeoPackage it wrote (GDAL's file, read with SQLite as the
    server reads it on every request: catalog/gpkg/feature_text.py)."""
    args = {"info": {**dataclasses.asdict(info), "path": str(info.path)},
            "dataset_id": dataset_id, "out_dir": str(out_dir), "id_field": id_field}
    data = run_task("convert_vector", args, read=source_files(info.path), write=[out_dir])
    with malformed_answer():
        assets = [asset_from(a) for a in data["assets"]]
        facts = VectorFacts.from_json(data["facts"])
    write_stored_feature_text(out_dir / f"{dataset_id}.gpkg", table_name(dataset_id), id_field)
    return assets, facts


def convert_raster_sources(items: list[tuple[Path, str]], out_dir: Path,
                           unit: str | None) -> list[tuple[Asset, RasterFacts]]:
    """convert_raster of each (source, item id) of a dataset, all in one isolated reader
    (writes into out_dir only): one child per dataset, not per item."""
    args = {"items": [{"source": str(source), "item_id": item_id} for source, item_id in items],
            "out_dir": str(out_dir), "unit": unit}
    read = [file for source, _ in items for file in source_files(source)]
    data = run_task("convert_raster", args, read=read, write=[out_dir])
    with malformed_answer():
        return [(asset_from(c["asset"]), RasterFacts.from_json(c["facts"]))  # one per item
                for c, _ in zip(data["converted"], items, strict=True)]


# -- child side: the tasks the reader runs -------------------------------------------------

def task_convert_vector(args: dict) -> dict:
    info = args["info"]
    info = VectorInfo(**{**info, "path": Path(info["path"]),
                         "geometry_types": tuple(info["geometry_types"])})
    require_safe(info.path)
    assets, facts = convert_vector(info, args["dataset_id"], Path(args["out_dir"]),
                                   args["id_field"], feature_text=False)
    return {"assets": [a.as_json() for a in assets], "facts": facts.as_json()}


def task_convert_raster(args: dict) -> dict:
    converted = []
    for item in args["items"]:
        source = Path(item["source"])
        require_safe(source)
        asset, facts = convert_raster(source, item["item_id"], Path(args["out_dir"]),
                                      args["unit"])
        converted.append({"asset": asset.as_json(), "facts": facts.as_json()})
    return {"converted": converted}
