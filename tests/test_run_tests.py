"""scripts/run-tests splits the suite into two halves of whole modules: balanced by each
module's measured seconds when tests/module-seconds.txt (MODULE_SECONDS) exists, by name
otherwise; RECORD_SECONDS=1 writes the file from the seconds each half reports. A stand-in
for Python prints each half's pytest command line and reports seconds, so no test runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT

MODULES = sorted(f"tests/{path.name}" for path in (ROOT / "tests").glob("test_*.py"))
LONGEST = "tests/test_release_crashes.py"

STAND_IN = """#!/bin/sh
# A stand-in for `python -m pytest ... MODULES`: print the command line, report 7 s a module.
echo "$@"
for module in "$@"; do
  case "$module" in tests/test_*.py) echo "7 $module" >> "$TAZA_MODULE_SECONDS_FILE" ;; esac
done
echo "stand-in: no test ran"
"""


def run_tests(tmp_path: Path, **env: str) -> tuple[list[list[str]], str]:
    """The modules of each half, and what run-tests printed."""
    python = tmp_path / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    result = subprocess.run([str(ROOT / "scripts" / "run-tests")], cwd=ROOT, text=True,
                            capture_output=True, timeout=60,
                            env={**os.environ, "PYTHON": str(python), **env})
    assert result.returncode == 0, result.stderr
    halves = [line.split() for line in result.stdout.splitlines()
              if line.startswith("-m pytest")]
    assert len(halves) == 2, result.stdout
    return [[word for word in half if word.startswith("tests/")] for half in halves], \
        result.stdout


def test_halves_are_balanced_by_measured_seconds(tmp_path):
    """One module as long as all the others together has a half to itself."""
    seconds = tmp_path / "seconds.txt"
    others = [module for module in MODULES if module != LONGEST]
    seconds.write_text("# seconds module\n" + f"{10 * len(others)} {LONGEST}\n"
                       + "".join(f"10 {module}\n" for module in others))
    (first, second), printed = run_tests(tmp_path, MODULE_SECONDS=str(seconds))
    assert sorted(first + second) == MODULES
    assert [LONGEST] in (first, second)
    assert f"{10 * len(others)} and {10 * len(others)} measured seconds" in printed


def test_a_module_not_measured_counts_the_default(tmp_path):
    seconds = tmp_path / "seconds.txt"
    seconds.write_text(f"{len(MODULES)} {MODULES[0]}\n")  # longer than all others at 1 s
    (first, second), _ = run_tests(tmp_path, MODULE_SECONDS=str(seconds),
                                   UNMEASURED_SECONDS="1")
    assert [MODULES[0]] in (first, second)


def test_without_measured_seconds_the_halves_split_by_name(tmp_path):
    (first, second), printed = run_tests(tmp_path, MODULE_SECONDS=str(tmp_path / "none.txt"))
    assert first == [m for m in MODULES if m < "tests/test_p"]
    assert second == [m for m in MODULES if m >= "tests/test_p"]
    assert "split by name at tests/test_p" in printed


def test_record_seconds_writes_each_modules_seconds(tmp_path):
    seconds = tmp_path / "seconds.txt"
    run_tests(tmp_path, MODULE_SECONDS=str(seconds), RECORD_SECONDS="1",
              SPLIT_AT="tests/test_m")
    lines = seconds.read_text().splitlines()
    assert lines[0].startswith("# seconds module")
    assert sorted(lines[1:]) == sorted(f"7 {module}" for module in MODULES)
