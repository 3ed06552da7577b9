"""Validation reports: the manifest's and the upload's findings, as JSON and as an HTML page."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml
from flask import render_template

from catalog.core.languages import format_number
from catalog.manifest import load_manifest, parse_manifest
from catalog.problems import Problem, ValidationFailed
from catalog.safe_parse import UnsafeInput, load_yaml
from catalog.sources.findings import (
    BLOCKING,
    ORDER,
    Finding,
    blocking,
    finding_text,
    notice,
)

TEXTS_FILE = Path(__file__).with_name("report_texts.yml")

def manifest_findings(text: str | None, dataset_id: str, folder: Path) -> list[Finding]:
    """Every problem of the steward's manifest, with its field and line.

    `source` is the service's business (it points at the upload), so problems about it are
    left out, and a steward's own `source:` is replaced (said in a notice).
    """
    if text is None:
        return [blocking(f"no manifest yet: PUT /api/datasets/{dataset_id}/draft/manifest",
                         file="manifest", code="no_manifest")]
    try:
        parse_manifest(text, folder / f"{dataset_id}.yaml")
        problems: list[Problem] = []
    except ValidationFailed as err:
        problems = err.problems
    findings = [_manifest_finding(p, dataset_id) for p in problems if p.where != "source"]
    data = _mapping(text)
    if data.get("source"):
        findings.append(notice(f"source {data['source']!r} is replaced by the uploaded file",
                               file="manifest", field="source", code="source_replaced",
                               params={"source": str(data["source"])}))
    return findings


def write_pipeline_manifest(text: str, dataset_id: str, stage: Path,
                            source: Path) -> list[Finding]:
    """Write <id>.yaml next to the staged source, as the pipeline reads it; check it whole."""
    data = _mapping(text)
    data["source"] = str(source.relative_to(stage))
    path = stage / f"{dataset_id}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        load_manifest(path)
    except ValidationFailed as err:
        return [blocking(p.message, code=p.code, params=_plain(p.params), file="manifest",
                         field=p.where) for p in err.problems]
    return []


def summarise(findings: list[Finding]) -> dict:
    counts = {status: sum(1 for f in findings if f.status == status) for status in ORDER}
    return {**counts, "publishable": counts[BLOCKING] == 0}


def ordered(findings: list[Finding]) -> list[dict]:
    return [f.as_dict() for f in sorted(findings, key=lambda f: ORDER[f.status])]


def render_html(report: dict, language: str) -> str:
    """A plain page (no scripts, no CDN) with the portal's stylesheet, in `language`: its
    words from report_texts.yml, the findings' from their codes (finding_texts.yml)."""
    return render_template("stewards/report.html", report=report, language=language,
                           tr=lambda key, **params: _text(key, language, params),
                           number=lambda value: format_number(value, language),
                           numbers=lambda values: [format_number(v, language) for v in values],
                           place=lambda finding: _place(finding, language),
                           say=lambda finding: finding_text(finding, language))


@cache
def _texts() -> dict[str, dict[str, str]]:
    return yaml.safe_load(TEXTS_FILE.read_text(encoding="utf-8"))


def _text(key: str, language: str, params: dict) -> str:
    entry = _texts()[key]
    text = entry.get(language) or entry["en"]
    return re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(0))), text)


def _place(finding: dict, language: str) -> str:
    """Where a finding is, in words (as the stewards' page says it)."""
    where = finding.get("where") or {}
    if where.get("file") == "manifest":
        return _text("in_manifest", language, {"field": where.get("field") or ""})
    parts = []
    if "row" in where:
        parts.append(_text("where_row_line" if "line" in where else "where_row", language,
                           where))
    if "feature" in where:
        parts.append(_text("where_feature", language, where))
    if "id" in where:
        parts.append(f"{where.get('id_field', 'id')} = {where['id']}")
    parts += [_text(f"where_{key}", language, where)
              for key in ("member", "layer", "band", "variable", "field") if key in where]
    if not parts and "file" in where:
        parts.append(_text("in_file", language, {}))
    return ", ".join(parts)


def _manifest_finding(problem: Problem, dataset_id: str) -> Finding:
    """The checker's problem as a finding, said in every language from its code and params
    (catalog.manifest gives every problem one: finding_texts.yml)."""
    where: dict = {"file": "manifest", "field": problem.where}
    if problem.line is not None:
        where["line"] = problem.line
    if problem.code == "manifest_id_mismatch":
        message = f"must be {dataset_id!r}, the dataset this draft belongs to"
        return Finding(BLOCKING, message, where, "manifest_id_mismatch", {"dataset": dataset_id})
    return Finding(BLOCKING, problem.message, where, problem.code, _plain(problem.params))


def _plain(params: dict) -> dict:
    """Params as a finding keeps them: text and numbers."""
    return {key: value if isinstance(value, str | int | float) and not isinstance(value, bool)
            else str(value) for key, value in params.items()}


def _mapping(text: str) -> dict:
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, UnsafeInput):  # reported by manifest_findings
        return {}
    return dict(data) if isinstance(data, dict) else {}

