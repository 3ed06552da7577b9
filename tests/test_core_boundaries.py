"""What the code itself must not do, read from its source (issue 12, items 1 and 5).

- catalog/core is the bottom floor: it imports nothing else of the catalog.
- Records are typed (catalog.core.record): nothing subscripts a record like a dict.
- Nothing outside the store and the core builds a version folder path or an /assets URL:
  both go through the AssetLocator (catalog.core.assets, catalog.store.assets).
- One list of languages (catalog.core.languages): no other tuple or list of language codes
  in Python, no language-to-locale table in the front end, none in pygeoapi's base config.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from catalog.core.languages import LANGUAGES
from tests.conftest import ROOT

CATALOG = ROOT / "catalog"
FRONT_END = [p for pattern in ("**/templates/**/*.html", "**/static/**/*.js")
             for p in CATALOG.glob(pattern) if "node_modules" not in p.parts]


def python_files(*excluded: str) -> list[Path]:
    skip = [CATALOG / e for e in excluded]
    return [p for p in CATALOG.rglob("*.py")
            if not any(p.is_relative_to(s) for s in skip) and "node_modules" not in p.parts]


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (they may mention paths and URLs)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_core_imports_nothing_above_it():
    offences = []
    for path in (CATALOG / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offences += [f"{where(path, node)} imports {name}" for name in names
                         if name.split(".")[0] == "catalog" and
                         not name.startswith("catalog.core")]
    assert not offences


def test_records_are_read_by_attribute_not_by_key():
    """`record["manifest"]`, `store.record(...)["assets"]`: the untyped look-ups are gone."""
    offences = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                    and isinstance(node.slice.value, str)):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id == "record" or \
                    isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                    value.func.attr in ("record", "current_records"):
                offences.append(f"{where(path, node)}: [{node.slice.value!r}]")
    assert not offences


def test_nothing_outside_the_store_builds_version_paths():
    offences = [where(path, node) for path in python_files("store")
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Attribute) and node.attr == "version_dir"]
    assert not offences


def test_nothing_outside_the_core_writes_an_assets_url():
    offences = []
    for path in python_files("core"):
        tree = ast.parse(path.read_text())
        skip = docstrings(tree)
        offences += [where(path, node) for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str)
                     and "/assets" in node.value and id(node) not in skip]
    for path in FRONT_END:
        offences += [f"{path.relative_to(ROOT)}:{number}"
                     for number, line in enumerate(path.read_text().splitlines(), 1)
                     if "/assets/" in line]
    assert not offences


def test_one_list_of_languages():
    codes = set(LANGUAGES)
    offences = []
    for path in python_files("core"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                listed = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if len(listed & codes) >= 2:
                    offences.append(f"{where(path, node)}: {sorted(listed & codes)}")
    code = rf"[\"']?\b({'|'.join(codes)})\b[\"']?"
    # ('ky', 'ru', ...) or ["en", "ru"]; {ky: "ky-KG", ru: ...} or {'ky': 'KY', 'ru': ...}
    code_list = re.compile(rf"[\[(]\s*{code}\s*,\s*{code}")
    code_table = re.compile(rf"{code}\s*:\s*[^,{{}}]+,\s*{code}\s*:")
    for path in FRONT_END:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if code_list.search(line) or code_table.search(line):
                offences.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    base = yaml.safe_load((ROOT / "config" / "pygeoapi.base.yml").read_text())
    if "languages" in base["server"]:
        offences.append("config/pygeoapi.base.yml: server.languages")
    assert not offences
