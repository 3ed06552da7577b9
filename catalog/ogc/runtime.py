"""pygeoapi for the live release: its API objects, built from our config, rebuilt when a new
release goes live.

pygeoapi is used through its public API only (docs/upstream.md): `pygeoapi.api.API` objects
built from the config we generate (catalog/ogc/config.py) and the OpenAPI document
(`pygeoapi.openapi.get_oas`), handed to pygeoapi's API functions by our own routes
(catalog/ogc/routes.py). Nothing is assigned into pygeoapi's modules and `pygeoapi.flask_app`
(which reads its config from files once per process, into module globals) is never imported,
so several apps can live in one process and a publish shows up in every gunicorn worker
without a restart. The OpenAPI document also carries the paths of our own OGC API - Features
routes (catalog/features), and the pages those routes render use our templates through
`render_page`.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pygeoapi.api import API

from catalog import settings
from catalog.core.languages import LANGUAGES, LOCALES
from catalog.core.record import Record
from catalog.features import LiveFeatures
from catalog.features import openapi as features_openapi
from catalog.http_policy import with_transport_refusals
from catalog.ogc import pages, translations
from catalog.ogc.config import basemap_tiles, build_config
from catalog.ogc.openapi import complete_openapi
from catalog.store import CatalogStore
from catalog.store.release_records import RecordsUnavailable

# Adds the paths of routes outside catalog.ogc (OGC API - Records, catalog/discovery) to the
# OpenAPI document of a release: (document, the release's records) -> the document.
OpenApiAddition = Callable[[dict, Sequence[Record]], dict]


@dataclass
class LiveRelease:
    """pygeoapi's view of one release: its config, its OpenAPI document and its API objects
    (one per language asked for, built on first use; a release is immutable, so they are
    never rebuilt)."""

    number: int | None
    config: dict
    openapi: dict
    basemap: str  # the live DEM's relief tiles ({z}/{x}/{y}), or "" without one
    apis: dict[str | None, API] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api(self, language: str | None = None) -> API:
        """The API object; with a language, one whose default language is that one."""
        found = self.apis.get(language)
        if found is None:
            with self.lock:
                found = self.apis.get(language)
                if found is None:
                    found = API(_config_in(self.config, language), self.openapi)
                    self.apis[language] = found
        return found


class OgcRuntime:
    """Holds pygeoapi's view of the live release and replaces it when another goes live."""

    def __init__(self, store: CatalogStore, public_url: str,
                 live_features: LiveFeatures | None = None,
                 openapi_additions: Sequence[OpenApiAddition] = ()):
        self.store = store
        self.openapi_additions = tuple(openapi_additions)
        self.public_url = public_url
        self.live_features = live_features or LiveFeatures(store)
        # pygeoapi's pages read their words from gettext catalogs (server.locale_dir).
        self.locale_dir = translations.write_catalogs(
            settings.node_run_dir(store.home) / str(os.getpid()) / "locale")
        self._lock = threading.Lock()
        self._live: LiveRelease | None = None
        # A database holding the release records that is not up yet: the first request after
        # it is builds the view instead (the worker must still start).
        with contextlib.suppress(RecordsUnavailable):
            self._live = self._build()

    @property
    def live(self) -> LiveRelease:
        if self._live is None:
            with self._lock:
                if self._live is None:
                    self._live = self._build()
        return self._live

    @property
    def config(self) -> dict:
        return self.live.config

    def api(self, language: str | None = None) -> API:
        return self.live.api(language)

    def basemap_tiles(self) -> str:
        return self.live.basemap

    def render_page(self, template: str, data: dict, locale: str) -> str:
        """An /ogc HTML page from our templates (catalog/ogc/templates, then pygeoapi's) with
        the live release's config; `locale` as 'ru-RU' (for the Features routes)."""
        self.refresh_if_changed()
        return pages.render(self.live.config, template, data, locale)

    def offered_processes(self) -> list[str]:
        """The processes pygeoapi serves for the live release."""
        self.refresh_if_changed()
        return [name for name, resource in self.live.config.get("resources", {}).items()
                if resource.get("type") == "process"]

    def refresh_if_changed(self) -> None:
        """Rebuild on a new release (the worker's release watch reads current.json at most
        once a second for every service)."""
        number = self.store.watch.number()
        if number == self.live.number:
            return
        with self._lock:
            if number != self.live.number:
                self._live = self._build()  # one assignment: requests see old or new, whole

    def _build(self) -> LiveRelease:
        from pygeoapi.openapi import get_oas

        release = self.store.current()
        config = build_config(self.store, self.public_url, self.locale_dir)
        openapi = complete_openapi(get_oas(config, fail_on_invalid_collection=False), [],
                                   _process_inputs(config))
        # The Features paths (our routes, catalog/features) beside pygeoapi's, of the release
        # just read (not the one LiveFeatures saw up to a second ago).
        live = self.live_features(fresh=True)
        layers = {dataset_id: store.describe() for dataset_id, store in live.stores.items()}
        openapi = features_openapi.add_to(openapi, live.records, layers,
                                          config["server"].get("limits"))
        for add in self.openapi_additions:
            openapi = add(openapi, live.records)
        openapi = with_transport_refusals(openapi)
        return LiveRelease(release.number if release else None, config, openapi,
                           basemap_tiles(self.store.current_records()))


def _config_in(config: dict, language: str | None) -> dict:
    """A copy of the config (pygeoapi's API edits the one it gets) whose first language, the
    one pygeoapi renders some pages in whatever the request asks (docs/upstream.md), is
    `language`."""
    config = copy.deepcopy(config)
    if language is not None:
        order = [language] + [code for code in LANGUAGES if code != language]
        config["server"]["languages"] = [LOCALES[code] for code in order]
    return config


def _process_inputs(config: dict) -> dict[str, dict]:
    """Process id -> the inputs its processor declares (for the OpenAPI execute bodies)."""
    from pygeoapi.plugin import load_plugin

    return {name: load_plugin("process", resource["processor"]).metadata.get("inputs", {})
            for name, resource in config.get("resources", {}).items()
            if resource.get("type") == "process"}
