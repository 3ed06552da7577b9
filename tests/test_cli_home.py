"""The `taza` commands that read or change a catalog refuse, on the embedded profile, a home
folder that does not exist, in the operator's language, and leave no folder behind (before,
`taza --home /typo audit` created an empty home and called its empty chain sound). Commands
that start a catalog still create one. A bad TAZA_DATABASE_URL is an error line, not a
traceback. The real command line, in subprocesses."""

from __future__ import annotations

import pytest

from tests.conftest import run_taza

# Every command marked existing_home (catalog/cli.py and the stewards', backups' and
# harvest's command modules), with arguments that would pass its own checks.
READS_OR_CHANGES = [
    ["list"], ["versions", "settlements"], ["audit"], ["audit", "--verify"],
    ["rollback", "settlements", "1"], ["withdraw", "settlements"],
    ["purge", "settlements", "1", "--reason", "takedown"],
    ["users", "list"], ["users", "link", "aigul"], ["users", "token", "aigul"],
    ["users", "password", "aigul", "--password-stdin"], ["users", "disable", "aigul"],
    ["backup", "{tmp}/backup"], ["migrate", "--to", "postgresql://127.0.0.1:9/none"],
    ["harvest", "list"], ["harvest", "run"], ["harvest", "remove", "other"],
]


@pytest.mark.parametrize("command", READS_OR_CHANGES, ids=" ".join)
def test_a_command_on_a_missing_home_says_so_and_creates_nothing(tmp_path, command):
    home = tmp_path / "mistyped"
    arguments = [part.format(tmp=tmp_path) for part in command]
    done = run_taza("--home", str(home), *arguments)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == (f"error: There is no catalog home at {home}: nothing was published"
                           " there. Give the right folder with --home or TAZA_HOME (`taza "
                           "publish` starts a new catalog).\n")
    assert sorted(tmp_path.iterdir()) == []  # no home, no backup folder


@pytest.mark.parametrize("language, start", [("ru_RU.UTF-8", "ошибка: Папки каталога "),
                                             ("ky_KG.UTF-8", "ката: ")])
def test_the_missing_home_is_said_in_the_operators_language(tmp_path, language, start):
    home = tmp_path / "mistyped"
    done = run_taza("--home", str(home), "audit", language=language)
    assert done.returncode == 2
    assert done.stderr.startswith(start) and str(home) in done.stderr
    assert ("деген каталогдун папкасы жок" in done.stderr) == language.startswith("ky")
    assert not home.exists()


def test_a_command_that_starts_a_catalog_still_creates_its_home(tmp_path):
    home = tmp_path / "new"
    done = run_taza("--home", str(home), "users", "add", "aigul", "--role", "admin")
    assert done.returncode == 0, done.stderr
    assert (home / "stewards").is_dir()
    listed = run_taza("--home", str(home), "users", "list")
    assert listed.returncode == 0 and "aigul" in listed.stdout


def test_an_existing_empty_home_is_a_catalog_with_nothing_published(tmp_path):
    done = run_taza("--home", str(tmp_path), "list")
    assert (done.returncode, done.stdout) == (0, "nothing published yet\n")


@pytest.mark.parametrize("command", [["list"], ["serve", "--port", "9"], ["audit"]],
                         ids=" ".join)
def test_a_bad_database_url_is_an_error_line_not_a_traceback(tmp_path, command):
    done = run_taza("--home", str(tmp_path), *command, TAZA_DATABASE_URL="mysql://db/catalog")
    assert done.returncode == 2
    assert done.stderr == "error: TAZA_DATABASE_URL: expected a postgresql:// URL\n"

