"""`taza backup`, `taza restore` and `taza migrate` speak the operator's language (Kyrgyz,
Russian, English from the locale): their help, their summaries and their errors
(catalog/backups/cli.py, catalog/backups/texts.yml). English stays as it was. The real
command line, in subprocesses, on a small home of its own (the embedded profile)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import pytest

from catalog.backups import cli as backup_cli
from catalog.backups.restore import content_summary
from catalog.backups.texts import text
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
    assert "не вошло в резервную копию: keys/audit.key (" in done.stderr, done.stderr
    assert "backed up" not in done.stdout and "not in the backup" not in done.stderr


def test_a_backup_says_what_it_did_in_kyrgyz(published):
    backup = published.parent / "backup-ky"
    done = run_taza("--home", str(published), "backup", str(backup), language="ky_KG.UTF-8")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{published} каталогунун камдык көчүрмөсү {backup} папкасына "
                               "жазылды: 1-релиз (1 жарыяланган маалымат топтому), "), lines
    assert "маалымат базалары: stac-index.sqlite" in lines[0]
    assert re.fullmatch(r"жарыялоо \d+\.\d\d секундга токтотулду", lines[1]), lines
    assert "камдык көчүрмөгө кирген жок: keys/audit.key (" in done.stderr


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
    ("ru_RU.UTF-8", "выпуск 2 (опубликованных наборов данных: 0), файлов: 5, байт: 1,000, "
                    "объектов хранилища: 2 (3,500 байт), базы данных: база данных "
                    "PostgreSQL (database.dump, 98,765 байт)"),
    ("ky_KG.UTF-8", "2-релиз (0 жарыяланган маалымат топтому), 5 файл, 1,000 байт, "
                    "сактагычтын 2 объектиси (3,500 байт), маалымат базалары: PostgreSQL "
                    "маалымат базасы (database.dump, 98,765 байт)"),
], ids=["en", "ru", "ky"])
def test_the_summary_of_a_postgresql_backup_with_objects(monkeypatch, language, said):
    for variable in LANGUAGE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", language)
    manifest = {"release": 2, "live": {}, "files_total": 5, "bytes_total": 1000,
                "database_dump": {"path": "database.dump", "size": 98765},
                "bucket": {"objects": [{"size": 1000}, {"size": 2500}]}}
    assert content_summary(manifest) == said
