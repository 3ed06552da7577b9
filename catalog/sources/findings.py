"""Findings of an upload check: where a problem is and whether it blocks publication.

Unlike `catalog.problems.Problem` (the pipeline's reject-or-accept list), a finding also says
what the service did about it: `blocking` (fix it and upload again), `repaired` (changed on
the way in, saying how) or `notice` (nothing wrong, but worth knowing, such as a reprojection).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BLOCKING = "blocking"
REPAIRED = "repaired"
NOTICE = "notice"
ORDER = {BLOCKING: 0, REPAIRED: 1, NOTICE: 2}
# Location keys, in the order a reader names them.
LOCATION_KEYS = ("file", "member", "layer", "row", "line", "feature", "id", "band", "field",
                 "variable")


@dataclass(frozen=True)
class Finding:
    status: str
    message: str
    where: dict = field(default_factory=dict)

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
        return {"status": self.status, "location": self.location, "where": dict(self.where),
                "message": self.message}


def blocking(message: str, **where) -> Finding:
    return Finding(BLOCKING, message, where)


def repaired(message: str, **where) -> Finding:
    return Finding(REPAIRED, message, where)


def notice(message: str, **where) -> Finding:
    return Finding(NOTICE, message, where)


def has_blocking(findings: list[Finding]) -> bool:
    return any(f.status == BLOCKING for f in findings)
