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
# The layers each process reads, by the role their manifests give them (catalog.manifest
# ROLES, docs/manifest.md), never by dataset id; "rasters" is every live raster.
NEEDS = {
    "site-screening": ("elevation", "slope", "coverage", "settlements", "airports", "boundary",
                       "regions", "lakes"),
    "coverage-statistics": ("elevation", "slope", "coverage", "settlements", "boundary",
                            "regions"),
    "zonal-statistics": ("boundary", "rasters"),
}
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
    """Paths of the live files the processes read: one per role, and every raster.

    {role: path, ..., "rasters": {dataset id: {path, version, unit, classes}}, "datasets": {role:
    dataset id}} (the processes name the dataset they used in their notes).
    """
    paths: dict = {"rasters": {}, "datasets": {}}
    for record in store.current_records():
        if record.kind == "raster":
            raster = record.coverage
            path = store.assets.gdal_path(record, raster.asset)
            paths["rasters"][record.id] = {
                "path": path, "version": record.version,
                "unit": raster.bands[0].unit if raster.bands else None,
                "classes": record.manifest.raster.get("classes") or None}
        else:
            path = store.assets.gdal_path(record, record.asset("geopackage"))
        if record.role is not None:  # one live dataset per role (catalog.publish)
            paths[record.role] = path
            paths["datasets"][record.role] = record.id
    return paths


def job_manager(home: Path) -> dict:
    """pygeoapi's server.manager: jobs and their results in TAZA_HOME/jobs/jobs.sqlite."""
    return {"name": JOB_MANAGER, "connection": str(Path(home) / "jobs" / "jobs.sqlite"),
            "output_dir": None}
