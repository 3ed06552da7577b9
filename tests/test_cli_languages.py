"""`taza` speaks the operator's language: Kyrgyz, Russian or English from the locale
(catalog/core/operator_texts.py). Every texts file has every language with the same
placeholders, every code the commands say exists, no command module prints or helps in
English literals, and the real command line validates, publishes and lists in Russian and
Kyrgyz while its English stays as scripts read it. The subcommands' own texts are tested in
tests/test_cli_languages_*.py."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from catalog.core.operator_texts import OperatorTexts, operator_language
from catalog.sources.findings import finding_texts
from tests.conftest import ROOT, run_taza

PACKAGE = ROOT / "catalog"
# The modules that make up `taza`: the top command and each floor's subcommands.
COMMAND_MODULES = sorted([PACKAGE / "cli.py", *PACKAGE.glob("*/cli.py")])
# Two or more letters in a row: a word a person reads (not "{name:24} {role:9}" or " - ").
WORD = re.compile(r"[A-Za-z]{2,}")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _texts_objects() -> dict[str, tuple[str, OperatorTexts]]:
    """Every OperatorTexts a module of the package defines: name -> (module, texts)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts or "OperatorTexts(" not in path.read_text():
            continue
        module = importlib.import_module(_module_name(path))
        for name, value in vars(module).items():
            if isinstance(value, OperatorTexts):
                found[f"{module.__name__}.{name}"] = (module.__name__, value)
    return found


def test_the_command_modules_are_found():
    names = {_module_name(path) for path in COMMAND_MODULES}
    assert {"catalog.cli", "catalog.stewards.cli", "catalog.backups.cli",
            "catalog.harvest.cli", "catalog.cluster.cli"} <= names
    assert len(_texts_objects()) >= 6


@pytest.mark.parametrize("name", sorted(_texts_objects()))
def test_every_text_is_in_every_language_with_the_same_placeholders(name):
    _, texts = _texts_objects()[name]
    assert texts.problems() == []


def test_the_checker_finds_a_missing_language_and_a_dropped_placeholder(tmp_path):
    broken = tmp_path / "texts.yml"
    broken.write_text('a: {ky: "x {path}", ru: "y {path}", en: "z {path}"}\n'
                      'b: {ru: "y", en: "z"}\n'
                      'c: {ky: "x", ru: "y {path}", en: "z {path}"}\n'
                      'd: {ky: "", ru: "y", en: "z"}\n', encoding="utf-8")
    found = OperatorTexts(broken).problems()
    assert [problem.split(":")[0] for problem in found] == ["b", "c", "d"]


def _said_codes(path: Path, texts_names: set[str]) -> list[tuple[str, str, int]]:
    """(texts name, literal code, line) of every call like say("code", ...) in a module."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in texts_names and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            calls.append((node.func.id, node.args[0].value, node.lineno))
    return calls


def test_every_code_a_command_says_has_its_texts():
    """A mistyped code would be a KeyError (a traceback) the first time it is said."""
    missing, said = [], 0
    for path in COMMAND_MODULES:
        module = importlib.import_module(_module_name(path))
        bound = {name: value for name, value in vars(module).items()
                 if isinstance(value, OperatorTexts)}
        for name, code, line in _said_codes(path, set(bound)):
            said += 1
            if code not in bound[name].table:
                missing.append(f"{path.relative_to(ROOT)}:{line}: {code}")
    assert missing == []
    assert said > 50


def _english_literals(path: Path) -> list[str]:
    """Words in English literals that `taza` would print or show as help: arguments of
    print(), and help= or description= of the argument parsers."""
    place = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        checked = [k.value for k in node.keywords if k.arg in ("help", "description")]
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            checked += node.args
        found += [f"{place}:{node.lineno}: {text!r}"
                  for value in checked for text in _shown_words(value)]
    return found


def _shown_words(node: ast.AST) -> list[str]:
    """The literal texts of an expression that end up in what it shows: not inside a call
    (say(...) is checked by the texts tests, json.dumps(...) prints data), a subscript's key
    (entry['version']) or a comparison (a condition, not a text)."""
    if isinstance(node, ast.Call | ast.Subscript | ast.Compare | ast.Attribute):
        return []
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) and WORD.search(node.value) else []
    return [text for child in ast.iter_child_nodes(node) for text in _shown_words(child)]


def test_no_command_prints_or_helps_in_english_literals():
    assert [found for path in COMMAND_MODULES for found in _english_literals(path)] == []


def test_the_literal_checker_finds_english(tmp_path):
    module = tmp_path / "cli.py"
    module.write_text('print(f"added {name}")\nprint(say("done"))\nprint(f"{a:24} {b}")\n'
                      'print(f"{x[\'version\']:<4} {\'live\' if y == \'z\' else \'\'}")\n'
                      'parser.add_argument("--x", help="the x")\n'
                      'parser.add_argument("--y", help=say("help.y"))\n', encoding="utf-8")
    found = [line.split(": ", 1)[1] for line in _english_literals(module)]
    assert found == ["'added '", "'live'", "'the x'"]


@pytest.mark.parametrize("locale, language", [
    ("ky_KG.UTF-8", "ky"), ("ru_RU.UTF-8", "ru"), ("en_GB.UTF-8", "en"), ("C.UTF-8", "en"),
    ("de_DE.UTF-8", "en"), ("", "en")])
def test_the_operators_language_is_the_locales(monkeypatch, locale, language):
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", locale)
    assert operator_language() == language
    monkeypatch.setenv("LANGUAGE", "de:ru")  # a list: the first language the catalog speaks
    assert operator_language() == "ru"


# --- the real command line ----------------------------------------------------------------

@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> Path:
    """A good manifest (airports) and a bad one: no licence, a bad id, a missing source."""
    folder = tmp_path_factory.mktemp("manifests")
    good = (ROOT / "datasets" / "airports.yaml").read_text(encoding="utf-8")
    (folder / "airports.yaml").write_text(good.replace("sources/", f"{ROOT}/datasets/sources/"),
                                          encoding="utf-8")
    bad = "\n".join(line for line in good.splitlines() if not line.startswith("licen"))
    (folder / "bad.yaml").write_text(re.sub(r"(?m)^id: .*$", "id: Bad Id", bad),
                                     encoding="utf-8")
    return folder


def _finding(code: str, language: str, **params: str) -> str:
    return finding_texts()[code][language].format(**params)


@pytest.mark.parametrize("locale, language, invalid", [
    ("ru_RU.UTF-8", "ru", "НЕВЕРНО"), ("ky_KG.UTF-8", "ky", "ЖАРАКСЫЗ")])
def test_validate_names_the_problems_in_the_operators_language(manifests, locale, language,
                                                                invalid):
    bad = manifests / "bad.yaml"
    done = run_taza("validate", str(bad), language=locale)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"{invalid} {bad}: ") and "3" in lines[0]
    assert f"  {bad}: licence: {_finding('manifest_missing', language)}" in lines
    assert f"  {bad}:1: id: {_finding('manifest_id_invalid', language)}" in lines
    assert not any(WORD.search(line.split(": ", 2)[-1]) for line in lines[1:]
                   if "sources/" not in line), lines


def test_validate_stays_english_for_scripts(manifests):
    bad = manifests / "bad.yaml"
    done = run_taza("validate", str(bad), str(manifests / "airports.yaml"))
    assert done.returncode == 1
    assert done.stderr.splitlines()[:1] == [f"INVALID {bad}: 3 problem(s)"]
    assert f"  {bad}: licence: missing (required)" in done.stderr.splitlines()
    assert done.stdout.startswith(f"ok      {manifests / 'airports.yaml'}: airports (")


def test_publish_list_and_errors_in_russian_and_kyrgyz(tmp_path, manifests):
    home = tmp_path / "home"
    good = str(manifests / "airports.yaml")
    published = run_taza("--home", str(home), "publish", good, language="ky_KG.UTF-8")
    assert published.returncode == 0, published.stderr
    assert published.stdout == "airports жарыяланды: 1-версия (1-чыгарылыш)\n"
    again = run_taza("--home", str(home), "publish", good, language="ru_RU.UTF-8")
    assert again.stdout == "без изменений airports: версия 1 (выпуск 1)\n"
    listed = run_taza("--home", str(home), "list", language="ru_RU.UTF-8")
    assert listed.stdout.splitlines() == ["выпуск 1",
                                          f"  {'airports':28} версия 1 (версии: 1)"]
    nothing = run_taza("--home", str(home), "publish", language="ru_RU.UTF-8")
    assert (nothing.returncode, nothing.stderr) == (
        2, "ошибка: назовите манифесты для публикации или укажите --all\n")
    rejected = run_taza("--home", str(home), "publish", str(manifests / "bad.yaml"),
                        language="ky_KG.UTF-8")
    assert rejected.returncode == 1
    assert "ЧЕТКЕ КАГЫЛДЫ" in rejected.stderr and "эч нерсе жарыяланган жок" in rejected.stderr


def test_the_help_is_in_the_operators_language():
    russian = run_taza("--help", language="ru_RU.UTF-8")
    assert "Команда `taza`: проверка, публикация" in russian.stdout
    assert "опубликовать наборы данных как новые версии" in russian.stdout
    kyrgyz = run_taza("publish", "--help", language="ky_KG.UTF-8")
    assert "--datasets-dir ичиндеги ар бир манифестти жарыялоо" in kyrgyz.stdout


# --- argparse's own words (catalog/locale, gettext) ----------------------------------------

# What argparse says to a person running `taza` (Python 3.12): usage, headings, its errors.
# Its other strings are for programmers (a conflicting option string, dest= missing).
ARGPARSE_WORDS = [
    "usage: ", "positional arguments", "options", "show this help message and exit",
    "%(prog)s: error: %(message)s\n", "argument %(argument_name)s: %(message)s",
    "the following arguments are required: %s", "one of the arguments %s is required",
    "unrecognized arguments: %s", "ambiguous option: %(option)s could match %(matches)s",
    "invalid choice: %(value)r (choose from %(choices)s)",
    "unknown parser %(parser_name)r (choices: %(choices)s)",
    "invalid %(type)s value: %(value)r", "can't open '%(filename)s': %(error)s",
    "expected one argument", "expected at most one argument",
    "expected at least one argument", "not allowed with argument %s",
    "ignored explicit argument %r", "unexpected option string: %s"]
PO_FILES = sorted((ROOT / "catalog" / "locale").glob("*/LC_MESSAGES/taza.po"))


def test_argparse_speaks_every_language_but_english():
    languages = {path.parts[-3] for path in PO_FILES}
    assert languages == {"ky", "ru"}


def test_argparse_words_are_the_ones_python_says():
    """A Python whose argparse changed a text would silently say it in English again."""
    import argparse

    source = Path(argparse.__file__).read_text(encoding="utf-8")
    for msgid in ARGPARSE_WORDS:
        assert repr(msgid)[1:-1] in source or msgid.rstrip("\n") in source, msgid


@pytest.mark.parametrize("po_file", PO_FILES, ids=lambda path: path.parts[-3])
def test_each_argparse_catalogue_is_compiled_and_complete(po_file):
    import gettext

    from babel.messages.pofile import read_po

    with po_file.open("rb") as source:
        catalogue = read_po(source)
    translated = {message.id if isinstance(message.id, str) else message.id[0]: message.string
                  for message in catalogue if message.id}
    assert sorted(set(ARGPARSE_WORDS) - set(translated)) == []
    assert all(translated.values())
    compiled = gettext.GNUTranslations(po_file.with_suffix(".mo").open("rb"))
    for msgid, text in translated.items():
        expected = text if isinstance(text, str) else text[0]
        assert compiled.gettext(msgid) == expected, f"run scripts/compile-messages ({msgid})"
    assert compiled.ngettext("expected %s argument", "expected %s arguments", 2) != \
        "expected %s arguments"
    placeholders = re.compile(r"%\(\w+\)[sr]|%[sr]")
    for msgid, text in translated.items():
        for form in [text] if isinstance(text, str) else text:
            assert sorted(placeholders.findall(form)) == sorted(placeholders.findall(msgid))


@pytest.mark.parametrize("locale, words", [
    ("ru_RU.UTF-8", ["использование: taza", "taza: ошибка: нераспознанные аргументы: --bogus"]),
    ("ky_KG.UTF-8", ["колдонуу: taza", "taza: ката: таанылбаган аргументтер: --bogus"]),
    ("en_GB.UTF-8", ["usage: taza", "taza: error: unrecognized arguments: --bogus"])])
def test_argparse_errors_are_in_the_operators_language(locale, words):
    done = run_taza("publish", "--bogus", language=locale)
    lines = done.stderr.splitlines()
    assert done.returncode == 2
    assert lines[0].startswith(words[0]) and lines[-1] == words[1], lines


# --- settings refused (catalog/settings_texts.yml) -----------------------------------------

SETTING_ERRORS = ("SettingError", "CacheSizeError")


def test_every_refused_setting_has_a_code_with_texts():
    """A setting refused without a code would be said in English whatever the locale."""
    from catalog import settings

    raised, uncoded = 0, []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and getattr(node.exc.func, "id", None) in SETTING_ERRORS:
                raised += 1
                code = next((k.value for k in node.exc.keywords if k.arg == "code"), None)
                if not isinstance(code, ast.Constant) or \
                        f"setting.{code.value}" not in settings.say.table:
                    uncoded.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert uncoded == []
    assert raised >= 11


@pytest.mark.parametrize("locale, expected", [
    ("ru_RU.UTF-8", "ошибка: TAZA_TRUSTED_PROXIES: ожидается число прокси от 0 до 5, "
                    "получено '9'\n"),
    ("ky_KG.UTF-8", "ката: TAZA_TRUSTED_PROXIES: 0дөн 5ке чейинки прокси саны күтүлөт, "
                    "берилгени '9'\n"),
    ("en_GB.UTF-8", "error: TAZA_TRUSTED_PROXIES: a number of proxies from 0 to 5, got '9'\n")])
def test_a_refused_setting_is_said_in_the_operators_language(tmp_path, locale, expected):
    done = run_taza("--home", str(tmp_path), "serve", "--port", "9", language=locale,
                    TAZA_TRUSTED_PROXIES="9")
    assert (done.returncode, done.stderr) == (2, expected)


def test_the_job_queue_and_database_settings_are_said_in_kyrgyz(tmp_path):
    worker = run_taza("--home", str(tmp_path), "worker", language="ky_KG.UTF-8",
                      TAZA_JOB_LEASE_SECONDS="0")
    assert (worker.returncode, worker.stderr) == (
        2, "ката: TAZA_JOB_LEASE_SECONDS 1ден 86400гө чейинки секундду, TAZA_JOB_MAX_ATTEMPTS "
           "1ден баштап бүтүн санды, TAZA_JOB_WORKERS 0дөн баштап бүтүн санды кабыл алат\n")
    listing = run_taza("--home", str(tmp_path), "list", language="ru_RU.UTF-8",
                       TAZA_DATABASE_URL="mysql://x")
    assert (listing.returncode, listing.stderr) == (
        2, "ошибка: TAZA_DATABASE_URL: ожидается URL вида postgresql://\n")


def _refusals() -> list:
    from catalog import settings
    from catalog.jobs import QueueSettings
    from catalog.stewards.config import StewardSettings
    from catalog.store.tile_cache import max_bytes_from_environment

    return [
        ({"TAZA_COLUMN_LOADS": "now"}, settings.column_loads_in_background),
        ({"TAZA_TRUSTED_PROXIES": "x"}, settings.trusted_proxies),
        ({"TAZA_DATABASE_URL": "mysql://x"}, settings.database_url),
        ({"TAZA_DATABASE_POOL_SIZE": "0"}, settings.database_pool_size),
        ({"TAZA_CLIP_MAX_BYTES": "1"}, settings.clip_max_bytes),
        ({"TAZA_DATABASE_WAIT_SECONDS": "nan"}, settings.database_wait_seconds),
        ({"TAZA_X": "2.5"}, lambda: settings.count_setting("TAZA_X", 1, 1, 9)),
        ({"TAZA_JOB_MAX_ATTEMPTS": "0"}, QueueSettings.from_environment),
        ({"TAZA_TILE_CACHE_MAX_BYTES": "-5"}, max_bytes_from_environment),
        ({"TAZA_TOKEN_LIFETIME_DAYS": "ninety"}, StewardSettings.from_environment),
        ({"TAZA_TOKEN_LIFETIME_DAYS": "-1"}, StewardSettings.from_environment)]


@pytest.mark.parametrize("case", range(len(_refusals())))
def test_a_refused_settings_english_text_is_its_message(monkeypatch, case):
    from catalog import settings

    environment, read = _refusals()[case]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingError) as refused:
        read()
    err = refused.value
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert settings.say(f"setting.{err.code}", **err.params) == str(err)
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")
    assert settings.say(f"setting.{err.code}", **err.params) != str(err)


def test_serve_says_a_damaged_restore_journal_in_the_operators_language(tmp_path):
    """`taza serve` refuses a home a restore left half switched, through say_error."""
    aside = tmp_path / ".replaced-20261206"
    aside.mkdir()
    (aside / "swap.json").write_text("{not json", encoding="utf-8")
    russian = run_taza("--home", str(tmp_path), "serve", "--port", "9", language="ru_RU.UTF-8")
    assert russian.returncode == 1
    assert russian.stderr.startswith(f"ошибка: {aside / 'swap.json'} повреждён (")
    assert russian.stderr.rstrip().endswith(f"сравните папку каталога с {aside} вручную")
    english = run_taza("--home", str(tmp_path), "serve", "--port", "9")
    assert english.stderr.startswith(f"error: {aside / 'swap.json'} is damaged (")
