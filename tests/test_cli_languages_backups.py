"""`taza backup`, `taza restore` and `taza migrate` speak the operator's language (Kyrgyz,
Russian, English from the locale): their help, their summaries and their errors
(catalog/backups/cli.py, catalog/backups/texts.yml). English stays as it was. The real
command line, in subprocesses, on a small home of its own (the embedded profile)."""

from __future__ import annotations

import argparse
import ast
import fcntl
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from catalog.backups import EXCLUDED, REASON_CODES, BackupError, CodedText, migrate
from catalog.backups import cli as backup_cli
from catalog.backups.restore import content_summary
from catalog.backups.texts import say_backup_error, say_reason, say_text, text
from catalog.store import CatalogStore
from tests.conftest import ROOT, run_taza

LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A home with the airports published (release 1)."""
    home = tmp_path_factory.mktemp("languages") / "home"
    done = run_taza("--home", str(home), "publish", "datasets/airports.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    return home


@pytest.fixture(scope="module")
def backed_up(published) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """That home's backup, taken in Russian."""
    backup = published.parent / "backup"
    done = run_taza("--home", str(published), "backup", str(backup), language="ru_RU.UTF-8")
    assert done.returncode == 0, done.stdout + done.stderr
    return published, backup, done


def test_every_text_is_in_every_language_and_every_code_said_exists():
    assert text.problems() == []
    said = set()
    for module in ("cli.py", "restore.py"):
        source = (ROOT / "catalog" / "backups" / module).read_text(encoding="utf-8")
        said |= set(re.findall(r"""\bsay\(\s*["']([\w.]+)["']""", source))
    assert len(said) > 30 and said <= set(text.table), said - set(text.table)


def test_a_backup_says_what_it_did_in_russian(backed_up):
    home, backup, done = backed_up
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"резервная копия {home} записана в {backup}: выпуск 1 "
                               "(опубликованных наборов данных: 1), файлов: "), done.stdout
    assert lines[0].endswith(", базы данных: stac-index.sqlite, stewards/stewards.sqlite")
    assert re.fullmatch(r"публикация была приостановлена на \d+\.\d\d с", lines[1]), lines
    assert "не вошло в резервную копию: keys/audit.key (секреты (ключ аудита): храните их и " \
           "их резервные копии отдельно от данных)" in done.stderr, done.stderr
    assert "backed up" not in done.stdout and "not in the backup" not in done.stderr
    assert "secrets" not in done.stderr
    # backup.json keeps the reason in English: only what is printed is translated
    manifest = json.loads((backup / "backup.json").read_text())
    assert manifest["skipped"]["keys/audit.key"] == EXCLUDED["*.key"]


def test_a_backup_says_what_it_did_in_kyrgyz(published):
    backup = published.parent / "backup-ky"
    done = run_taza("--home", str(published), "backup", str(backup), language="ky_KG.UTF-8")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{published} каталогунун камдык көчүрмөсү {backup} папкасына "
                               "жазылды: 1-релиз (1 жарыяланган маалымат топтому), "), lines
    assert "маалымат базалары: stac-index.sqlite" in lines[0]
    assert re.fullmatch(r"жарыялоо \d+\.\d\d секундга токтотулду", lines[1]), lines
    assert "камдык көчүрмөгө кирген жок: keys/audit.key (купуя маалыматтар (аудит ачкычы): " \
           in done.stderr, done.stderr


@pytest.mark.parametrize("language", ["ky_KG.UTF-8", "en_GB.UTF-8"])
def test_restore_check_says_the_backup_is_whole(backed_up, language):
    home, backup, _ = backed_up
    done = run_taza("--home", str(home), "restore", "--check", str(backup), language=language)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((backup / "backup.json").read_text())
    if language.startswith("ky"):
        assert done.stdout.startswith("баары жайында: 1-релиз (1 жарыяланган маалымат "
                                      f"топтому), {manifest['files_total']} файл, "), done.stdout
        assert done.stdout.endswith("; ар бир файл өзүнүн SHA-256 суммасына дал келет\n")
    else:  # English, as before
        assert done.stdout == (
            f"ok: release 1 (1 live datasets), {manifest['files_total']} files, "
            f"{manifest['bytes_total']:,} bytes, databases: "
            f"{', '.join(manifest['databases'])}; every file matches its SHA-256\n")


@pytest.mark.parametrize("language, said", [
    ("ru_RU.UTF-8", "ошибка: --to: ожидается адрес postgresql://\n"),
    ("ky_KG.UTF-8", "ката: --to: postgresql:// дареги күтүлгөн\n"),
    ("en_GB.UTF-8", "error: --to: expected a postgresql:// URL\n"),
], ids=["ru", "ky", "en"])
def test_migrate_refuses_a_target_that_is_not_postgresql(published, language, said):
    done = run_taza("--home", str(published), "migrate", "--to", "mysql://x",
                    language=language)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", said)


@pytest.mark.parametrize("language, words", [
    ("ru_RU.UTF-8", ["восстановить папку каталога (--home или $TAZA_HOME) из резервной копии",
                     "только проверить контрольные суммы резервной копии"]),
    ("ky_KG.UTF-8", ["каталогдун папкасын (--home же $TAZA_HOME) камдык көчүрмөдөн",
                     "камдык көчүрмөнүн текшерүү суммаларын гана текшерүү"]),
    ("en_GB.UTF-8", ["rebuild a catalog home (--home or $TAZA_HOME) from a backup",
                     "only check the backup's checksums; change nothing"]),
], ids=["ru", "ky", "en"])
def test_the_help_is_in_the_operators_language(monkeypatch, language, words):
    for variable in LANGUAGE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", language)
    parser = argparse.ArgumentParser(prog="taza")
    commands = parser.add_subparsers()
    backup_cli.add_commands(commands, lambda args: None, str)
    said = " ".join((parser.format_help() + commands.choices["restore"].format_help()).split())
    assert all(" ".join(each.split()) in said for each in words), said


@pytest.mark.parametrize("language, said", [
    ("en_GB.UTF-8", "release 2 (0 live datasets), 5 files, 1,000 bytes, 2 objects of the "
                    "bucket (3,500 bytes), databases: the PostgreSQL database "
                    "(database.dump, 98,765 bytes)"),
    ("ru_RU.UTF-8", "выпуск 2 (опубликованных наборов данных: 0), файлов: 5, байт: 1\u00a0000, "
                    "объектов хранилища: 2 (3\u00a0500 байт), базы данных: база данных "
                    "PostgreSQL (database.dump, 98\u00a0765 байт)"),
    ("ky_KG.UTF-8", "2-релиз (0 жарыяланган маалымат топтому), 5 файл, 1\u00a0000 байт, "
                    "сактагычтын 2 объектиси (3\u00a0500 байт), маалымат базалары: PostgreSQL "
                    "маалымат базасы (database.dump, 98\u00a0765 байт)"),
], ids=["en", "ru", "ky"])
def test_the_summary_of_a_postgresql_backup_with_objects(monkeypatch, language, said):
    """Numbers as each language writes them: 1,000 in English, 1 000 (a no-break space)."""
    for variable in LANGUAGE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", language)
    manifest = {"release": 2, "live": {}, "files_total": 5, "bytes_total": 1000,
                "database_dump": {"path": "database.dump", "size": 98765},
                "bucket": {"objects": [{"size": 1000}, {"size": 2500}]}}
    assert content_summary(manifest) == said


# --- what the lower modules say: errors, problems, progress, reasons, differences ---------

BACKUPS = ROOT / "catalog" / "backups"
CODED_CALLS = ("BackupError", "MigrationRefused", "CodedText")
# The raises that carry no code, by the start of their message: a failure a test injects
# (TAZA_RESTORE_FAULT, only ever the reason of a RestoreFailed or CommitUnknown, which stays
# English), and an object store setting refused, whose message is the setting's own.
UNCODED = ("a failure injected after step", "psql ended early: killed at", "str(err)")


def _use(monkeypatch, language: str) -> None:
    for variable in LANGUAGE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", language)


def _coded_calls():
    """(place, call, module) of every BackupError(...), MigrationRefused(...) and
    CodedText(...) in catalog/backups."""
    for path in sorted(BACKUPS.glob("*.py")):
        module = importlib.import_module(f"catalog.backups.{path.stem}".replace(
            ".__init__", ""))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in CODED_CALLS \
                    and node.args:
                yield f"{path.name}:{node.lineno}", node, module


def _code_and_params(call: ast.Call) -> tuple[str | None, dict[str, ast.AST]]:
    """The text code a call names (error.<code> for the exceptions) and its params' sources."""
    keywords = {k.arg: k.value for k in call.keywords}
    if call.func.id == "CodedText":
        return call.args[1].value, keywords
    code = keywords.get("code")
    params = keywords.get("params")
    named = {key.value: value for key, value in zip(params.keys, params.values, strict=True)} \
        if isinstance(params, ast.Dict) else {}
    return (f"error.{code.value}" if isinstance(code, ast.Constant) else None), named


def _template(message: ast.AST, params: dict[str, ast.AST], module) -> str:
    """The English message of a call with each value replaced by the {param} it is passed as:
    what texts.yml must say in English, so that the printed English stays word for word."""
    if isinstance(message, ast.Name):
        return getattr(module, message.id)
    if isinstance(message, ast.Constant):
        return message.value
    parts = []
    for part in message.values:
        if isinstance(part, ast.Constant):
            parts.append(part.value)
            continue
        shown = ast.unparse(part.value)
        if part.format_spec is not None or part.conversion not in (-1, ord("r")):
            accepted = {ast.unparse(ast.JoinedStr([part]))}
        elif part.conversion == ord("r"):
            accepted = {f"repr({shown})"}
        else:
            accepted = {shown, f"str({shown})"}
        names = [name for name, value in params.items() if ast.unparse(value) in accepted
                 or shown == f"'; '.join({ast.unparse(value)})"]  # a list, said joined
        assert len(names) == 1, f"{shown}: passed as no param, or as several: {names}"
        parts.append("{" + names[0] + "}")
    return "".join(parts)


def test_every_error_has_a_code_and_its_english_is_the_message_word_for_word():
    said, uncoded = 0, []
    for place, call, module in _coded_calls():
        code, params = _code_and_params(call)
        if code is None:
            uncoded.append(ast.unparse(call.args[0]))
            continue
        said += 1
        assert code in text.table, f"{place}: {code} has no texts"
        assert _template(call.args[0], params, module) == text.table[code]["en"], place
        assert set(params) == set(re.findall(r"\{(\w+)", text.table[code]["en"])), place
    assert said >= 80
    assert len(uncoded) == len(UNCODED) and all(
        any(each in found for found in uncoded) for each in UNCODED), uncoded


def test_every_reason_a_file_is_left_out_has_its_texts():
    assert set(EXCLUDED.values()) < set(REASON_CODES)
    for reason, code in REASON_CODES.items():
        assert text.table[f"reason.{code}"]["en"] == reason


@pytest.fixture(scope="module")
def altered(backed_up) -> Path:
    """A copy of the backup with one file altered (same size) and one gone."""
    _, backup, _ = backed_up
    copy = backup.parent / "backup-altered"
    shutil.copytree(backup, copy)  # copies: the backup hard-links the home's version files
    database = copy / "home" / "stewards" / "stewards.sqlite"
    data = bytearray(database.read_bytes())
    data[-1] ^= 0xFF
    database.write_bytes(bytes(data))
    (copy / "home" / "current.json").unlink()
    return copy


def test_restore_check_names_each_problem_in_russian(altered, tmp_path):
    done = run_taza("--home", str(tmp_path / "home"), "restore", "--check", str(altered),
                    language="ru_RU.UTF-8")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "  current.json: отсутствует",
        "  stewards/stewards.sqlite: содержимое не совпадает с записанной суммой SHA-256",
        "ошибка: файлов, не совпадающих с контрольными суммами резервной копии: 2"], \
        done.stderr


def test_a_home_that_is_not_empty_is_refused_in_kyrgyz(backed_up):
    home, backup, _ = backed_up
    done = run_taza("--home", str(home), "restore", str(backup), language="ky_KG.UTF-8")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"ката: {home.resolve()} папкасы бош эмес; бош папкага калыбына келтириңиз же анын "
        "мазмунун --force менен алмаштырыңыз (адегенде серверди токтотуңуз)\n")


@pytest.mark.parametrize("language", ["ru_RU.UTF-8", "en_GB.UTF-8"])
def test_the_problems_of_a_damaged_backup_refused_by_restore(monkeypatch, altered, tmp_path,
                                                              language):
    """The error lists the problems, each said in the operator's language (in-process)."""
    from catalog.backups.restore import restore

    _use(monkeypatch, language)
    with pytest.raises(BackupError) as refused:
        restore(altered, tmp_path / "home")
    said = say_backup_error(refused.value, str)
    if language.startswith("ru"):
        assert said == ("резервная копия не совпадает со своими контрольными суммами, ничего не "
                        "восстановлено: current.json: отсутствует; stewards/stewards.sqlite: "
                        "содержимое не совпадает с записанной суммой SHA-256")
    else:
        assert said == str(refused.value) == (
            "the backup does not match its checksums, nothing was restored: current.json: "
            "missing; stewards/stewards.sqlite: content differs from its recorded SHA-256")


@pytest.mark.parametrize("language, said", [
    ("ky_KG.UTF-8", ["жүрүп жаткан жарыялоонун, жүктөөнүн же текшерүүнүн аякташы күтүлүүдө",
                     "ката: каталог 1 секунд бою бош эмес болду (жарыялоолор, жүктөөлөр же "
                     "текшерүүлөр); камдык көчүрмө алынган жок, кийинчерээк кайра аракет "
                     "кылыңыз"]),
    ("en_GB.UTF-8", ["waiting for a publish, upload or review in progress to finish",
                     "error: the catalog stayed busy (publishes, uploads or reviews) for 1 s; "
                     "nothing was backed up, try again later"]),
], ids=["ky", "en"])
def test_a_backup_waiting_for_a_busy_catalog(monkeypatch, capsys, published, tmp_path,
                                             language, said):
    """`taza backup`'s progress line and its refusal (in-process, on a copy of the home)."""
    _use(monkeypatch, language)
    for variable in ("TAZA_DATABASE_URL", "TAZA_ASSETS_URL"):
        monkeypatch.delenv(variable, raising=False)
    home = shutil.copytree(published, tmp_path / "home")
    locks = home / "stewards" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    args = argparse.Namespace(dest=tmp_path / "backup", copy=False, lock_timeout=1,
                              previous=None)
    with (locks / "busy.lock").open("a") as held:  # as an upload in progress would
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert backup_cli._backup(args, CatalogStore(home), str) == 1
    assert capsys.readouterr().err.splitlines() == said
    assert not args.dest.exists()


def _rows(**tables: list[dict]) -> migrate.Rows:
    return {table: tables.get(table, []) for table, _ in migrate.TABLES}


@pytest.mark.parametrize("language, said", [
    ("ru_RU.UTF-8", ["различие: users (2,): отсутствует в целевой базе",
                     "различие: users (1,): различаются name",
                     "различие: строка audit [7] добавлена в целевую базу",
                     "различий: 3"]),
    ("ky_KG.UTF-8", ["айырмаланат: users (2,): максаттуу базада жок",
                     "айырмаланат: users (1,): name айырмаланат",
                     "айырмаланат: audit [7] сабы максаттуу базага кошулган",
                     "3 айырма"]),
    ("en_GB.UTF-8", ["differs: users (2,): missing in the target",
                     "differs: users (1,): name differ",
                     "differs: audit [7] was added in the target",
                     "3 difference(s)"]),
], ids=["ru", "ky", "en"])
def test_migrate_verify_names_each_difference(monkeypatch, capsys, tmp_path, language, said):
    """The differences `migrate --verify` prints (in-process: the texts of migrate.py's
    comparisons, printed by the command without a database to compare with)."""
    _use(monkeypatch, language)
    home = _rows(users=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    target = _rows(users=[{"id": 1, "name": "z"}])
    added = _changed_on_its_own("audit", {"seq": 7}).params["what"]
    differences = migrate._differences(home, target)
    assert differences == ["users (2,): missing in the target", "users (1,): name differ"]
    monkeypatch.setattr(migrate, "verify", lambda *args: differences + [added])
    args = argparse.Namespace(to="postgresql://nowhere/x", assets=None, verify=True)
    assert backup_cli._migrate(args, CatalogStore(tmp_path), str) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() + out.splitlines() == said


def _changed_on_its_own(table: str, row: dict) -> migrate.MigrationRefused:
    """The refusal of a target holding a row no run copied (another row was copied)."""
    recorded = {name: {} for name, _ in migrate.TABLES} | {"audit": {"[6]": "x"}}
    with pytest.raises(migrate.MigrationRefused) as refused:
        migrate._changes(_rows(), _rows(**{table: [row]}), recorded)
    return refused.value


@pytest.mark.parametrize("language", ["ru_RU.UTF-8", "ky_KG.UTF-8", "en_GB.UTF-8"])
def test_a_migration_refused_is_said_with_its_difference(monkeypatch, language):
    _use(monkeypatch, language)
    refused = _changed_on_its_own("users", {"id": 3})
    english = ("the target database changed on its own since the last migrate (users [3] was "
               "added in the target): it is no longer a copy of this catalog; give an empty "
               "database, or move the target's changes into the home first")
    assert str(refused) == english
    said = say_backup_error(refused, str)
    if language.startswith("ru"):
        assert said.startswith("целевая база данных изменилась сама по себе после прошлого "
                               "migrate (строка users [3] добавлена в целевую базу): ")
    elif language.startswith("ky"):
        assert said.startswith("максаттуу маалымат базасы акыркы migrate'тен бери өз алдынча "
                               "өзгөргөн (users [3] сабы максаттуу базага кошулган): ")
    else:
        assert said == english


def test_an_error_without_a_code_is_said_by_say_error_and_text_is_kept(monkeypatch):
    _use(monkeypatch, "ru_RU.UTF-8")
    assert say_backup_error(migrate.MigrationRefused("some setting"), lambda e: "said") == "said"
    coded = CodedText("missing", "problem.missing")
    assert (coded, say_text(coded), say_text("as it is")) == ("missing", "отсутствует",
                                                               "as it is")
    assert say_reason(EXCLUDED["cache/"]).startswith("производные данные")
    assert say_reason("a reason of another version") == "a reason of another version"
