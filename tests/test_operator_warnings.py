"""Warnings of the floors below the command line (the store, the STAC index, the publish) are
log records with a text code: the server logs them in English, and `taza` says each as one
`warning: ...` line in the operator's language, never with a traceback (before, `taza
publish` printed the STAC index's warning in English and then its traceback through Python's
last-resort log handler)."""

from __future__ import annotations

import ast
import importlib
import logging
import shutil
import sys

import pytest

from catalog.core.operator_texts import PLACEHOLDER, OperatorTexts, OperatorWarnings
from tests.conftest import ROOT, airports_home, run_taza

PACKAGE = ROOT / "catalog"
COMMAND_MODULES = {PACKAGE / "cli.py", *PACKAGE.glob("*/cli.py")}


def _warnings_said() -> list[tuple[str, int, str, str, set[str]]]:
    """(module, line, texts name, code, keyword names) of every warn_operator call."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "warn_operator":
                texts, code = node.args[0], node.args[1]
                assert isinstance(texts, ast.Name) and isinstance(code, ast.Constant), \
                    f"{path}:{node.lineno}: give a module's texts and a literal code"
                calls.append((module, node.lineno, texts.id, code.value,
                              {keyword.arg for keyword in node.keywords}))
    return calls


def test_every_warning_said_has_its_texts_with_the_params_it_is_given():
    said = _warnings_said()
    wrong = []
    for module, line, name, code, params in said:
        texts = getattr(importlib.import_module(module), name)
        assert isinstance(texts, OperatorTexts)
        if code not in texts.table:
            wrong.append(f"{module}:{line}: no text {code}")
        elif set(PLACEHOLDER.findall(texts.table[code]["en"])) != params:
            wrong.append(f"{module}:{line}: {code} is given {sorted(params)}")
    assert wrong == []
    assert len(said) >= 4  # the STAC index, the audit head, the publish's two


def test_below_the_command_line_only_developer_tools_print():
    """A module that prints is a command (a cli.py) or a tool with its own __main__ (the
    private PostgreSQL and object store that the Makefile and the tests start)."""
    printing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts or path in COMMAND_MODULES:
            continue
        source = path.read_text(encoding="utf-8")
        prints = [node.lineno for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id == "print"]
        if prints and 'if __name__ == "__main__":' not in source:
            printing.append(f"{path.relative_to(ROOT)}:{prints[0]}")
    assert printing == []


def test_a_warning_is_one_line_without_its_traceback(capsys, monkeypatch):
    monkeypatch.setenv("LANGUAGE", "ru")
    handler = OperatorWarnings()
    try:
        raise OSError("disk full")
    except OSError:
        record = logging.LogRecord("catalog.x", logging.WARNING, __file__, 1,
                                   "index lag: %s", ("disk full",), sys.exc_info())
    handler.emit(record)
    assert capsys.readouterr().err == "предупреждение: index lag: disk full\n"


def test_the_handler_is_installed_once(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    OperatorWarnings.install()
    OperatorWarnings.install()
    assert [type(handler) for handler in root.handlers] == [OperatorWarnings]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return airports_home(tmp_path_factory.mktemp("warnings"))


@pytest.mark.parametrize("language, expected", [
    ("en_GB.UTF-8", "warning: STAC index not updated (unable to open database file); the API "
                    "will catch up on its next request\n"),
    ("ru_RU.UTF-8", "предупреждение: индекс STAC не обновлён (unable to open database file); "
                    "API обновит его при следующем запросе\n")])
def test_a_publish_whose_stac_index_cannot_be_opened_warns_in_one_line(
        published, tmp_path, language, expected):
    home = tmp_path / "home"
    shutil.copytree(published, home)
    for index in home.glob("stac-index.sqlite*"):
        index.unlink()
    (home / "stac-index.sqlite").mkdir()  # the index cannot be opened: the release is live
    done = run_taza("--home", str(home), "publish", str(ROOT / "datasets" / "lakes.yaml"),
                    language=language)
    assert done.returncode == 0, done.stderr
    assert done.stderr == expected
    listed = run_taza("--home", str(home), "list")
    assert "lakes" in listed.stdout
