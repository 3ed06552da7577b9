"""Findings of an upload check: where a problem is and whether it blocks publication.

Unlike `catalog.problems.Problem` (the pipeline's reject-or-accept list), a finding also says
what the service did about it: `blocking` (fix it and upload again), `repaired` (changed on
the way in, saying how) or `notice` (nothing wrong, but worth knowing, such as a reprojection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

BLOCKING = "blocking"
REPAIRED = "repaired"
NOTICE = "notice"
ORDER = {BLOCKING: 0, REPAIRED: 1, NOTICE: 2}
# Location keys, in the order a reader names them.
LOCATION_KEYS = ("file", "member", "layer", "row", "line", "feature", "id", "band", "field",
                 "variable")


# A finding's code: the key of its text in every language (finding_texts.yml), filled from
# its params; the English message stays in the JSON for API users.
CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TEXTS_FILE = Path(__file__).with_name("finding_texts.yml")


@dataclass(frozen=True)
class Finding:
    status: str
    message: str
    where: dict = field(default_factory=dict)
    code: str = ""
    params: dict = field(default_factory=dict)

    @property
    def location(self) -> str:
        """'feature 12 (id=UAFM), field name' or 'row 4 (line 5)': for people."""
        where = self.where
        parts = []
        if "row" in where:
            line = f" (line {where['line']})" if "line" in where else ""
            parts.append(f"row {where['row']}{line}")
        elif "line" in where:
            parts.append(f"line {where['line']}")
        if "feature" in where:
            label = f"feature {where['feature']}"
            if "id" in where:
                label += f" ({where.get('id_field', 'id')}={where['id']})"
            parts.append(label)
        for key in ("file", "member", "layer", "band", "field", "variable"):
            if key in where:
                parts.append(f"{key} {where[key]}")
        return ", ".join(parts) or "upload"

    def as_dict(self) -> dict:
        data = {"status": self.status, "location": self.location, "where": dict(self.where),
                "message": self.message}
        if self.code:
            data.update(code=self.code, params=dict(self.params))
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        """A finding as as_dict gave it (from a stored report, or the reader's answer: a code
        that is not one of ours, or params that are not plain values, are left out)."""
        code = data.get("code") if isinstance(data.get("code"), str) else ""
        params = data.get("params") if isinstance(data.get("params"), dict) else {}
        plain = all(isinstance(v, str | int | float) and not isinstance(v, bool)
                    for v in params.values())
        known = bool(CODE.match(code)) and code in finding_texts() and plain
        return cls(str(data["status"]), str(data["message"]), dict(data["where"]),
                   code if known else "", dict(params) if known else {})


def blocking(message: str, *, code: str = "", params: dict | None = None, **where) -> Finding:
    return Finding(BLOCKING, message, where, code, params or {})


def repaired(message: str, *, code: str = "", params: dict | None = None, **where) -> Finding:
    return Finding(REPAIRED, message, where, code, params or {})


def notice(message: str, *, code: str = "", params: dict | None = None, **where) -> Finding:
    return Finding(NOTICE, message, where, code, params or {})


@cache
def finding_texts() -> dict[str, dict[str, str]]:
    """Every finding code's text in ky, ru and en, with {param} placeholders."""
    return yaml.safe_load(TEXTS_FILE.read_text(encoding="utf-8"))


def finding_text(finding: dict, language: str) -> str:
    """A finding (as_dict) in `language`: its code's text, or without a code the English
    message, with server paths cut to file names and internal flags left out."""
    texts = finding_texts().get(finding.get("code") or "")
    if texts is None:
        return INTERNAL_FLAGS.sub("", SERVER_PATH.sub(r"\2", finding["message"]))
    params = finding.get("params") or {}
    return PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))),
                           texts.get(language) or texts["en"])


PLACEHOLDER = re.compile(r"\{(\w+)\}")
SERVER_PATH = re.compile(r"(/[^\s'\"]+)+/([^\s/'\"]+)")
INTERNAL_FLAGS = re.compile(r",?\s*flags=\d+")


def has_blocking(findings: list[Finding]) -> bool:
    return any(f.status == BLOCKING for f in findings)
