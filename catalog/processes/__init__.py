"""OGC API - Processes over the published layers: site-screening, coverage-statistics and
zonal-statistics (docs/processes.md).

Each process is a module with its computation as plain functions and a thin pygeoapi
processor. `process_resources` turns the live release into pygeoapi `process` resources whose
processor definitions carry the paths of the published files; `job_manager` configures the
SQLite job manager (jobs.py) under the catalog home.
"""

from __future__ import annotations

import logging
from pathlib import Path

from catalog.store import CatalogStore

LOGGER = logging.getLogger(__name__)
PROCESSORS = {
    "site-screening": "catalog.processes.site_screening.SiteScreeningProcessor",
    "coverage-statistics": "catalog.processes.coverage_statistics.CoverageStatisticsProcessor",
    "zonal-statistics": "catalog.processes.zonal_statistics.ZonalStatisticsProcessor",
}
# The published layers (sample dataset ids, datasets/*.yaml) each process reads.
NEEDS = {
    "site-screening": ("elevation", "slope", "mobile-coverage", "settlements", "airports",
                       "boundary"),
    "coverage-statistics": ("elevation", "slope", "mobile-coverage", "settlements",
                            "boundary"),
    "zonal-statistics": ("boundary", "rasters"),
}
LAYER_DATASETS = {"elevation": "elevation", "slope": "slope", "settlements": "settlements",
                  "airports": "airports", "mobile-coverage": "mobile-coverage",
                  "boundary": "kyrgyzstan-boundary"}
JOB_MANAGER = "catalog.processes.jobs.SQLiteJobManager"


def process_resources(store: CatalogStore, taken: set[str] = frozenset()) -> dict[str, dict]:
    """pygeoapi resources for the processes whose layers are live (ids in taken are skipped)."""
    layers = layer_paths(store)
    resources = {}
    for process_id, needs in NEEDS.items():
        if process_id in taken:
            LOGGER.warning("process %s not offered: a dataset has that id", process_id)
        elif all(layers.get(name) for name in needs):
            resources[process_id] = {
                "type": "process",
                "processor": {"name": PROCESSORS[process_id], "layers": layers},
            }
    return resources


def layer_paths(store: CatalogStore) -> dict:
    """Paths of the live files the processes read: one per layer, and every raster."""
    paths: dict = {"rasters": {}}
    by_dataset = {dataset: layer for layer, dataset in LAYER_DATASETS.items()}
    for record in store.current_records():
        folder = store.version_dir(record["id"], record["version"])
        if record["kind"] == "raster":
            raster = record["rasters"][0]
            path = str(folder / raster["asset"]["file"])
            paths["rasters"][record["id"]] = {
                "path": path, "version": record["version"],
                "unit": raster["bands"][0].get("unit") if raster.get("bands") else None}
        else:
            path = str(folder / f"{record['id']}.gpkg")
        if record["id"] in by_dataset:
            paths[by_dataset[record["id"]]] = path
    return paths


def job_manager(home: Path) -> dict:
    """pygeoapi's server.manager: jobs and their results in TAZA_HOME/jobs/jobs.sqlite."""
    return {"name": JOB_MANAGER, "connection": str(Path(home) / "jobs" / "jobs.sqlite"),
            "output_dir": None}
