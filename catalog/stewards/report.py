"""Validation reports: the manifest's and the upload's findings, as JSON and as an HTML page."""

from __future__ import annotations

from pathlib import Path

import yaml
from flask import render_template

from catalog.manifest import load_manifest, parse_manifest
from catalog.problems import Problem, ValidationFailed
from catalog.safe_parse import UnsafeInput, load_yaml
from catalog.sources.findings import BLOCKING, ORDER, Finding, blocking, notice


def manifest_findings(text: str | None, dataset_id: str, folder: Path) -> list[Finding]:
    """Every problem of the steward's manifest, with its field and line.

    `source` is the service's business (it points at the upload), so problems about it are
    left out, and a steward's own `source:` is replaced (said in a notice).
    """
    if text is None:
        return [blocking(f"no manifest yet: PUT /api/datasets/{dataset_id}/draft/manifest",
                         file="manifest")]
    try:
        parse_manifest(text, folder / f"{dataset_id}.yaml")
        problems: list[Problem] = []
    except ValidationFailed as err:
        problems = err.problems
    findings = [_manifest_finding(p, dataset_id) for p in problems if p.where != "source"]
    data = _mapping(text)
    if data.get("source"):
        findings.append(notice(f"source {data['source']!r} is replaced by the uploaded file",
                               file="manifest", field="source"))
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
        return [blocking(p.message, file="manifest", field=p.where) for p in err.problems]
    return []


def summarise(findings: list[Finding]) -> dict:
    counts = {status: sum(1 for f in findings if f.status == status) for status in ORDER}
    return {**counts, "publishable": counts[BLOCKING] == 0}


def ordered(findings: list[Finding]) -> list[dict]:
    return [f.as_dict() for f in sorted(findings, key=lambda f: ORDER[f.status])]


def render_html(report: dict) -> str:
    """A plain page (no scripts, no CDN) with the portal's stylesheet."""
    return render_template("stewards/report.html", report=report)


def _manifest_finding(problem: Problem, dataset_id: str) -> Finding:
    where: dict = {"file": "manifest", "field": problem.where}
    if problem.line is not None:
        where["line"] = problem.line
    message = problem.message
    if problem.where == "id" and "file name" in message:
        message = f"must be {dataset_id!r}, the dataset this draft belongs to"
    return Finding(BLOCKING, message, where)


def _mapping(text: str) -> dict:
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, UnsafeInput):  # reported by manifest_findings
        return {}
    return dict(data) if isinstance(data, dict) else {}

