"""A remote dataset as a steward's manifest (docs/manifest.md), for a draft under review.

Only what the remote says is written. What it cannot say (the theme unless the source sets
one, the nature of the data, a licence it does not give, dates it does not give) is left out,
so the draft's report names it as missing and a reviewer fills it in; nothing is guessed.
The provenance points at the remote record. The data file is not harvested: a steward uploads
it to the draft (docs/stewards.md) before the draft can be submitted and published.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import yaml

from catalog.harvest.remote import RemoteDataset
from catalog.manifest import DATASET_ID, reserved_id

NO_DESCRIPTION = "The harvested source gives no description."


def dataset_id(source_name: str, remote_id: str) -> str:
    """`<source>-<remote id as a slug>`, at most 64 characters; a hash keeps it unique when
    the slug is cut or empty."""
    slug = re.sub(r"[^a-z0-9]+", "-", remote_id.lower()).strip("-")
    candidate = f"{source_name}-{slug}".strip("-")
    if len(candidate) > 64 or not slug:
        digest = hashlib.sha256(remote_id.encode()).hexdigest()[:8]
        candidate = f"{candidate[:55].rstrip('-')}-{digest}"
    if not DATASET_ID.match(candidate) or reserved_id(candidate):
        candidate = f"{source_name}-{hashlib.sha256(remote_id.encode()).hexdigest()[:12]}"
    return candidate


def manifest(dataset: RemoteDataset, new_id: str, source: dict, harvested: dt.date) -> str:
    """The manifest text (YAML) of a harvested dataset."""
    data: dict = {
        "id": new_id,
        "title": {"en": dataset.title or dataset.remote_id},
        "description": {"en": dataset.description or NO_DESCRIPTION},
        "keywords": {"en": list(dataset.keywords) or ["harvested"]},
        "attribution": dataset.attribution or _credit(dataset, source),
        "steward": {"name": f"harvest-{source['name']}", "organisation": source["organisation"],
                    "email": source["email"]},
        "provenance": {
            "method": _method(dataset, source, harvested),
            "derived_from": [_reference(dataset)],
        },
        "update_frequency": "unknown",
    }
    if source.get("theme"):
        data["theme"] = source["theme"]
    if dataset.licence:
        data["licence"] = dataset.licence
    if dataset.start:
        data["temporal_extent"] = {"start": dataset.start.isoformat(),
                                   "end": dataset.end.isoformat() if dataset.end else None}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def _credit(dataset: RemoteDataset, source: dict) -> str:
    who = dataset.publisher or "the publisher"
    return f"{who}, via {source['url']}"


def _method(dataset: RemoteDataset, source: dict, harvested: dt.date) -> str:
    lines = [
        f"Harvested on {harvested.isoformat()} from the {source['type']} catalog "
        f"{source['url']} (harvest source {source['name']!r}): the remote record "
        f"{dataset.landing_url} (id {dataset.remote_id!r}) mapped to this manifest by "
        "catalog/harvest (title, description, keywords, licence, dates).",
        "The data file is not harvested: it is uploaded to the draft by a steward.",
    ]
    if dataset.bbox:
        lines.append("Extent given by the source (WGS 84 west, south, east, north): "
                     + ", ".join(f"{v:g}" for v in dataset.bbox) + ".")
    return "\n".join(lines) + "\n"


def _reference(dataset: RemoteDataset) -> dict:
    reference = {"title": dataset.title or dataset.remote_id, "href": dataset.landing_url}
    if dataset.licence:
        reference["licence"] = dataset.licence
    return reference
