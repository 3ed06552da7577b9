"""catalog/ uses pygeoapi through its public API only, and never rewrites a request (issue 12):
read from the source with `ast`, so an upgrade of pygeoapi is not an audit.

What counts as a touchpoint (each of the ones the code had is below, and must be found):
- an assignment (or `setattr`, `del`) into anything reached from a pygeoapi import: a module
  global swapped (`flask_app.api_`, `itemtypes.transform_bbox`, `manager.base.uuid`), a registry
  mutated (`PLUGINS[...][...] = ...`);
- importing `pygeoapi.flask_app` (or its Starlette and Django twins), which configure
  themselves into module globals from environment variables, or setting those variables;
- an attribute whose name is private (one leading underscore) in pygeoapi, werkzeug or Flask,
  read or written on any object (`api_request._format`, `request._cached_data`, also through
  `getattr`/`setattr` with the name as text), or on `self` in a class built on theirs
  (`self._coverage_properties`), and private methods of theirs overridden
  (`def _execute_handler_sync`);
- the client's request rewritten: an assignment into `flask.request` or its environ
  (`request.args = ...`, `request.environ["HTTP_PREFER"] = ...`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

CATALOG = ROOT / "catalog"
THEIRS = ("pygeoapi", "werkzeug", "flask")  # packages whose private names are theirs
CONFIGURED_AT_IMPORT = ("pygeoapi.flask_app", "pygeoapi.starlette_app", "pygeoapi.django_app")
# What the client sent, as Flask's request holds it (settings such as max_content_length,
# which Flask documents as settable per request, are not in this list).
SENT = {"args", "form", "values", "data", "json", "files", "headers", "cookies", "environ",
        "stream", "path", "full_path", "method", "url", "base_url", "query_string",
        "input_stream", "content_type", "mimetype", "accept_mimetypes"}
@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


@cache
def private_names() -> frozenset[str]:
    """Names with one leading underscore that pygeoapi, werkzeug and Flask define as
    attributes or methods (read from their installed source)."""
    names: set[str] = set()
    for package in THEIRS:
        folder = Path(importlib.util.find_spec(package).origin).parent
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            names.add(item.name)
                        elif isinstance(item, ast.Assign | ast.AnnAssign):
                            targets = item.targets if isinstance(item, ast.Assign) \
                                else [item.target]
                            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return frozenset(name for name in names if _private(name))


@cache
def class_private_names(module: str, name: str) -> frozenset[str]:
    """The private names (methods, attributes set on self) of a pygeoapi, werkzeug or Flask
    class and of its bases from those packages."""
    names: set[str] = set()
    for cls in getattr(importlib.import_module(module), name).__mro__:
        if not _is_theirs(cls.__module__):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return frozenset(n for n in names if _private(n))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_theirs(module: str) -> bool:
    return module.split(".")[0] in THEIRS


def _is_pygeoapi(module: str) -> bool:
    return module.split(".")[0] == "pygeoapi"


class Checker(ast.NodeVisitor):
    """The touchpoints in one module's source."""

    def __init__(self, path: str):
        self.path = path
        self.findings: list[Finding] = []
        self.pygeoapi_names: set[str] = set()  # local names bound to pygeoapi modules/objects
        self.their_classes: dict[str, tuple[str, str]] = {}  # local name -> (module, class)
        self.request_names: set[str] = set()  # local names of flask.request
        # For each enclosing class: the private names of the classes of theirs it is built on.
        self.class_stack: list[frozenset[str]] = []

    def found(self, node: ast.AST, what: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), what))

    # -- imports ------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in CONFIGURED_AT_IMPORT:
                self.found(node, f"imports {alias.name} (configured into module globals)")
            if _is_pygeoapi(alias.name):
                self.pygeoapi_names.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            dotted = f"{module}.{alias.name}"
            if dotted in CONFIGURED_AT_IMPORT or module in CONFIGURED_AT_IMPORT:
                self.found(node, f"imports {dotted} (configured into module globals)")
            local = alias.asname or alias.name
            if _is_pygeoapi(module):
                self.pygeoapi_names.add(local)
            if _is_theirs(module) and alias.name[:1].isupper():
                self.their_classes[local] = (module, alias.name)
            if module == "flask" and alias.name == "request":
                self.request_names.add(local)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if name in ("importlib.import_module", "import_module", "__import__") and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).startswith("pygeoapi"):
            self.found(node, f"imports {node.args[0].value} dynamically")
        if name in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2:
            attribute = node.args[1]
            if isinstance(attribute, ast.Constant) and attribute.value in private_names():
                self.found(node, f"{name}(..., {attribute.value!r}): a private attribute")
            if name in ("setattr", "delattr") and self._reaches_pygeoapi(node.args[0]):
                self.found(node, f"{name} on {_dotted(node.args[0])} (pygeoapi)")
        self.generic_visit(node)

    # -- assignments --------------------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target)
        value = node.value
        if isinstance(value, ast.Call) and _dotted(value.func) in (
                "importlib.import_module", "import_module") and value.args \
                and isinstance(value.args[0], ast.Constant) \
                and str(value.args[0].value).startswith("pygeoapi"):
            self.pygeoapi_names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def _check_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._check_target(element)
            return
        if not isinstance(target, ast.Attribute | ast.Subscript):
            return
        if self._reaches_pygeoapi(target.value):
            self.found(target, f"assigns into {_dotted(target)} (pygeoapi)")
        if _root(target) in self.request_names and _request_member(target) in SENT:
            self.found(target, f"rewrites the client's request: {_dotted(target)}")
        if isinstance(target, ast.Subscript) and _dotted(target.value) == "os.environ" and \
                isinstance(target.slice, ast.Constant) and \
                str(target.slice.value).startswith("PYGEOAPI_"):
            self.found(target, f"configures pygeoapi through os.environ[{target.slice.value!r}]")

    def _reaches_pygeoapi(self, node: ast.AST) -> bool:
        return _root(node) in self.pygeoapi_names

    # -- private attributes -------------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        inherited: frozenset[str] = frozenset()
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in self.their_classes:
                inherited |= class_private_names(*self.their_classes[base.id])
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and \
                    item.name in inherited:
                self.found(item, f"overrides their private method {item.name}")
        self.class_stack.append(inherited)
        self.generic_visit(node)
        self.class_stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        # A function inside a class belongs to it; a nested class pushes its own entry.
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        if on_self:
            theirs = node.attr in (self.class_stack[-1] if self.class_stack else ())
        else:
            theirs = node.attr in private_names()
        if theirs:
            self.found(node, f"private attribute {_dotted(node)}")
        self.generic_visit(node)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return f"{_dotted(node.value)}[...]"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}(...)"
    return type(node).__name__


def _request_member(node: ast.AST) -> str | None:
    """`args` for request.args, request.args[...], request.environ[...]."""
    member = None
    while isinstance(node, ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Attribute):
            member = node.attr
        node = node.value
    return member


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def touchpoints(source: str, path: str = "<snippet>") -> list[Finding]:
    checker = Checker(path)
    checker.visit(ast.parse(source))
    return checker.findings


def catalog_files() -> Iterator[Path]:
    yield from sorted(CATALOG.rglob("*.py"))


# -- the catalog --------------------------------------------------------------------------------

def test_catalog_uses_pygeoapi_through_its_public_api_only():
    found = []
    for path in catalog_files():
        found += touchpoints(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    assert [str(f) for f in found] == []


# -- the check finds each touchpoint the code had (issue 12's list) ------------------------------

FORMER_TOUCHPOINTS = {
    "flask_app imported (catalog/ogc/runtime.py)":
        "import importlib\nmodule = importlib.import_module('pygeoapi.flask_app')\n",
    "flask_app imported statically": "from pygeoapi import flask_app\n",
    "PYGEOAPI_CONFIG set for flask_app":
        "import os\nos.environ['PYGEOAPI_CONFIG'] = str(config_path)\n",
    "flask_app.api_ swapped":
        "import importlib\nmodule = importlib.import_module('pygeoapi.flask_app')\n"
        "module.api_ = API(config, openapi)\n",
    "flask_app.CONFIG swapped":
        "import pygeoapi.flask_app as flask_app\nflask_app.CONFIG = config\n",
    "PLUGINS mutated (runtime.py)":
        "from pygeoapi.plugin import PLUGINS\nPLUGINS[kind][name] = dotted_path\n",
    "transform_bbox replaced":
        "import pygeoapi.api.itemtypes as itemtypes\nitemtypes.transform_bbox = transform_bbox\n",
    "the job manager's uuid replaced (jobs.py)":
        "import pygeoapi.process.manager.base as pygeoapi_manager_base\n"
        "pygeoapi_manager_base.uuid = _RandomJobIds()\n",
    "_execute_handler_sync overridden":
        "from pygeoapi.process.manager.base import BaseManager\n"
        "class SQLiteJobManager(BaseManager):\n"
        "    def _execute_handler_sync(self, p, job_id, data_dict):\n        pass\n",
    "_execute_handler_async overridden":
        "from pygeoapi.process.manager.base import BaseManager\n"
        "class SQLiteJobManager(BaseManager):\n"
        "    def _execute_handler_async(self, p, job_id, data_dict):\n        pass\n",
    "APIRequest._format written (items.py)":
        "api_request._format = value\n",
    "APIRequest._get_format called (items.py)":
        "value = api_request._get_format(api_request.headers, extra)\n",
    "BaseProvider._fields written (providers/geopackage.py)":
        "from pygeoapi.provider.base import BaseProvider\n"
        "class GeoPackageProvider(BaseProvider):\n"
        "    def __init__(self, provider_def):\n        self._fields = self.get_fields()\n",
    "_coverage_properties read (providers/cog.py)":
        "from pygeoapi.provider.rasterio_ import RasterioProvider\n"
        "class CogProvider(RasterioProvider):\n"
        "    def _window(self):\n        return self._coverage_properties['x_axis_label']\n",
    "request._cached_data written (adapters.py)":
        "from flask import request\nrequest._cached_data = body\n",
    "request._cached_data read through getattr (adapters.py)":
        "from flask import request\ndata = getattr(request, '_cached_data', None)\n",
    "request.args rewritten (adapters.py, processes/web.py)":
        "from flask import request\nrequest.args = ImmutableMultiDict(args)\n",
    "Prefer header rewritten (processes/web.py)":
        "from flask import request\nrequest.environ['HTTP_PREFER'] = 'respond-async'\n",
}


@pytest.mark.parametrize("source", FORMER_TOUCHPOINTS.values(), ids=FORMER_TOUCHPOINTS.keys())
def test_the_check_finds_each_former_touchpoint(source):
    assert touchpoints(source)


@pytest.mark.parametrize("source", [
    "from pygeoapi.api import API\napi = API(config, openapi)\n",  # building their objects
    "import pygeoapi.api.coverages as coverages_api\n"
    "headers, status, content = coverages_api.get_collection_coverage(api, api_request, 'x')\n",
    "from pygeoapi.provider.base import BaseProvider\nclass P(BaseProvider):\n"
    "    def __init__(self, d):\n        self._cache = {}\n        self.axes = ['x', 'y']\n",
    "from flask import g, request\ng.ogc_form = form\nvalue = request.args.get('f')\n"
    "request.max_content_length = 1 << 20\n",
    "class Ours:\n    def __init__(self):\n        self._lock = None\n",
], ids=["an API object", "an API function", "own private state", "flask.g", "own class"])
def test_the_check_leaves_public_use_alone(source):
    assert touchpoints(source) == []
