"""SQL pieces both STAC index backends share: sort keys, keyset paging, page tokens, time
overlap and queryables. The SQL differs only in its placeholder and null-safe equality, given
by `Marks` (SQLite: `?` and `IS`; PostgreSQL: `%s` and `IS NOT DISTINCT FROM`)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from catalog.stac_index.backend import InvalidQuery, Page, SortKey, TimeRange


@dataclass(frozen=True)
class Marks:
    placeholder: str
    same: str  # null-safe equality
    true: str
    false: str


SQLITE_MARKS = Marks("?", "IS", "1", "0")
POSTGRESQL_MARKS = Marks("%s", "IS NOT DISTINCT FROM", "TRUE", "FALSE")


class Key:
    """One ORDER BY key: SQL (with its parameters) and direction."""

    def __init__(self, sql: str, params: list, descending: bool, nullable: bool):
        self.sql, self.params, self.descending, self.nullable = sql, params, descending, nullable


def overlap(start_sql: str, end_sql: str, span: TimeRange, marks: Marks) -> tuple[str, list]:
    terms, params = [], []
    if span.end is not None:
        terms.append(f"{start_sql} <= {marks.placeholder}")
        params.append(span.end)
    if span.start is not None:
        terms.append(f"{end_sql} >= {marks.placeholder}")
        params.append(span.start)
    return " AND ".join(terms) or marks.true, params


def after(keys: list[Key], values: list, marks: Marks) -> tuple[str, list]:
    """Rows strictly after `values` in the keys' order (keyset paging, no OFFSET). NULLs sort
    first ascending and last descending (SQLite's order; the PostgreSQL backend asks for it)."""
    mark = marks.placeholder
    if all(not k.nullable and k.descending == keys[0].descending for k in keys):
        op = "<" if keys[0].descending else ">"
        row = ", ".join(k.sql for k in keys)
        return (f"({row}) {op} ({', '.join([mark] * len(keys))})",
                [p for k in keys for p in k.params] + list(values))
    # Mixed directions or NULLs: (k1 > v1) OR (k1 IS v1 AND k2 > v2) OR ... ; a NULL value is
    # "after" only through null-safe equality.
    clauses, params = [], []
    for position, key in enumerate(keys):
        terms, term_params = [], []
        for earlier, value in zip(keys[:position], values, strict=False):
            terms.append(f"{earlier.sql} {marks.same} {mark}")
            term_params += [*earlier.params, value]
        value = values[position]
        if value is None:
            if key.descending:
                continue  # nothing sorts after NULL when descending
            terms.append(f"{key.sql} IS NOT NULL")
            term_params += key.params
        elif key.descending and key.nullable:
            terms.append(f"({key.sql} < {mark} OR {key.sql} IS NULL)")
            term_params += [*key.params, value, *key.params]
        else:
            terms.append(f"{key.sql} {'<' if key.descending else '>'} {mark}")
            term_params += [*key.params, value]
        clauses.append("(" + " AND ".join(terms) + ")")
        params += term_params
    return "(" + (" OR ".join(clauses) or marks.false) + ")", params


def signature(sortby: Sequence[SortKey]) -> str:
    text = ",".join(f"{'-' if s.descending else '+'}{s.field}" for s in sortby)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode_token(found_signature: str, values: list) -> str:
    raw = json.dumps([found_signature, values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, expected_signature: str, keys: list[Key]) -> list:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        found_signature, values = json.loads(raw)
    except (ValueError, TypeError):
        raise InvalidQuery("token: not a token this server issued",
                           message_code="page_token_invalid") from None
    valid = (isinstance(values, list) and len(values) == len(keys)
             and all(v is None or isinstance(v, str | int | float) and not isinstance(v, bool)
                     for v in values)
             and all(not isinstance(v, float) or math.isfinite(v) for v in values))
    if not valid:
        raise InvalidQuery("token: not a token this server issued",
                           message_code="page_token_invalid")
    if found_signature != expected_signature:
        raise InvalidQuery("token: issued for another sortby; start again without a token",
                           message_code="page_token_invalid")
    return values


def merged_queryables(core: dict[str, dict], per_collection: Iterable[dict]) -> dict[str, dict]:
    """Core queryables plus each property found in the collections' items (first schema wins)."""
    found: dict[str, dict] = {}
    for schemas in per_collection:
        for name, schema in schemas.items():
            found.setdefault(name, schema)
    found.pop("datetime", None)
    return {**core, **dict(sorted(found.items()))}


def declared_kinds(queryables: dict[str, dict]) -> dict[str, str]:
    """Types of the properties the items carry, so `title = 5` is refused, not false."""
    kinds = {}
    for name, schema in queryables.items():
        if schema.get("type") in ("string", "integer", "number", "boolean"):
            kinds[name] = "date-time" if schema.get("format") == "date-time" else schema["type"]
    return kinds


def keyset_page(rows: list[tuple], limit: int, sort_signature: str,
                document: Callable[[object], dict]) -> Page:
    """Rows (document, sort key values...) fetched with LIMIT limit + 1 -> a page whose token
    holds the last row's keys when there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    token = encode_token(sort_signature, list(rows[-1][1:])) if more and rows else None
    return Page([document(r[0]) for r in rows], token)


def offset_page(rows: list[tuple], limit: int, offset: int,
                document: Callable[[object], dict]) -> Page:
    """Rows (document,) fetched with LIMIT limit + 1 OFFSET offset -> a page and the next
    offset as its token."""
    more = len(rows) > limit
    return Page([document(r[0]) for r in rows[:limit]], str(offset + limit) if more else None)
