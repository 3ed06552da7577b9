"""`taza` refuses bad arguments and outlives what it cannot reach with one error line in the
operator's language and a non-zero exit, never a traceback, and leaves nothing running:
a port out of range, a taken port, a bad TAZA_WORKERS, a database that does not answer, a
backup folder that cannot be made. The real command line, in subprocesses (each of these was
a traceback before, and the taken port left the CSW server running, orphaned)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from catalog.discovery import csw
from tests.conftest import airports_home, free_port, run_taza


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return airports_home(tmp_path_factory.mktemp("failures"))


@pytest.mark.parametrize("arguments, refusal", [
    (["serve", "--port", "99999"], "argument --port: expected a whole number from 1 to 65535, "
                                   "got '99999'"),
    (["serve", "--port", "-1"], "argument --port: expected a whole number from 1 to 65535, "
                                "got '-1'"),
    (["serve", "--workers", "0"], "argument --workers: expected a whole number from 1 to 256, "
                                  "got '0'"),
    (["worker", "--threads", "x"], "argument --threads: expected a whole number from 1 to "
                                   "256, got 'x'")], ids=lambda value: " ".join(value)
                                                     if isinstance(value, list) else "")
def test_a_number_out_of_range_is_refused_before_anything_starts(home, arguments, refusal):
    done = run_taza("--home", str(home), *arguments)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(f"error: {refusal}"), done.stderr


def test_the_range_is_said_in_the_operators_language(home):
    done = run_taza("--home", str(home), "serve", "--port", "0", language="ru_RU.UTF-8")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == ("taza serve: ошибка: аргумент --port: ожидалось "
                                            "целое число от 1 до 65535, получено '0'")


def test_a_bad_taza_workers_is_refused_by_serve_only(home):
    assert run_taza("--home", str(home), "list", TAZA_WORKERS="many").returncode == 0
    done = run_taza("--home", str(home), "serve", "--port", str(free_port()),
                    TAZA_WORKERS="many")
    assert (done.returncode, done.stderr) == (
        2, "error: TAZA_WORKERS: expected a whole number from 1 to 256, got 'many'\n")


def _running_on(home) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(home)], capture_output=True, text=True)
    return found.stdout.splitlines()


def test_a_taken_port_stops_the_server_and_leaves_nothing_running(home):
    assert csw.python().exists(), "the CSW's virtualenv: make .venv-csw/bin/.installed"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_taza("--home", str(home), "serve", "--port", str(port))
    assert done.returncode == 1
    assert f"Can't connect to ('127.0.0.1', {port})" in done.stderr
    assert "Traceback" not in done.stderr
    assert _running_on(home) == []  # before, the CSW started first and ran on


CLOSED_DATABASE = {"TAZA_DATABASE_URL": f"postgresql://taza:none@127.0.0.1:{free_port()}/none",
                   "TAZA_DATABASE_WAIT_SECONDS": "1"}


@pytest.mark.parametrize("arguments", [["list"], ["versions", "airports"], ["audit"],
                                       ["users", "list"], ["backup", "{tmp}/backup"],
                                       ["migrate", "--to", "{url}"]], ids=" ".join)
def test_a_database_that_does_not_answer_is_one_error_line(home, tmp_path, arguments):
    url = CLOSED_DATABASE["TAZA_DATABASE_URL"]
    given = [part.format(tmp=tmp_path, url=url) for part in arguments]
    done = run_taza("--home", str(home), *given, **CLOSED_DATABASE)
    assert done.returncode == 1, done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: "), \
        done.stderr
    assert "cannot connect to the database" in done.stderr


def test_the_database_that_does_not_answer_is_said_in_kyrgyz(home):
    done = run_taza("--home", str(home), "list", language="ky_KG.UTF-8", **CLOSED_DATABASE)
    assert done.returncode == 1
    assert done.stderr.startswith("ката: каталогдун маалымат базасына жетүү мүмкүн болгон "
                                  "жок: the release records cannot be read: "), done.stderr


@pytest.mark.parametrize("language, said", [
    ("en_GB.UTF-8", "error: {dest}: the backup folder cannot be created (Not a directory)\n"),
    ("ru_RU.UTF-8", "ошибка: {dest}: не удаётся создать папку резервной копии "
                    "(Not a directory)\n")])
def test_a_backup_folder_that_cannot_be_made_is_refused(home, tmp_path, language, said):
    (tmp_path / "a-file").write_text("not a folder")
    dest = tmp_path / "a-file" / "backup"
    done = run_taza("--home", str(home), "backup", str(dest), language=language)
    assert (done.returncode, done.stderr) == (1, said.format(dest=dest))
