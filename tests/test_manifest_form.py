"""The stewards' form is built from catalog.manifest.form_schema: what it offers must be what
`taza validate` (and the stewards' API report) accepts, and it must ask for every field that
validation requires. The form itself is driven in Chromium in tests/test_portal.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.manifest import KNOWN_KEYS, form_schema
from catalog.stewards.report import manifest_findings
from tests.stewards_support import make_manifest

SCHEMA = form_schema()
# The parts of the schema that are form fields (top-level manifest keys).
FORM_FIELDS = ({"id"} | set(SCHEMA["texts"]) | {"keywords"} | set(SCHEMA["choices"])
               | set(SCHEMA["optional_choices"]) | {"licence", "steward", "provenance",
                                                   "temporal_extent"}
               | set(SCHEMA["text"]) | set(SCHEMA["optional_text"]))


def findings(manifest: dict, tmp_path: Path) -> list[str]:
    text = json.dumps(manifest, default=str)
    return [f.where.get("field", "") for f in manifest_findings(text, manifest["id"], tmp_path)]


def test_the_form_asks_for_every_field_validation_requires(tmp_path):
    required = {field.split(".")[0] for field in findings({"id": "form-empty"}, tmp_path)}
    assert required <= FORM_FIELDS, required - FORM_FIELDS
    assert set(SCHEMA["known_keys"]) == KNOWN_KEYS - {"source"}
    assert FORM_FIELDS - {"raster"} <= KNOWN_KEYS


@pytest.mark.parametrize("key", sorted(SCHEMA["choices"]))
def test_every_choice_the_form_offers_validates_and_others_do_not(key, tmp_path):
    for value in SCHEMA["choices"][key]:
        manifest = make_manifest("form-choices", **{key: value})
        if value in SCHEMA["honesty_labels"]:  # a model or a fake says so in its title
            manifest["title"]["en"] += f" ({SCHEMA['honesty_labels'][value]})"
        assert findings(manifest, tmp_path) == [], (key, value)
    assert key in findings(make_manifest("form-choices", **{key: "not-offered"}), tmp_path)


def test_offered_licences_roles_and_ids_agree_with_validation(tmp_path):
    for licence in SCHEMA["licence"]["offered"]:
        assert findings(make_manifest("form-licence", licence=licence), tmp_path) == []
    assert "licence" in findings(make_manifest("form-licence", licence="CC BY 4.0"), tmp_path)
    assert "role" in findings(make_manifest("form-role", role="everything"), tmp_path)
    assert findings(make_manifest("form-role", role="lakes", theme="land"), tmp_path) == []
    reserved = SCHEMA["id"]["reserved"][0]
    assert "id" in findings(make_manifest(reserved), tmp_path)
