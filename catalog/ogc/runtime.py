"""pygeoapi inside our app: built from the live release, rebuilt when a new release goes live.

pygeoapi reads its config and OpenAPI document when `pygeoapi.flask_app` is first imported,
and its routes call the module-level `api_` object. We write a first config before that
import, then swap `api_` for a fresh `API` whenever current.json names a new release, so a
publish shows up in every gunicorn worker without a restart.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from pathlib import Path

import yaml

from catalog.features import LiveFeatures
from catalog.features import openapi as features_openapi
from catalog.ogc.config import build_config
from catalog.ogc.openapi import complete_openapi
from catalog.store import CatalogStore

CHECK_INTERVAL_S = 1.0  # how stale a worker may be after a publish
# Our plugins under pygeoapi's own registry names (see catalog/ogc/formatters.py).
PLUGIN_OVERRIDES = {("formatter", "CSV"): "catalog.ogc.formatters.GeometryCsvFormatter"}


class OgcRuntime:
    """Holds the pygeoapi API object for the live release and refreshes it."""

    def __init__(self, store: CatalogStore, public_url: str,
                 live_features: LiveFeatures | None = None):
        self.store = store
        self.public_url = public_url
        self.live_features = live_features or LiveFeatures(store)
        self.release: int | None = None
        self.config: dict = {}
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self.flask_module = self._first_import()

    def _first_import(self):
        from pygeoapi.plugin import PLUGINS

        for (kind, name), dotted_path in PLUGIN_OVERRIDES.items():
            PLUGINS[kind][name] = dotted_path
        _skip_identity_bbox_transforms()
        config, openapi = self._build()
        config_path, openapi_path = self._write_runtime_files(config, openapi)
        os.environ["PYGEOAPI_CONFIG"] = str(config_path)
        os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)
        module = importlib.import_module("pygeoapi.flask_app")
        self._install(module, config, openapi)
        return module

    def refresh_if_changed(self) -> None:
        """Cheap check (one small file read a second); rebuild only on a new release."""
        now = time.monotonic()
        if now - self._checked_at < CHECK_INTERVAL_S:
            return
        self._checked_at = now
        release = self.store.current()
        number = release.number if release else None
        if number == self.release:
            return
        with self._lock:
            if number != self.release:
                config, openapi = self._build()
                # Rewritten too, so no file keeps the metadata of a version taken down.
                self._write_runtime_files(config, openapi)
                self._install(self.flask_module, config, openapi)

    def _build(self) -> tuple[dict, dict]:
        from pygeoapi.openapi import get_oas

        release = self.store.current()
        self.release = release.number if release else None
        config = build_config(self.store, self.public_url)
        openapi = complete_openapi(get_oas(config, fail_on_invalid_collection=False), [],
                                   _process_inputs(config))
        # The Features paths (our routes, catalog/features) beside pygeoapi's, of the release
        # just read (not the one LiveFeatures saw up to a second ago).
        live = self.live_features(fresh=True)
        layers = {dataset_id: store.describe() for dataset_id, store in live.stores.items()}
        openapi = features_openapi.add_to(openapi, live.records, layers,
                                          config["server"].get("limits"))
        return config, openapi

    def render_page(self, template: str, data: dict, locale: str) -> str:
        """An /ogc HTML page from our templates (catalog/ogc/templates, then pygeoapi's), in
        the page shell every /ogc page shares; `locale` as 'ru-RU'."""
        from pygeoapi.l10n import str2locale
        from pygeoapi.util import render_j2_template

        self.refresh_if_changed()
        config = self.config
        return render_j2_template(config, config["server"]["templates"], template, data,
                                  str2locale(locale))

    def offered_processes(self) -> list[str]:
        """The processes pygeoapi serves for the live release."""
        self.refresh_if_changed()
        return [name for name, resource in self.config.get("resources", {}).items()
                if resource.get("type") == "process"]

    def _write_runtime_files(self, config: dict, openapi: dict) -> tuple[Path, Path]:
        """pygeoapi reads its config and OpenAPI document from files, once per worker."""
        runtime_dir = self.store.home / "run" / str(os.getpid())
        runtime_dir.mkdir(parents=True, exist_ok=True)
        return (_write_yaml(runtime_dir / "pygeoapi.yml", config),
                _write_yaml(runtime_dir / "openapi.yml", openapi))

    def _install(self, module, config: dict, openapi: dict) -> None:
        from pygeoapi.api import API

        module.api_ = API(config, openapi)
        module.CONFIG = config
        self.config = config


def _process_inputs(config: dict) -> dict[str, dict]:
    """Process id -> the inputs its processor declares (for the OpenAPI execute bodies)."""
    from pygeoapi.plugin import load_plugin

    return {name: load_plugin("process", resource["processor"]).metadata.get("inputs", {})
            for name, resource in config.get("resources", {}).items()
            if resource.get("type") == "process"}


def _skip_identity_bbox_transforms() -> None:
    """pygeoapi transforms every items bbox into the storage CRS, even CRS84 to CRS84; building
    that identity transform (CRS.to_epsg) took 83 % of a worker's CPU on bbox queries (py-spy,
    bench/results/features-*): 52 ms of a 58 ms request. Same CRS URI: nothing to transform."""
    import pygeoapi.api.itemtypes as itemtypes

    transform = itemtypes.transform_bbox
    if getattr(transform, "skips_identity", False):
        return

    def transform_bbox(bbox: list, from_crs: str, to_crs: str, *args, **kwargs) -> list:
        if str(from_crs) == str(to_crs):
            return list(bbox)
        return transform(bbox, from_crs, to_crs, *args, **kwargs)

    transform_bbox.skips_identity = True
    itemtypes.transform_bbox = transform_bbox


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
