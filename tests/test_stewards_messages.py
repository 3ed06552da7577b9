"""Every refusal the stewards' API raises carries a message code whose text exists in Kyrgyz,
Russian and English with the placeholders its params fill; every manifest validation message
likewise (pure and fast: the codes are read from the source with `ast`, so a new refusal or
manifest message without a code, or a code without texts, fails here)."""

from __future__ import annotations

import ast
import inspect
import string
from pathlib import Path

import pytest
import yaml

import catalog.stewards.errors as errors
from catalog.portal import i18n
from catalog.sources.findings import finding_texts

ROOT = Path(__file__).resolve().parents[1]
STEWARDS = sorted((ROOT / "catalog" / "stewards").glob("*.py"))
MANIFEST = ROOT / "catalog" / "manifest.py"
LANGUAGES = {"ky", "ru", "en"}
REFUSALS = {name for name, value in vars(errors).items()
            if inspect.isclass(value) and issubclass(value, errors.ServiceError)}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def coded_calls(path: Path, callee) -> list[tuple[str, str | None, set[str] | None]]:
    """(where, code, param names) of every call `callee(node)` accepts: code None when the
    call names none; param names None when they are not a literal dict with text keys."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # the checker's own `problem` method passes its callers' codes on: not a call site
    forwarding = [range(f.lineno, f.end_lineno + 1) for f in ast.walk(tree)
                  if isinstance(f, ast.FunctionDef) and f.name == "problem"]
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and callee(node)):
            continue
        if any(node.lineno in lines for lines in forwarding):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        code_node = keywords.get("message_code", keywords.get("messageCode",
                                                              keywords.get("code")))
        code = code_node.value if isinstance(code_node, ast.Constant) else None
        params_node = keywords.get("params")
        names: set[str] | None = set()
        if params_node is not None:
            names = ({k.value for k in params_node.keys if isinstance(k, ast.Constant)}
                     if isinstance(params_node, ast.Dict) else None)
        found.append((f"{path.name}:{node.lineno}", code, names))
    return found


def check_texts(calls, texts: dict, prefix: str) -> None:
    assert calls, "no calls found: the test reads the wrong files"
    for where, code, names in calls:
        assert isinstance(code, str) and code, f"{where}: no literal message code"
        entry = texts.get(f"{prefix}{code}")
        assert entry and set(entry) == LANGUAGES, f"{where}: {code} lacks ky/ru/en texts"
        used = {language: placeholders(text) for language, text in entry.items()}
        assert len({frozenset(u) for u in used.values()}) == 1, (where, code, used)
        assert names is not None, f"{where}: params of {code} are not a literal dict"
        assert used["en"] <= names, f"{where}: {code} says {used['en'] - names}, not in params"


def _is_refusal(node: ast.Call) -> bool:
    """A ServiceError raised, or an error answer written out with its messageCode."""
    return isinstance(node.func, ast.Name) and (
        node.func.id in REFUSALS
        or node.func.id == "jsonify" and any(k.arg == "messageCode" for k in node.keywords))


def test_every_stewards_refusal_has_a_code_and_texts_in_three_languages():
    calls = [call for path in STEWARDS for call in coded_calls(path, _is_refusal)]
    assert len(calls) > 80
    check_texts(calls, i18n.strings(), "problem.")


def _is_manifest_problem(node: ast.Call) -> bool:
    """`self.problem(...)` of the checker, or a `Problem(...)` made in catalog/manifest.py."""
    return ((isinstance(node.func, ast.Attribute) and node.func.attr == "problem")
            or (isinstance(node.func, ast.Name) and node.func.id == "Problem"))


def test_every_manifest_problem_has_a_code_and_texts_in_three_languages():
    calls = coded_calls(MANIFEST, _is_manifest_problem)
    assert len(calls) > 60
    check_texts(calls, finding_texts(), "")


# Where a publish finds problems: the pipeline, and the source readers and their isolation.
PUBLISH_TIME = [ROOT / "catalog" / "publish.py",
                *sorted((ROOT / "catalog" / "sources").glob("*.py"))]
PUBLISH_PROBLEMS = {"Problem", "PublishError", "ReaderFailed", "ReaderUnavailable"}


def _is_publish_problem(node: ast.Call) -> bool:
    """A Problem, PublishError or ReaderFailed made at publish time, unless it passes on the
    code of another (`code=err.code`: that one is checked where it is made)."""
    if not (isinstance(node.func, ast.Name) and node.func.id in PUBLISH_PROBLEMS):
        return False
    code = next((k.value for k in node.keywords if k.arg == "code"), None)
    return not (isinstance(code, ast.Attribute) and code.attr == "code")


def test_every_publish_time_problem_has_a_code_and_texts_in_three_languages():
    """A raster without bands, a limit of the reader, a failed release switch...: each says
    its code, and the code has ky/ru/en texts with the placeholders its params fill."""
    calls = [call for path in PUBLISH_TIME for call in coded_calls(path, _is_publish_problem)]
    places = {where.split(":")[0] for where, _, _ in calls}
    assert {"publish.py", "raster.py", "vector.py", "isolation.py", "reader.py"} <= places
    assert len(calls) > 50
    check_texts(calls, finding_texts(), "")


def test_the_publish_check_notices_a_missing_code(tmp_path):
    source = tmp_path / "new.py"
    source.write_text('raise PublishError("new")\n'
                      'Problem("x", "y", code="raster_no_bands", params={})\n'
                      'raise ReaderFailed("z", code="reader_error", params={"n": 1})\n'
                      'Problem("x", "y", code=err.code)\n')
    calls = coded_calls(source, _is_publish_problem)
    assert len(calls) == 3  # the last passes another's code on
    with pytest.raises(AssertionError):  # no code
        check_texts(calls[:1], finding_texts(), "")
    with pytest.raises(AssertionError):  # {file} not in its params
        check_texts(calls[1:2], finding_texts(), "")
    check_texts(calls[2:], finding_texts(), "")


def test_a_refusal_answers_its_code_and_params_beside_the_english_description():
    refusal = errors.Conflict("x exists already", message_code="dataset_exists",
                              params={"id": "x", "organisation": "o"}, field="id")
    assert refusal.as_dict() == {"code": "Conflict", "description": "x exists already",
                                 "status": 409, "field": "id", "messageCode": "dataset_exists",
                                 "params": {"id": "x", "organisation": "o"}}


def test_the_checker_notices_a_missing_code(tmp_path):
    """The check itself fails on a refusal without a code or without texts."""
    source = tmp_path / "new.py"
    source.write_text('raise BadRequest("new")\nraise NotFound("n", message_code="nope")\n')
    calls = coded_calls(source, _is_refusal)
    with pytest.raises(AssertionError):
        check_texts(calls[:1], i18n.strings(), "problem.")
    with pytest.raises(AssertionError):
        check_texts(calls[1:], i18n.strings(), "problem.")


def test_a_manifest_full_of_problems_is_reported_in_each_language_without_english_left(
        tmp_path):
    """Every finding of a badly wrong manifest has a code the report and the page translate;
    in Russian and Kyrgyz none falls back to the English message."""
    from catalog.sources.findings import finding_text
    from catalog.stewards.report import manifest_findings, ordered

    text = yaml.safe_dump({
        "id": "Wrong_Id", "theme": "space", "title": {"en": "Wells", "xx": "?"},
        "description": {"ru": ""}, "keywords": {"en": []}, "licence": "my own",
        "steward": {"name": "A", "organisation": "B", "email": "nobody"},
        "nature": "modelled", "provenance": {"method": "m", "derived_from": [{"href": "ftp://x"}]},
        "update_frequency": "daily", "temporal_extent": {"start": "2024-13-01", "end": "2020"},
        "raster": {"classes": [{"value": 1.5, "name": "a b", "colour": "red", "x": 1}]},
        "role": "nothing", "extra": 1, "items": "no"})
    findings = ordered(manifest_findings(text, "wells", tmp_path))
    assert len(findings) > 20
    for finding in findings:
        assert finding["code"] in finding_texts(), finding
        for language in ("ky", "ru"):
            said = finding_text(finding, language)
            assert said != finding["message"] and "{" not in said, (language, finding, said)
