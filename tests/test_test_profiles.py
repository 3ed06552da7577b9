"""The PostgreSQL test profile's machinery (tests/conftest.py), on either profile: a home
remembers its database, every child over it gets it, and a copy of the home is a catalog of its
own (its database copied as a template), so tests that change a copy never touch the original.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import (
    copy_dataset,
    copy_home,
    drop_database,
    home_database,
    home_environment,
    new_home_database,
    taza,
)


def test_a_copied_home_has_a_database_of_its_own(private_postgres, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = new_home_database(private_postgres, home, "scratch")
    copied = None
    try:
        assert home_environment(home) == {"TAZA_DATABASE_URL": url}
        manifest = copy_dataset("airports", tmp_path / "work")
        taza("publish", str(manifest), home=home)  # through home_environment: into `url`
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT count(*) FROM taza_state.live_release"
                                      ).fetchone()[0] == 1
        copy = copy_home(home, tmp_path / "copy")
        copied = home_database(copy)
        assert copied not in (None, url)
        text = manifest.read_text(encoding="utf-8")
        manifest.write_text(text.replace("Airports and airfields of Kyrgyzstan",
                                         "Airports and airfields (revised)"), encoding="utf-8")
        assert "published airports version 2" in taza("publish", str(manifest), home=copy).stdout
        assert "versions: 1, 2" in taza("list", home=copy).stdout
        assert "versions: 1, 2" not in taza("list", home=home).stdout  # the original: 1 only
    finally:
        drop_database(copied)
        drop_database(url)


def test_a_home_without_a_database_stays_embedded(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when this process holds another home's fixture database (test_home_profile)."""
    home = tmp_path / "embedded"
    home.mkdir()
    assert home_database(home) is None and home_environment(home) == {}
    monkeypatch.setenv("TAZA_DATABASE_URL",
                       "postgresql://taza:x@127.0.0.1:9/published_0123456789abcdef")
    assert home_environment(home) == {"TAZA_DATABASE_URL": ""}
    monkeypatch.setenv("TAZA_DATABASE_URL", "postgresql://taza:x@127.0.0.1:9/stewards_access")
    assert home_environment(home) == {}  # a test's own database is inherited as before


def _marks_on_helpers(source: str) -> list[str]:
    """Functions that carry a pytest mark (pytest.mark.x, or a name bound to one at module
    level) but are not tests: a mark there is lost, the test it was meant for runs unmarked
    (an embedded-only test run on the PostgreSQL profile)."""
    import ast

    def is_mark(node: ast.AST) -> bool:
        node = node.func if isinstance(node, ast.Call) else node
        return "pytest.mark." in ast.unparse(node) + "." or \
            isinstance(node, ast.Name) and node.id in mark_names

    tree = ast.parse(source)
    mark_names = {target.id for node in tree.body if isinstance(node, ast.Assign)
                  and "pytest.mark." in ast.unparse(node.value)
                  for target in node.targets if isinstance(target, ast.Name)}
    return [node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and not node.name.startswith("test")
            and any(is_mark(d) for d in node.decorator_list)
            and not any("fixture" in ast.unparse(d) for d in node.decorator_list)]


def test_marks_sit_on_tests_only() -> None:
    tests = Path(__file__).parent
    misplaced = {path.name: found for path in sorted(tests.glob("test_*.py"))
                 if (found := _marks_on_helpers(path.read_text(encoding="utf-8")))}
    assert misplaced == {}


def test_a_mark_on_a_helper_is_found() -> None:
    source = ('import pytest\nONLY = pytest.mark.embedded_only("x")\n\n'
              '@ONLY\ndef helper():\n    pass\n\n\n@pytest.mark.slow\ndef other():\n    pass\n\n\n'
              '@ONLY\ndef test_fine():\n    pass\n\n\n@pytest.fixture\ndef home():\n    pass\n')
    assert _marks_on_helpers(source) == ["helper", "other"]
