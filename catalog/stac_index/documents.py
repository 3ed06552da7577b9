"""STAC API documents: the same pystac objects as the static catalog, with absolute links.

`dataset_documents` turns a published record into the collection and item dictionaries that the
index stores, built by `catalog.stac.build_collection` (the static tree uses the same function,
so both say the same). Stored documents keep `catalog.stac.VIRTUAL_ROOT` hrefs and no structural
links; `Links` adds self/root/parent/collection/items links and makes hrefs absolute under the
server's public URL when a response is written.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import orjson

from catalog.core.assets import AssetLocator
from catalog.core.record import Record
from catalog.stac import VIRTUAL_ROOT, build_collection

# Where the public URL goes in a rendered item (`rendered_item`): a NUL character, which JSON
# writes as this escape. Items whose JSON already holds the text 'u0000' are not rendered.
RENDERED_BASE = "\\u0000"
STRUCTURAL_RELS = frozenset({"self", "root", "parent", "collection", "item", "items", "child"})
JSON = "application/json"
GEOJSON = "application/geo+json"


def dataset_documents(record: Record, assets: AssetLocator) -> tuple[dict, list[dict]]:
    """The collection and item dictionaries of one published dataset version."""
    collection = build_collection(record, assets)
    items = [_stored(item.to_dict(include_self_link=False, transform_hrefs=False))
             for item in collection.get_items()]
    return _stored(collection.to_dict(include_self_link=False, transform_hrefs=False)), items


def _stored(document: dict) -> dict:
    """Drop links that point inside the tree: the API writes its own per response."""
    document["links"] = [link for link in document.get("links", [])
                         if link["rel"] not in STRUCTURAL_RELS or _is_ogc(link)]
    for link in document["links"]:
        if link["rel"] == "items":  # the OGC API items of the same data, not STAC items
            link["rel"] = "alternate"
    return document


def _is_ogc(link: dict) -> bool:
    return str(link.get("href") or "").startswith(f"{VIRTUAL_ROOT}/ogc/")


class Links:
    """Absolute URLs of the API under one public base URL (e.g. http://host:port)."""

    def __init__(self, public_url: str):
        self.base = public_url.rstrip("/")
        self.root = f"{self.base}/stac"

    def url(self, *parts: str) -> str:
        return "/".join([self.root, *(quote(p, safe="") for p in parts)])

    def absolute(self, href: str) -> str:
        virtual = str(VIRTUAL_ROOT)
        return self.base + href[len(virtual):] if href.startswith(virtual + "/") else href

    def link(self, rel: str, href: str, media: str = JSON, title: str | None = None,
             **extra: Any) -> dict:
        link = {"rel": rel, "href": href, "type": media, **extra}
        if title:
            link["title"] = title
        return link

    def collection(self, stored: dict) -> dict:
        document = copy.deepcopy(stored)
        own = self.url("collections", document["id"])
        links = [
            self.link("self", own),
            self.link("root", self.root),
            self.link("parent", self.root),
            self.link("items", f"{own}/items", GEOJSON, "Items"),
            self.link("http://www.opengis.net/def/rel/ogc/1.0/queryables", f"{own}/queryables",
                      "application/schema+json", "Queryables"),
        ]
        document["links"] = links + [self._absolute_link(k) for k in document.get("links", [])]
        self._absolute_assets(document)
        return document

    def item(self, stored: dict) -> dict:
        # A shallow copy: only the top-level links and assets are replaced, never changed.
        document = dict(stored)
        collection = self.url("collections", document["collection"])
        document["links"] = [
            self.link("self", f"{collection}/items/{quote(document['id'], safe='')}", GEOJSON),
            self.link("root", self.root),
            self.link("parent", collection),
            self.link("collection", collection),
            *(self._absolute_link(k) for k in stored.get("links", [])),
        ]
        if "assets" in document:
            document["assets"] = {key: {**asset, "href": self.absolute(asset["href"])}
                                  for key, asset in document["assets"].items()}
        return document

    def _absolute_link(self, link: dict) -> dict:
        return {**link, "href": self.absolute(link["href"])}

    def _absolute_assets(self, document: dict) -> None:
        for key in ("assets", "item_assets"):
            for asset in (document.get(key) or {}).values():
                if "href" in asset:
                    asset["href"] = self.absolute(asset["href"])


def dumps(document: Any) -> str:
    """JSON as the API writes it: compact, UTF-8 text unescaped."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def rendered_item(stored: dict, stored_text: str | None = None) -> str | None:
    """The item as `Links(public_url).item(stored)` writes it, with RENDERED_BASE in place of
    the public URL (`with_base` puts it back); None when the item's JSON (`stored_text`, if
    the caller has it already) holds the text 'u0000', which could not be told apart from the
    placeholder."""
    if stored_text is None:
        if _holds_u0000(stored):
            return None
    elif "u0000" in stored_text:
        return None
    return dumps(Links("\0").item(stored))


def _holds_u0000(stored: dict) -> bool:
    """Whether `dumps(stored)` holds the text 'u0000'. orjson writes the same escapes (a NUL
    as \\u0000) about ten times faster; what it refuses (integers beyond 64 bits, keys that
    are not text, lone surrogates) goes through json."""
    try:
        return b"u0000" in orjson.dumps(stored)
    except (orjson.JSONEncodeError, TypeError):
        return "u0000" in dumps(stored)


def with_base(rendered: str, base_json: str) -> str:
    """A rendered item with `base_json` (the public URL as JSON string content) in place."""
    return rendered.replace(RENDERED_BASE, base_json)


# -- fields (include / exclude) -------------------------------------------------------------

DEFAULT_FIELDS = ("type", "stac_version", "id", "geometry", "bbox", "links", "assets",
                  "properties.datetime", "properties.start_datetime", "properties.end_datetime",
                  "collection", "stac_extensions")
# Kept whenever fields are picked, so every answer is still an identifiable, linked STAC item.
IDENTITY_FIELDS = ("type", "stac_version", "id", "links")


def apply_fields(item: dict, include: tuple[str, ...] | None, exclude: tuple[str, ...],
                 owned: bool = False) -> dict:
    """The item with only the fields asked for (STAC API fields extension).

    include=None keeps every field, () the default set, otherwise the identity fields and the
    ones named. An exclusion yields to an inclusion of the same or a deeper field, so
    'exclude properties, include properties.title' keeps the title. `owned`: the caller
    hands `item` over (nothing else holds it), so its parts are taken, not copied.
    """
    if include is None and not exclude:
        return item
    if include is None:
        result = item if owned else copy.deepcopy(item)
    else:
        result = {}
        for path in (*IDENTITY_FIELDS, *include) if include else DEFAULT_FIELDS:
            _copy_path(item, result, path.split("."), owned)
    for path in exclude:
        if not any(i == path or i.startswith(path + ".") for i in include or ()):
            _drop_path(result, path.split("."))
    return result


def _copy_path(source: dict, target: dict, parts: list[str], owned: bool = False) -> None:
    head, rest = parts[0], parts[1:]
    if head not in source:
        return
    if not rest:
        target[head] = source[head] if owned else copy.deepcopy(source[head])
    elif isinstance(source[head], dict):
        branch = target.setdefault(head, {})
        if isinstance(branch, dict):
            _copy_path(source[head], branch, rest, owned)


def _drop_path(target: dict, parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if head not in target:
        return
    if not rest:
        del target[head]
    elif isinstance(target[head], dict):
        _drop_path(target[head], rest)
