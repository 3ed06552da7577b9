"""The catalog's metadata for other catalogs: DCAT-AP 3 at /dcat (and per dataset) and ISO 19139
per dataset, as a Flask blueprint over catalog/metadata's writers.

    /dcat                             the whole catalog (Turtle, RDF/XML, JSON-LD)
    /datasets/<id>/dcat               one dataset
    /datasets/<id>/metadata.xml       one dataset as ISO 19139

The form comes from `f` (ttl, rdf, jsonld; anything else is 400) or else from Accept (Turtle
when Accept names none of them). Documents are built once per live release and form.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Blueprint, Response, abort, request

from catalog.core.record import Record
from catalog.features.negotiate import choices
from catalog.metadata import dcat
from catalog.metadata.iso19139 import iso19139_xml
from catalog.metadata.links import CatalogInfo, CatalogUrls
from catalog.store import CatalogStore

FORMS = {form.name: form for form in dcat.FORMS}
BY_MEDIA_TYPE = {form.media_type: form for form in dcat.FORMS}
ISO_MEDIA_TYPE = "application/vnd.iso.19139+xml"
CACHE_CONTROL = "public, max-age=60"  # follows a new release within a minute


class ReleaseCache:
    """Documents of the live release, built once per release and key (thread-safe)."""

    def __init__(self, store: CatalogStore):
        self.store = store
        self.lock = threading.Lock()
        self.release: int | None = None
        self.documents: dict[tuple, bytes] = {}

    def get(self, key: tuple, build: Callable[[], bytes]) -> bytes:
        current = self.store.current()
        number = current.number if current else None
        with self.lock:
            if number != self.release:
                self.release, self.documents = number, {}
            if key in self.documents:
                return self.documents[key]
        document = build()
        with self.lock:
            if number == self.release:
                self.documents[key] = document
        return document


def create_blueprint(store: CatalogStore, public_url: str) -> Blueprint:
    blueprint = Blueprint("discovery", __name__)
    urls = CatalogUrls(public_url.rstrip("/"))
    info = CatalogInfo.from_config()
    cache = ReleaseCache(store)

    @blueprint.get("/dcat")
    def catalog_dcat() -> Response:
        form = _rdf_form()
        body = cache.get(("dcat", form.name), lambda: dcat.serialize(
            dcat.catalog_graph(store.current_records(), urls, store.assets, info), form))
        return _answer(body, form.media_type)

    @blueprint.get("/datasets/<dataset_id>/dcat")
    def dataset_dcat(dataset_id: str) -> Response:
        form = _rdf_form()
        record = _live_record(store, dataset_id)
        body = cache.get(("dcat", form.name, dataset_id), lambda: dcat.serialize(
            dcat.dataset_graph(record, urls, store.assets), form))
        return _answer(body, form.media_type)

    @blueprint.get("/datasets/<dataset_id>/metadata.xml")
    def dataset_iso(dataset_id: str) -> Response:
        _only_parameters()
        record = _live_record(store, dataset_id)
        body = cache.get(("iso", dataset_id), lambda: iso19139_xml(record, urls, store.assets))
        return _answer(body, ISO_MEDIA_TYPE)

    return blueprint


def _rdf_form() -> dcat.RdfForm:
    """The serialisation asked for: `f` first, else Accept, else Turtle."""
    _only_parameters("f")
    if "f" in request.args:
        name = request.args["f"]
        if name not in FORMS:
            abort(400, description=f"f: {name!r} is not a format of this document; "
                                   f"use one of {', '.join(FORMS)}")
        return FORMS[name]
    for media_type in choices(request.headers.get("Accept")):
        if media_type in BY_MEDIA_TYPE:
            return BY_MEDIA_TYPE[media_type]
    return FORMS["ttl"]


def _only_parameters(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        abort(400, description=f"unknown query parameter(s) {unknown}; "
                               f"allowed: {list(allowed)}")
    repeated = [name for name in allowed if len(request.args.getlist(name)) > 1]
    if repeated:
        abort(400, description=f"{repeated[0]}: give it once")


def _live_record(store: CatalogStore, dataset_id: str) -> Record:
    version = store.live_version(dataset_id)
    if version is None:
        abort(404, description=f"no published dataset {dataset_id!r}")
    return store.record(dataset_id, version)


def _answer(body: bytes, media_type: str) -> Response:
    response = Response(body, mimetype=media_type)
    if media_type.startswith("text/") or media_type.endswith("xml"):
        response.headers["Content-Type"] = f"{media_type}; charset=utf-8"
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Vary"] = "Accept"
    return response

