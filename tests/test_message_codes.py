"""Every message code the server can send (`messageCode` of a refusal or a failed job) has a
text in Kyrgyz, Russian and English (catalog/portal/strings.yml `problem.<code>`) with the same
placeholders in each: the portal says the refusal from these, filled with its `params`.

The codes are read from the source with `ast`, where the server sets them, so a new code
without texts fails here (a pure test, no server):
- a `message_code=` keyword whose value is a string (`refused(..., message_code="x")`), or a
  `messageCode=` keyword with a string (a refusal body written directly, `jsonify(...)`);
- the first argument of a `.coded("x", ...)` call (InvalidInput.coded), and the keys of
  catalog/processes/inputs.py MESSAGES (the English texts of those codes);
- the string values of a dict assigned to a name ending in `MESSAGE_CODES` (codes chosen by
  key: PARSE_MESSAGE_CODES, JOB_MESSAGE_CODES).
A `message_code=` keyword with any other value must pass a code on (an error's
`.message_code`, a `*MESSAGE_CODES` entry, a variable or parameter named `message_code`) or be
`getattr(err, "code", None)`: anything else is a code this test could not see.
"""

from __future__ import annotations

import ast
import re
from functools import cache

import pytest
import yaml

from tests.conftest import ROOT

CATALOG = ROOT / "catalog"
STRINGS = CATALOG / "portal" / "strings.yml"
LANGUAGES = ("ky", "ru", "en")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _passes_a_code_on(node: ast.AST) -> bool:
    """A `message_code=` value that hands on a code set elsewhere (itself collected there)."""
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Attribute) and node.attr == "message_code":
        return True  # err.message_code: the error's own, collected where it was made
    if isinstance(node, ast.Name) and node.id == "message_code":
        return True  # a parameter passed on
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
            and node.value.id.endswith("MESSAGE_CODES"):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "getattr" and len(node.args) >= 2
            and _string(node.args[1]) == "code")  # InvalidInput's and OverBudget's code


def codes_in(source: str, where: str = "<source>") -> tuple[dict[str, str], list[str]]:
    """(code -> the first place it is set, places that set a code this reader cannot see)."""
    codes: dict[str, str] = {}
    unseen: list[str] = []
    for node in ast.walk(ast.parse(source)):
        place = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "messageCode" and _string(keyword.value) is not None:
                    codes.setdefault(_string(keyword.value), place)  # a body written directly
                if keyword.arg != "message_code":
                    continue
                code = _string(keyword.value)
                if code is not None:
                    codes.setdefault(code, place)
                elif not _passes_a_code_on(keyword.value):
                    unseen.append(f"{place}: message_code={ast.unparse(keyword.value)}")
            if isinstance(node.func, ast.Attribute) and node.func.attr == "coded" and node.args:
                code = _string(node.args[0])
                if code is not None:
                    codes.setdefault(code, place)
                else:
                    unseen.append(f"{place}: coded({ast.unparse(node.args[0])}, ...)")
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if any(name.endswith("MESSAGE_CODES") for name in names):
                for value in node.value.values:
                    if _string(value) is not None:
                        codes.setdefault(value.value, place)
            if "MESSAGES" in names and where.endswith("processes/inputs.py"):
                for key in node.value.keys:
                    if key is not None and _string(key) is not None:
                        codes.setdefault(key.value, place)
    return codes, unseen


@cache
def server_codes() -> tuple[dict[str, str], list[str]]:
    codes: dict[str, str] = {}
    unseen: list[str] = []
    for path in sorted(CATALOG.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        found, hidden = codes_in(path.read_text(encoding="utf-8"), where)
        for code, place in found.items():
            codes.setdefault(code, place)
        unseen += hidden
    return codes, unseen


@cache
def problem_texts() -> dict[str, dict]:
    strings = yaml.safe_load(STRINGS.read_text(encoding="utf-8"))
    return {key.removeprefix("problem."): value for key, value in strings.items()
            if key.startswith("problem.")}


def test_the_reader_finds_codes_in_every_form_the_server_sets_them():
    source = '''
raise refused("x", message_code="alpha", params={"n": 1})
raise InvalidInput.coded("beta", low=1)
raise bad_parameter(str(err), message_code=err.message_code)
SOME_MESSAGE_CODES = {("bbox", "type"): "gamma"}
raise refused("x", message_code=pick())
'''
    codes, unseen = codes_in(source)
    assert set(codes) == {"alpha", "beta", "gamma"}
    assert unseen == ["<source>:6: message_code=pick()"]


def test_the_server_sets_codes_for_each_kind_of_refusal():
    codes, _ = server_codes()
    places = {place.split(":")[0] for place in codes.values()}
    # the filter (Features), the parsers they share, the search (STAC), the analysis form,
    # and failed jobs
    for module in ("catalog/features/items.py", "catalog/core/parse.py",
                   "catalog/stac_api/params.py", "catalog/stac_index/sqlite_backend.py",
                   "catalog/processes/inputs.py", "catalog/processes/jobs.py",
                   "catalog/processes/base.py"):
        assert module in places, f"no message code found in {module}"
    assert {"bbox_range", "filter_syntax", "unknown_property", "unknown_parameter", "q_no_words",
            "limit_invalid", "sortby_unknown", "datetime_invalid", "outside_country",
            "job_internal", "job_orphaned", "over_budget"} <= set(codes)


def test_every_code_is_seen_by_this_test():
    _, unseen = server_codes()
    assert not unseen, "message codes this test cannot read (use a string or a " \
                       "*MESSAGE_CODES table):\n" + "\n".join(unseen)


@pytest.mark.parametrize("code", sorted(server_codes()[0]))
def test_every_code_has_texts_in_three_languages_with_the_same_placeholders(code):
    texts = problem_texts().get(code)
    assert texts is not None, f"problem.{code} is missing from {STRINGS.relative_to(ROOT)} " \
                              f"(set at {server_codes()[0][code]})"
    assert set(texts) == set(LANGUAGES), f"problem.{code}: languages {sorted(texts)}"
    placeholders = {language: set(PLACEHOLDER.findall(texts[language])) for language in LANGUAGES}
    assert placeholders["ky"] == placeholders["ru"] == placeholders["en"], \
        f"problem.{code}: placeholders differ: {placeholders}"
    for language in LANGUAGES:
        assert texts[language].strip(), f"problem.{code}: empty {language} text"
    assert texts["ky"] != texts["en"] and texts["ru"] != texts["en"], \
        f"problem.{code}: not translated"


def test_no_text_is_left_for_a_code_the_server_no_longer_sends():
    stale = set(problem_texts()) - set(server_codes()[0])
    assert not stale, f"problem.* texts without a code in the server: {sorted(stale)}"


def test_the_parameters_refusals_name_have_words_in_three_languages():
    strings = yaml.safe_load(STRINGS.read_text(encoding="utf-8"))
    params = {key: value for key, value in strings.items() if key.startswith("param.")}
    assert {"param.filter", "param.bbox", "param.datetime", "param.sortby"} <= set(params)
    for key, texts in params.items():
        assert set(texts) == set(LANGUAGES) and all(texts.values()), key


def test_no_text_key_is_written_twice():
    """YAML keeps the last of two equal keys without a word: two branches once both added
    `problem.token_invalid` for different refusals, and one silently took the other's text."""
    keys = [line.split(":", 1)[0] for line in STRINGS.read_text(encoding="utf-8").splitlines()
            if line and not line[0].isspace() and not line.startswith("#") and ":" in line]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    assert not twice, f"keys written twice in {STRINGS.name}: {twice}"
