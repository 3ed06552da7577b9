"""Imports of the bottom floors go one way (issue 12): read from the source with `ast`.

- catalog.core imports nothing else of the catalog;
- catalog.gpkg (the GeoPackage library) imports only catalog.core;
- conversion and source reading import no service (ogc, stac_api, portal, processes,
  stewards) and not the app;
- outside catalog.gpkg, the library is used through `catalog.gpkg` and the names of its
  `__all__` only;
- no module imports a private (leading underscore) name of another package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import catalog.gpkg
from tests.conftest import ROOT

CATALOG = ROOT / "catalog"
SERVICES = ("catalog.ogc", "catalog.stac_api", "catalog.portal", "catalog.processes",
            "catalog.stewards", "catalog.app", "catalog.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import in the file, nested ones included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [alias.name for alias in node.names], node.lineno


def catalog_imports(package: str) -> list[tuple[str, str, list[str], int]]:
    folder = CATALOG.joinpath(*package.split(".")[1:])
    files = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
    return [(module_name(path), module, names, line)
            for path in files for module, names, line in imports(path)
            if module == "catalog" or module.startswith("catalog.")]


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(("package", "allowed"), [
    ("catalog.core", ("catalog.core",)),
    ("catalog.gpkg", ("catalog.core", "catalog.gpkg")),
])
def test_bottom_floors_import_only_what_is_below(package, allowed):
    wrong = [(source, module, line) for source, module, _, line in catalog_imports(package)
             if not any(inside(module, ok) for ok in allowed)]
    assert wrong == []


@pytest.mark.parametrize("package", ["catalog.convert", "catalog.sources"])
def test_conversion_and_sources_import_no_service(package):
    wrong = [(source, module, line) for source, module, _, line in catalog_imports(package)
             if any(inside(module, service) for service in SERVICES)]
    assert wrong == []


def test_the_geopackage_library_is_used_through_its_public_names():
    public = set(catalog.gpkg.__all__)
    wrong = []
    for source, module, names, line in catalog_imports("catalog"):
        if inside(source, "catalog.gpkg") or not inside(module, "catalog.gpkg"):
            continue
        if module != "catalog.gpkg" or set(names) - public:
            wrong.append((source, module, names, line))
    assert wrong == []


def test_no_private_names_cross_packages():
    wrong = []
    for source, module, names, line in catalog_imports("catalog"):
        source_package = ".".join(source.split(".")[:2])
        if inside(module, source_package):
            continue
        for name in names:
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                wrong.append((source, module, name, line))
    assert wrong == []


def test_every_floor_is_in_the_import_contract_and_the_contract_holds():
    """`.importlinter` lists every package and module of catalog/ (a new one cannot escape
    the floors), and lint-imports (also run by `make test`) finds the contract kept."""
    config = (ROOT / ".importlinter").read_text(encoding="utf-8")
    listed = set()
    for line in config.split("layers =", 1)[1].splitlines():
        listed.update(name.strip() for name in line.split("|") if name.strip())
    present = {f"catalog.{p.stem}" for p in CATALOG.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists())
               or (p.suffix == ".py" and p.stem != "__init__")}
    assert present - listed == set(), "add these to a floor in .importlinter"
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_command_line_does_not_load_the_layer_readers():
    """Every `taza` command imports catalog.cli, and the stewards' tests alone run hundreds:
    the layers' readers (numpy, shapely, GDAL's bindings, pygeoapi) load where a command uses
    them, not with the command line (catalog.postgis names its layers lazily for that)."""
    heavy = ("numpy", "shapely", "rasterio", "fiona", "pygeoapi", "pygeofilter", "flask")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, catalog.cli; "
         f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_the_postgis_package_names_what_it_exports():
    import catalog.postgis

    for name in catalog.postgis.__all__:
        assert getattr(catalog.postgis, name) is not None, name
    with pytest.raises(AttributeError):
        catalog.postgis.no_such_name  # noqa: B018
