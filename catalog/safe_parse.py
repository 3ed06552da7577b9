"""JSON and YAML from untrusted hands (request bodies, query parameters, uploaded manifests),
parsed with limits, so that hostile text is refused with a message instead of crashing or
stalling a worker.

Python's `json` recurses once per nesting level (RecursionError near 1,000 levels, a crash in
whatever reads the result later), accepts lone surrogates that no UTF-8 writer can encode, and
turns a 5,000-digit integer into a ValueError deep in a handler. PyYAML's composer recurses the
same way, and aliases let 1 KB of YAML stand for a billion nodes ("billion laughs"): safe_load
shares them, but every walk over the result expands them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import yaml

from catalog.core.errors import first_line

MAX_DEPTH = 64  # arrays and objects inside each other; CQL2, GeoJSON and manifests need < 20
_TOO_DEEP = f"JSON nested more than {MAX_DEPTH} levels deep (arrays and objects)"
MAX_INT = 2**63 - 1  # what SQLite and every 64-bit consumer can hold
SURROGATES = re.compile(r"[\ud800-\udfff]")


class UnsafeInput(ValueError):
    """Text that is not valid, or not acceptable, JSON or YAML; the message says why."""

    def __init__(self, what: str, detail: str, line: int | None = None):
        where = f"{what}: line {line}" if line is not None else what
        super().__init__(f"{where}: {detail}")
        self.detail = detail
        self.line = line


def parse_json(data: bytes | str, what: str = "request body") -> Any:
    """Parse JSON text, refusing invalid UTF-8, lone surrogates, NaN/Infinity, numbers
    beyond 64-bit integers or doubles, and nesting deeper than MAX_DEPTH."""
    try:
        # orjson checks the encoding, escapes and number ranges in C without recursing in
        # Python; its own depth limit (1024) only keeps it safe, MAX_DEPTH is checked below.
        shape = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        if "depth limit" in str(err) or "recursion" in str(err).lower():
            raise UnsafeInput(what, _TOO_DEEP) from None
        if "infinity" in str(err):  # 1e999, or an integer of hundreds of digits
            raise UnsafeInput(what, "a number is out of range (beyond 64-bit integers and "
                                    f"doubles): {first_line(err, 200)}") from None
        raise UnsafeInput(what, f"not valid JSON ({first_line(err, 200)})") from None
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    # Fewer brackets than levels allowed (brackets inside strings only count extra): no walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(shape) > MAX_DEPTH:
        raise UnsafeInput(what, _TOO_DEEP)
    # The result callers get is the standard library's (the same values pygeoapi and Flask
    # would see), now that it cannot recurse too deep; integers are bounded on the way.
    try:
        return json.loads(text, parse_int=lambda digits: _bounded_int(digits, what))
    except UnsafeInput:
        raise
    except ValueError as err:
        raise UnsafeInput(what, f"not valid JSON ({first_line(err, 200)})") from None


def nul_text_at(value: Any, where: str) -> str | None:
    """Where in a parsed JSON value (`where`, then `.key`s; keys count as their object's)
    the first text holding U+0000 is, or None. No request text needs one, and PostgreSQL's
    text cannot hold it: the APIs refuse it before any engine sees it."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = where if "\x00" in key else nul_text_at(item, f"{where}.{key}"[:100])
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = nul_text_at(item, where)
            if found is not None:
                return found
    return None


def check_yaml(text: str, what: str = "manifest") -> None:
    """Refuse YAML with aliases (or anchors), explicit tags (!!binary, !!python/..., !x: a
    manifest is plain data), nesting deeper than MAX_DEPTH, or a lone surrogate escape (no
    UTF-8 file can hold one), by reading its parser events (the parser is iterative; only
    composing and constructing recurse)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UnsafeInput(what, "YAML anchors and aliases (&, *) are not accepted; "
                                  "write the values out", line)
            if getattr(event, "tag", None) is not None:
                raise UnsafeInput(what, f"YAML tags ({event.tag}) are not accepted; write plain "
                                  "values", line)
            if isinstance(event, yaml.ScalarEvent) and _lone_surrogate(event.value):
                raise UnsafeInput(what, "a lone surrogate escape (\\uD800-\\uDFFF without "
                                  "its pair) is not a character", line)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise UnsafeInput(what, f"nested more than {MAX_DEPTH} levels deep", line)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # not YAML at all: the loader reports it with its line


def load_yaml(text: str, what: str = "manifest") -> Any:
    """yaml.safe_load after check_yaml: UnsafeInput for bombs, yaml.YAMLError for bad YAML.
    Surrogate pairs written as escapes (JSON's "\\ud83d\\ude00", which YAML reads as two
    code points) become the character they stand for."""
    check_yaml(text, what)
    try:
        data = yaml.safe_load(text)
    except (ValueError, OverflowError) as err:  # PyYAML's constructors: 2024-13-45, 10**5000
        raise UnsafeInput(what, f"not valid YAML: {first_line(err, 200)}") from None
    return _join_surrogate_pairs(data)


def compose_yaml(text: str, what: str = "manifest") -> yaml.Node | None:
    """yaml.compose (node tree with line marks) after check_yaml."""
    check_yaml(text, what)
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _lone_surrogate(text: str) -> bool:
    if not SURROGATES.search(text):
        return False
    try:
        _join(text)
    except UnicodeDecodeError:
        return True
    return False


def _join(text: str) -> str:
    if not SURROGATES.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def _join_surrogate_pairs(value: Any) -> Any:
    """The loaded document with surrogate pairs joined in every string (a tree: no aliases)."""
    if isinstance(value, str):
        return _join(value)
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                child = node.pop(key)
                node[_join(key) if isinstance(key, str) else key] = \
                    _join(child) if isinstance(child, str) else child
                stack.append(child)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                if isinstance(child, str):
                    node[index] = _join(child)
                stack.append(child)
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON up to MAX_DEPTH + 1, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:  # one level past the limit is enough to refuse
            stack.extend((child, level + 1) for child in node)
    return deepest


def _bounded_int(digits: str, what: str) -> int:
    if len(digits.lstrip("-")) > 19 or not -MAX_INT - 1 <= int(digits) <= MAX_INT:
        shown = digits[:24] + ("..." if len(digits) > 24 else "")
        raise UnsafeInput(what, f"the integer {shown} is out of range (64-bit integers only)")
    return int(digits)

