"""`taza` whose reader has gone (`taza list | head -1`, a pager quit early) stops quietly with
the status of a command killed by SIGPIPE, 141, as coreutils' commands do: no BrokenPipeError
traceback. The real command line, its stdout a pipe closed before it writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, airports_home, run_taza

# Commands that write their answer to stdout, each with something to say on a home with one
# published dataset, and a word of that answer.
WRITERS = {"list": (["list"], "airports"), "versions": (["versions", "airports"], "live"),
           "audit": (["audit"], "dataset.publish"),
           "validate": (["validate", str(ROOT / "datasets" / "airports.yaml")], "ok")}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return airports_home(tmp_path_factory.mktemp("reader-gone"))


def run_with_stdout_closed(*args: str) -> tuple[int, str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("TAZA_", "LC_", "LANGUAGE"))}
    process = subprocess.Popen([sys.executable, "-m", "catalog.cli", *args], cwd=ROOT,
                               env=environment | {"LANG": "C.UTF-8"}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before the command writes a word
    try:
        errors = process.stderr.read()
        return process.wait(timeout=60), errors
    finally:
        process.kill()
        process.stderr.close()


@pytest.mark.parametrize("name", WRITERS)
def test_a_command_whose_reader_has_gone_stops_quietly_with_141(home, name):
    command, _ = WRITERS[name]
    status, errors = run_with_stdout_closed("--home", str(home), *command)
    assert (status, errors) == (141, "")


@pytest.mark.parametrize("name", WRITERS)
def test_the_same_command_with_its_reader_says_its_answer(home, name):
    command, word = WRITERS[name]
    done = run_taza("--home", str(home), *command)
    assert done.returncode == 0, done.stderr
    assert word in done.stdout
