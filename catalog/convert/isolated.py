"""Publishing's one isolated task per dataset: inspect every source of a manifest and, when
none has a problem, convert them, in one confined child of the reader (catalog.sources.reader;
it imports this module before it confines itself, so the sources floor never imports this
one). One child per dataset, not one to inspect and another to convert: the reader's limits
hold for the whole dataset's reading. The child's limits and confinement are the reader's
(catalog.sources.isolation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catalog.convert.raster import convert_raster
from catalog.convert.vector import convert_vector, table_name, write_stored_feature_text
from catalog.core.record import Asset, RasterFacts, VectorFacts
from catalog.problems import Problem
from catalog.sources.isolation import ReaderFailed, run_task
from catalog.sources.raster import RasterInfo
from catalog.sources.reader import (
    asset_from,
    inspected,
    inspection_answers,
    inspection_args,
    inspection_results,
    malformed_answer,
    reader_failure,
    source_files,
)
from catalog.sources.vector import VectorInfo


@dataclass(frozen=True)
class ReadSources:
    """What the child found: each source's (info, problems); the files it wrote into the
    output folder only when no source had a problem (`converted`)."""

    inspected: list[tuple[VectorInfo | RasterInfo | None, list[Problem]]]
    converted: bool = False
    assets: list[Asset] = field(default_factory=list)  # a vector's, or one per raster item
    vector: VectorFacts | None = None
    rasters: list[RasterFacts] = field(default_factory=list)  # one per item


# -- parent side: what publish calls -------------------------------------------------------


def read_sources(kind: str, items: list[tuple[Path, str]], dataset_id: str, out_dir: Path,
                 id_field: str | None = None, unit: str | None = None) -> ReadSources:
    """Inspect each (source, item id) of a dataset and convert them into out_dir (the child
    writes there only): a vector's GeoPackage and GeoJSON, a COG per raster item. Then, for a
    vector, here, the stored feature text of the GeoPackage it wrote (GDAL's file, read with
    SQLite as the server reads it on every request: catalog/gpkg/feature_text.py). A child
    that fails (a limit hit) is the first source's problem, as in inspect_sources."""
    paths = [source for source, _ in items]
    args = {**inspection_args(paths, id_field), "kind": kind, "item_ids": [i for _, i in items],
            "dataset_id": dataset_id, "out_dir": str(out_dir), "unit": unit}
    read = [file for path in paths for file in source_files(path)]
    try:
        data = run_task("read_sources", args, read=read, write=[out_dir])
    except ReaderFailed as err:
        return ReadSources(reader_failure(paths, err))
    found = inspection_results(data, paths, kind)
    if "converted" not in data:
        return ReadSources(found)
    with malformed_answer():
        converted = data["converted"]
        if kind == "vector":
            assets = [asset_from(a) for a in converted["assets"]]
            facts = VectorFacts.from_json(converted["facts"])
        else:
            rasters = [(asset_from(c["asset"]), RasterFacts.from_json(c["facts"]))
                       for c, _ in zip(converted, items, strict=True)]  # one per item
    if kind == "vector":
        write_stored_feature_text(out_dir / f"{dataset_id}.gpkg", table_name(dataset_id),
                                  id_field)
        return ReadSources(found, True, assets, vector=facts)
    return ReadSources(found, True, [a for a, _ in rasters], rasters=[f for _, f in rasters])


# -- child side: the task the reader runs --------------------------------------------------

def task_read_sources(args: dict) -> dict:
    answers = inspection_answers(args["kind"], args)
    if any(answer["info"] is None or answer["problems"] for answer in answers):
        return {"answers": answers}  # nothing converted: the publish is refused
    out_dir = Path(args["out_dir"])
    if args["kind"] == "vector":
        info, _ = inspected(answers[0], Path(args["paths"][0]), "vector")
        assets, facts = convert_vector(info, args["dataset_id"], out_dir, args["id_field"],
                                       feature_text=False)
        return {"answers": answers, "converted": {"assets": [a.as_json() for a in assets],
                                                  "facts": facts.as_json()}}
    converted = []
    for path, item_id in zip(args["paths"], args["item_ids"], strict=True):
        asset, facts = convert_raster(Path(path), item_id, out_dir, args["unit"])
        converted.append({"asset": asset.as_json(), "facts": facts.as_json()})
    return {"answers": answers, "converted": converted}
